"""The conformance kits' fixtures: every registered driver of a kind, against its device.

By default each driver runs against our simulator of its kind. With
``--device-url`` it runs against a real device instead, and the tests that
need to inject a fault (which only a simulator can) are skipped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from drivers.registry import driver_names, find_driver
from simulators.tablet_counter.server import CounterSimulator
from simulators.vial_filler.server import FillerSimulator
from tests.conftest import TIME_SCALE, cells, channels

SIMULATOR_OPTIONS: dict[str, dict[str, Any]] = {
    "tablet-counter": {},
    # A pty carries no parity; at time scale 20 the 5 s heartbeat watchdog is 0.25 s.
    "vial-filler": {"parity": "N", "heartbeat_interval": 0.02, "poll_interval": 0.02},
}
"""Keyword arguments every driver of a kind accepts (README, "Drivers from other packages")."""


def drivers_of(kind: str, config: pytest.Config) -> list[str]:
    """The registered drivers of ``kind`` (only those named by --driver, when given)."""
    chosen = config.getoption("--driver")
    names = [n for n in driver_names() if getattr(find_driver(n), "kind", None) == kind]
    return [n for n in names if not chosen or n in chosen]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for fixture, kind in (("counter_driver", "tablet-counter"), ("filler_driver", "vial-filler")):
        if fixture in metafunc.fixturenames:
            names = drivers_of(kind, metafunc.config)
            metafunc.parametrize(fixture, names or [pytest.param(None, marks=pytest.mark.skip(
                reason=f"no {kind} driver selected"))])


@dataclass
class Kit:
    """A driver class and the device it runs against (``sim`` is None on real hardware)."""

    url: str
    sim: Any
    make: Callable[[], Any]

    def needs_simulator(self) -> None:
        """Skip the test on real hardware: it injects a fault."""
        if self.sim is None:
            pytest.skip("injects a fault: needs the simulator")


def _maker(name: str, url: str, options: dict[str, Any]) -> Callable[[], Any]:
    cls = find_driver(name)
    return lambda: cls(name=f"kit-{name}", url=url, **options)


@pytest.fixture(params=["serial", "tcp"])
async def counter_kit(request: pytest.FixtureRequest, counter_driver: str) -> AsyncIterator[Kit]:
    """The counter driver under test against a counter (simulated on a pty and on TCP)."""
    url = request.config.getoption("--device-url")
    if url:
        if request.param != "serial":
            pytest.skip("one run against a real device")
        yield Kit(url, None, _maker(counter_driver, url, {}))
        return
    sim = CounterSimulator(channels=channels(), seed=11, time_scale=TIME_SCALE)
    await (sim.listen_pty() if request.param == "serial" else sim.listen_tcp())
    async with sim:
        yield Kit(sim.url, sim, _maker(counter_driver, sim.url,
                                       SIMULATOR_OPTIONS["tablet-counter"]))


@pytest.fixture(params=["rtu", "tcp"])
async def filler_kit(request: pytest.FixtureRequest, filler_driver: str) -> AsyncIterator[Kit]:
    """The filler driver under test against a filler (simulated over RTU on a pty and TCP)."""
    url = request.config.getoption("--device-url")
    if url:
        if request.param != "tcp":
            pytest.skip("one run against a real device")
        yield Kit(url, None, _maker(filler_driver, url, {}))
        return
    sim = FillerSimulator(cells=cells(), seed=12, time_scale=TIME_SCALE)
    await (sim.listen_rtu_pty() if request.param == "rtu" else sim.listen_tcp())
    async with sim:
        yield Kit(sim.url, sim, _maker(filler_driver, sim.url, SIMULATOR_OPTIONS["vial-filler"]))
