"""A robot's scale calibrated through its ICD commands, against the simulators over real
ptys and sockets: a scale out of span is put right, a wrong reference mass is caught by the
check, a busy robot is refused; and ``rxfill calibrate scale`` as a person runs it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from controller.domain.scale import ScaleRefused, check, masses
from controller.robots.scales import calibrate_scale
from controller.robots.simulated import SimulatedHands
from drivers.tablet_counter.driver import SerialTabletCounter
from drivers.vial_filler.driver import ModbusVialFiller
from simulators.tablet_counter.server import CounterSimulator
from simulators.vial_filler.server import FillerSimulator
from tests.helpers import cli_env
from tests.test_cli import RXFILL
from tests.test_diag import DEMO

said: list[str] = []


class WrongMass(SimulatedHands):
    """A person who puts a 5100 mg mass on the scale when told 5000."""

    async def put(self, mass_mg: int) -> None:
        await super().put(5100 if mass_mg == 5000 else mass_mg)


async def test_a_counters_scale_out_of_span_is_put_right(counter: CounterSimulator) -> None:
    counter.device.scale_gain = 1.03  # reads 3 % heavy
    async with SerialTabletCounter(name="tc-test", url=counter.url) as tc:
        done = await calibrate_scale(tc, robot="tc-test", reference_mg=5000, check_mg=2000,
                                     noise_mg=1.0, hands=SimulatedHands(counter),
                                     say=said.append)
    assert not done.before.passed and abs(done.before.read_mg - 5150) < 10
    assert done.after.passed and done.check.passed and done.passed
    assert abs(done.check.error_mg) <= 5


async def test_a_fillers_drifting_scale_is_tared_and_spanned(filler: FillerSimulator) -> None:
    filler.device.scale_gain = 0.97
    filler.device.scale_drift_mg_per_min = 50.0  # far off zero since it was last tared
    async with ModbusVialFiller(name="fv-test", url=filler.url, parity="N") as fv:
        done = await calibrate_scale(fv, robot="fv-test", reference_mg=20_000, check_mg=None,
                                     noise_mg=1.0, hands=SimulatedHands(filler),
                                     say=said.append)
    assert not done.before.passed
    assert done.passed and done.check.mass_mg == 10_000


async def test_a_wrong_reference_mass_is_caught_by_the_check(counter: CounterSimulator) -> None:
    async with SerialTabletCounter(name="tc-test", url=counter.url) as tc:
        done = await calibrate_scale(tc, robot="tc-test", reference_mg=5000, check_mg=2500,
                                     noise_mg=1.0, hands=WrongMass(counter), say=said.append)
    assert done.after.passed  # the span "took"…
    assert not done.check.passed and not done.passed  # …and the second mass shows it wrong
    assert abs(done.check.error_mg + 49) <= 5


async def test_a_counter_with_a_job_running_is_refused(counter: CounterSimulator) -> None:
    async with SerialTabletCounter(name="tc-test", url=counter.url) as tc:
        await tc.count("J1", 1, 200)
        with pytest.raises(ScaleRefused, match=r"tc-test is counting .*only when it is idle"):
            await calibrate_scale(tc, robot="tc-test", reference_mg=5000, check_mg=None,
                                  noise_mg=1.0, hands=SimulatedHands(counter), say=said.append)
    assert counter.device.span_factor == 1.0  # nothing was written


def test_the_masses_must_be_positive_and_differ() -> None:
    assert masses(5000, None) == (5000, 2500)
    with pytest.raises(ScaleRefused, match="must differ"):
        masses(5000, 5000)
    with pytest.raises(ScaleRefused, match="positive"):
        masses(1, None)
    assert check(5000, 5010, 1.0).passed and not check(5000, 5011, 1.0).passed
    assert check(100, 103, 1.0).passed and not check(100, 104, 1.0).passed  # 3 σ at low mass


PASSWORD = "a-long-password"


def rxfill_at(tmp_path: Path, *args: str, stdin: str = "",
              config: Path = DEMO) -> subprocess.CompletedProcess[str]:
    """rxfill with ``config`` and a store in ``tmp_path``, as a person types it."""
    env_store = ("--config", str(config), "--store", str(tmp_path / "s.sqlite"))
    return subprocess.run([*RXFILL, *args, *env_store], input=stdin, capture_output=True,
                          text=True, timeout=60,
                          env=cli_env())


def with_people(tmp_path: Path, config: Path = DEMO) -> None:
    """A store with ada (admin), max (maintenance) and tess (technician)."""
    pw = PASSWORD
    assert rxfill_at(tmp_path, "users", "add", "ada", "--role", "admin", "--password-stdin",
                     stdin=f"{pw}\n{pw}\n", config=config).returncode == 0
    for name, role in (("max", "maintenance"), ("tess", "technician")):
        added = rxfill_at(tmp_path, "users", "add", name, "--role", role, "--user", "ada",
                          "--password-stdin", stdin=f"{pw}\n{pw}\n", config=config)
        assert added.returncode == 0, added.stderr


def test_calibrate_scale_is_maintenances_and_is_audited(tmp_path: Path) -> None:
    with_people(tmp_path)
    pw = PASSWORD
    args = ("calibrate", "scale", "tc1", "--reference-mg", "5000", "--password-stdin")
    refused = rxfill_at(tmp_path, *args, "--user", "tess", stdin=f"{pw}\n")
    assert refused.returncode == 1
    assert "tess may not calibrate a robot's scale" in refused.stderr
    done = rxfill_at(tmp_path, *args, "--user", "max", stdin=f"{pw}\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("tc1: scale calibrated; reference 5000 mg")
    assert done.stdout.rstrip().endswith("passed")
    trail = rxfill_at(tmp_path, "audit", "export").stdout
    assert '"who": "max", "action": "scale calibrated", "subject": "robot:tc1"' in trail
    assert trail.count("scale calibrated") == 1  # the refusal recorded nothing
