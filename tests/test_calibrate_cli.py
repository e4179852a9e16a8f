"""``rxfill calibrate channel|history|restore`` as maintenance staff run them, against a
standalone counter simulator on a real socket: written to the robot and read back, recorded
in the store for the bin's NDC, refused to others."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from controller.config import load_config
from controller.robots.floor import bin_specs
from controller.store import sqlite_url
from drivers.base import Calibration
from drivers.tablet_counter.driver import SerialTabletCounter
from tests.floors import ATORVASTATIN, write_config
from tests.helpers import open_store
from tests.test_cli import start_simulator, stop
from tests.test_diag import DEMO
from tests.test_scales import PASSWORD, rxfill_at, with_people

AS_MAX = ("--user", "max", "--password-stdin")


async def test_a_channel_is_calibrated_on_the_robot_and_in_the_store(tmp_path: Path) -> None:
    proc, url = start_simulator("--listen", "tcp://127.0.0.1:0", "--channels", "3")
    try:
        settings = write_config(tmp_path, [{"id": "tc9", "url": url, "seed": 1,
                                            "ndc": ATORVASTATIN, "on_hand": 100}])
        store = await open_store(sqlite_url(tmp_path / "s.sqlite"))
        await store.stock.ensure_bins(bin_specs(settings))  # as the site's first start does
        await store.close()
        with_people(tmp_path, settings.path)

        async def cli(*args: str, who: tuple[str, ...] = AS_MAX,
                      ) -> subprocess.CompletedProcess[str]:
            return await asyncio.to_thread(rxfill_at, tmp_path, "calibrate", *args, *who,
                                           stdin=f"{PASSWORD}\n", config=settings.path)
        done = await cli("channel", "tc9/1", "--sensitivity", "62", "--gate-ms", "33",
                         "--reason", "miscounts")
        assert done.returncode == 0, done.stderr
        async with SerialTabletCounter(name="tc", url=url) as tc:
            assert await tc.read_calibration(1) == Calibration(62, 33)
        refused = await cli("channel", "tc9/1", "--sensitivity", "20", "--gate-ms", "20",
                            "--reason", "x", who=("--user", "tess", "--password-stdin"))
        assert refused.returncode == 1
        assert "needs the maintenance role" in refused.stderr
        history = rxfill_at(tmp_path, "calibrate", "history", "tc9/1", config=settings.path)
        newest, configured = history.stdout.splitlines()
        assert "gate_ms 33, sensitivity 62" in newest and "max: miscounts" in newest
        assert f"NDC {ATORVASTATIN}" in configured and "from the configuration" in configured
        version = configured.split()[0]
        restored = await cli("restore", "tc9/1", version)
        assert restored.returncode == 0, restored.stderr
        async with SerialTabletCounter(name="tc", url=url) as tc:
            assert await tc.read_calibration(1) == Calibration(50, 40)  # the file's, again
        trail = rxfill_at(tmp_path, "audit", "export", config=settings.path).stdout
        assert trail.count('"action": "bin calibrated"') == 3  # configuration, max, restore
    finally:
        stop(proc)


def test_a_counters_channel_needs_its_gate(tmp_path: Path) -> None:
    run = rxfill_at(tmp_path, "calibrate", "channel", "tc1/1", "--sensitivity", "101",
                    "--reason", "x", "--user", "max", "--password-stdin")
    assert run.returncode == 2 and "calibration: Input should be less than or equal to 100" \
        in run.stderr


async def test_a_guided_calibration_from_a_bad_start_is_proposed_then_accepted(
        tmp_path: Path) -> None:
    settings = load_config(DEMO)
    store = await open_store(sqlite_url(tmp_path / "s.sqlite"))
    await store.stock.ensure_bins(bin_specs(settings))
    await store.close()
    with_people(tmp_path)

    def cli(*args: str, who: str = "max") -> subprocess.CompletedProcess[str]:
        return rxfill_at(tmp_path, "calibrate", *args, "--user", who, "--password-stdin",
                         stdin=f"{PASSWORD}\n")
    ran = await asyncio.to_thread(cli, "channel", "tc1/1", "--from-sensitivity", "25",
                                  "--from-gate-ms", "90")
    assert ran.returncode == 0, ran.stderr
    rows = [line.split() for line in ran.stderr.splitlines() if line[:3].strip().isdigit()]
    assert int(rows[0][6]) < -20  # the first run missed a fifth of the tablets and more
    assert 4 <= len(rows) <= 12 and len({tuple(r[1:3]) for r in rows[-3:]}) == 1
    assert "proposed: gate_ms" in ran.stdout and "calibrate accept tc1/1 1" in ran.stdout
    assert "RUN  SENS  GATE" in ran.stderr  # progress, run by run
    history = rxfill_at(tmp_path, "calibrate", "history", "tc1/1").stdout.splitlines()
    assert len(history) == 1  # the bin keeps its calibration until someone accepts
    refused = await asyncio.to_thread(cli, "accept", "tc1/1", "1", who="tess")
    assert refused.returncode == 1 and "needs the maintenance role" in refused.stderr
    accepted = await asyncio.to_thread(cli, "accept", "tc1/1", "1")
    assert accepted.returncode == 0, accepted.stderr
    sens, gate = rows[-1][1:3]
    assert f"gate_ms {gate}, sensitivity {sens} (guided calibration 1" in accepted.stdout
    newest = rxfill_at(tmp_path, "calibrate", "history", "tc1/1").stdout.splitlines()[0]
    assert "guided" in newest and "guided calibration 1: " in newest
    runs = rxfill_at(tmp_path, "calibrate", "runs", "tc1/1").stdout
    assert "accepted: gate_ms" in runs
