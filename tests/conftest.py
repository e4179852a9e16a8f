"""Shared fixtures: simulators listening on real ptys and sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from controller.config import Settings
from controller.robots.simulated import Simulator, start_simulators
from controller.store import Store, sqlite_url
from simulators.tablet_counter.parts import SimChannel
from simulators.tablet_counter.server import CounterSimulator
from simulators.vial_filler.parts import SimCell
from simulators.vial_filler.server import FillerSimulator
from tests.floors import ATORVASTATIN, write_config
from tests.helpers import AUDIT_KEY, formulary

TIME_SCALE = 20.0


def channels() -> list[SimChannel]:
    """Four channels of 400 tablets of 250 mg; channel 4 is not calibrated."""
    chans = [SimChannel(n, stock=400, unit_mass_mg=250.0, spread_pct=1.0) for n in (1, 2, 3)]
    chans.append(SimChannel(4, stock=400, sensitivity=0, gate_ms=0))
    return chans


@pytest.fixture(params=["pty", "tcp"])
async def counter(request: pytest.FixtureRequest) -> AsyncIterator[CounterSimulator]:
    """A counter simulator on a pty and on TCP."""
    sim = CounterSimulator(channels=channels(), seed=7, time_scale=TIME_SCALE)
    if request.param == "pty":
        await sim.listen_pty()
    else:
        await sim.listen_tcp()
    async with sim:
        yield sim


@pytest.fixture
async def tcp_counter() -> AsyncIterator[CounterSimulator]:
    """A counter simulator on TCP only (for tests that cut the link)."""
    sim = CounterSimulator(channels=channels(), seed=7, time_scale=TIME_SCALE)
    await sim.listen_tcp()
    async with sim:
        yield sim


def cells() -> list[SimCell]:
    """Four cells of 300 tablets of 250 mg, calibrated; cell 4 is not calibrated."""
    made = [SimCell(n, stock=300, unit_mass_mg=250.0, spread_pct=1.0, cal_unit_dmg=2500)
            for n in (1, 2, 3)]
    made.append(SimCell(4, stock=300, sensitivity=0))
    return made


@pytest.fixture(params=["tcp", "rtu"])
async def filler(request: pytest.FixtureRequest) -> AsyncIterator[FillerSimulator]:
    """A vial filler simulator on Modbus TCP and on Modbus RTU over a pty."""
    sim = FillerSimulator(cells=cells(), seed=5, time_scale=TIME_SCALE)
    if request.param == "rtu":
        await sim.listen_rtu_pty()
    else:
        await sim.listen_tcp()
    async with sim:
        yield sim


@pytest.fixture
async def tcp_filler() -> AsyncIterator[FillerSimulator]:
    """A vial filler simulator on Modbus TCP only (for tests that cut the link)."""
    sim = FillerSimulator(cells=cells(), seed=5, time_scale=TIME_SCALE)
    await sim.listen_tcp()
    async with sim:
        yield sim


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh store in a real SQLite file."""
    opened = await Store.open(sqlite_url(tmp_path / "rx.sqlite"), audit_key=AUDIT_KEY,
                              formulary=formulary())
    yield opened
    await opened.close()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Options of the conformance kits (tests/conformance), for vendors' drivers and devices."""
    group = parser.getgroup("rxfill conformance kits")
    group.addoption("--driver", action="append", default=[], metavar="NAME",
                    help="run the kits only for this registered driver (repeatable)")
    group.addoption("--driver-settings", default="", metavar="TOML",
                    help="keys of the driver's settings table, as the inside of a TOML "
                         "inline table: 'baud = 19200, parity = \"N\"'")
    group.addoption("--device-url", default=None, metavar="URL",
                    help="run the kits against this device instead of our simulator; "
                         "tests that inject faults are skipped")


FloorOf = tuple[Settings, dict[str, Simulator]]
"""A site's settings and its robots' simulators."""


@pytest.fixture(params=["sim:tcp", "sim:pty"])
async def filler_floor(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[FloorOf]:
    """A vial filler (Modbus TCP, or RTU on a pty) with atorvastatin; a counter with the same."""
    settings = write_config(tmp_path, [
        {"id": "fv1", "kind": "vial-filler", "url": request.param, "seed": 1,
         "ndc": ATORVASTATIN, "on_hand": 400},
        {"id": "tc1", "url": "sim:tcp", "seed": 2, "ndc": ATORVASTATIN, "on_hand": 400},
    ])
    sims = await start_simulators(settings)
    yield settings, sims
    for sim in sims.values():
        await sim.close()


@pytest.fixture
async def lone_filler(tmp_path: Path) -> AsyncIterator[FloorOf]:
    """One vial filler on Modbus TCP, the only robot holding atorvastatin."""
    settings = write_config(tmp_path, [
        {"id": "fv1", "kind": "vial-filler", "url": "sim:tcp", "seed": 3, "ndc": ATORVASTATIN,
         "on_hand": 400}])
    sims = await start_simulators(settings)
    yield settings, sims
    for sim in sims.values():
        await sim.close()
