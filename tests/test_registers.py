"""``rxfill diag registers``: a filler's registers by number, for maintenance only, never
the command register, refused while the robot works, every read and write audited."""

from __future__ import annotations

import asyncio
from pathlib import Path

from drivers.filler_types import CapType
from drivers.vial_filler.driver import ModbusVialFiller
from tests.floors import ATORVASTATIN, write_config
from tests.test_cli import start_simulator, stop
from tests.test_scales import PASSWORD, rxfill_at, with_people

AS_MAX = ("--user", "max", "--password-stdin")


def test_maintenance_reads_and_writes_registers_and_each_is_audited(tmp_path: Path) -> None:
    with_people(tmp_path)
    read = rxfill_at(tmp_path, "diag", "registers", "fv1", "--read", "hr:100-101", *AS_MAX,
                     stdin=f"{PASSWORD}\n")
    assert read.returncode == 0, read.stderr
    first, second = read.stdout.splitlines()
    assert first.split()[0] == "hr:100" and second.split()[0] == "hr:101"
    wrote = rxfill_at(tmp_path, "diag", "registers", "fv1", "--write", "hr:3=12", *AS_MAX,
                      stdin=f"{PASSWORD}\n")
    assert wrote.returncode == 0, wrote.stderr
    assert wrote.stdout.strip() == "fv1: hr:3 = 12 (written by max, read back)"
    trail = rxfill_at(tmp_path, "audit", "export").stdout
    assert '"who": "max", "action": "registers read", "subject": "robot:fv1"' in trail
    assert '"action": "register written", "subject": "robot:fv1"' in trail
    assert '"address": 3' in trail and '"value": 12' in trail


def test_the_command_register_a_counter_and_a_technician_are_refused(tmp_path: Path) -> None:
    with_people(tmp_path)
    cmd = rxfill_at(tmp_path, "diag", "registers", "fv1", "--write", "hr:0=1", *AS_MAX,
                    stdin=f"{PASSWORD}\n")
    assert cmd.returncode == 1 and "hr:0 is CMD" in cmd.stderr
    counter = rxfill_at(tmp_path, "diag", "registers", "tc1", "--read", "hr:0", *AS_MAX,
                        stdin=f"{PASSWORD}\n")
    assert counter.returncode == 1 and "tc1 has no registers" in counter.stderr
    tess = rxfill_at(tmp_path, "diag", "registers", "fv1", "--read", "ir:0-3", "--user",
                     "tess", "--password-stdin", stdin=f"{PASSWORD}\n")
    assert tess.returncode == 1
    assert "tess may not read or write a robot's registers" in tess.stderr
    bad = rxfill_at(tmp_path, "diag", "registers", "fv1", "--read", "hr:8-2")
    assert bad.returncode == 2 and "expected hr:START[-END]" in bad.stderr
    trail = rxfill_at(tmp_path, "audit", "export").stdout
    assert "registers read" not in trail and "register written" not in trail


async def test_registers_are_refused_while_the_filler_works(tmp_path: Path) -> None:
    proc, url = start_simulator("--listen", "modbus-tcp://127.0.0.1:0", "--time-scale", "1",
                                kind="filler")
    try:
        settings = write_config(tmp_path, [{"id": "fv9", "kind": "vial-filler", "url": url,
                                            "seed": 1, "ndc": ATORVASTATIN, "on_hand": 100}])
        with_people(tmp_path, settings.path)
        async with ModbusVialFiller(name="fv", url=url, parity="N") as fv:
            await fv.start(7001, 1, 60, 8, CapType.CHILD_RESISTANT)  # a minute: it is filling
            # in a thread: the driver's heartbeat goes on meanwhile (else the filler stops safe)
            busy = await asyncio.to_thread(
                rxfill_at, tmp_path, "diag", "registers", "fv9", "--write", "hr:3=2", *AS_MAX,
                stdin=f"{PASSWORD}\n", config=settings.path)
            await fv.abort()
        assert busy.returncode == 1
        assert "fv9 is filling: registers are read and written only while it is idle" \
            in busy.stderr
    finally:
        stop(proc)
