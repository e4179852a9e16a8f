"""The conformance kits' fixtures: every registered driver of a kind, against its device.

By default each driver runs against our simulator of its kind. With
``--device-url`` it runs against a real device instead, and the tests that
need to inject a fault (which only a simulator can) are skipped.
"""

from __future__ import annotations

import tomllib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from drivers.registry import drivers_of, find_driver
from simulators.tablet_counter.server import CounterSimulator
from simulators.vial_filler.server import FillerSimulator
from tests.conftest import TIME_SCALE, cells, channels

SIMULATOR_OPTIONS: dict[str, dict[str, Any]] = {
    "tablet-counter": {},
    # A pty carries no parity; at time scale 20 the 5 s heartbeat watchdog is 0.25 s.
    "vial-filler": {"parity": "N", "heartbeat_s": 0.4, "poll_hz": 50},
}
"""Settings the kit gives a driver of a kind against our simulator, where the driver's settings
model has such a key (README, "Drivers from other packages")."""


def chosen_drivers(kind: str, config: pytest.Config) -> list[str]:
    """The registered drivers of ``kind`` (only those named by --driver, when given)."""
    chosen = config.getoption("--driver")
    return [n for n in drivers_of(kind) if not chosen or n in chosen]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for fixture, kind in (("counter_driver", "tablet-counter"), ("filler_driver", "vial-filler")):
        if fixture in metafunc.fixturenames:
            names = chosen_drivers(kind, metafunc.config)
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


def _maker(name: str, url: str, options: dict[str, Any],
           config: pytest.Config) -> Callable[[], Any]:
    """Builds the driver as a site would: from its settings model (the kit's options where
    the model has such keys, then --driver-settings), through ``configured``."""
    cls = find_driver(name)
    known = {k: v for k, v in options.items() if k in cls.settings.model_fields}
    given = tomllib.loads(f"t = {{{config.getoption('--driver-settings')}}}")["t"]
    settings = cls.settings.model_validate({**known, **given, "name": name})
    return lambda: cls.configured(settings, name=f"kit-{name}", url=url, time_scale=TIME_SCALE)


@pytest.fixture(params=["serial", "tcp"])
async def counter_kit(request: pytest.FixtureRequest, counter_driver: str) -> AsyncIterator[Kit]:
    """The counter driver under test against a counter (simulated on a pty and on TCP)."""
    url = request.config.getoption("--device-url")
    if url:
        if request.param != "serial":
            pytest.skip("one run against a real device")
        yield Kit(url, None, _maker(counter_driver, url, {}, request.config))
        return
    sim = CounterSimulator(channels=channels(), seed=11, time_scale=TIME_SCALE)
    await (sim.listen_pty() if request.param == "serial" else sim.listen_tcp())
    async with sim:
        yield Kit(sim.url, sim, _maker(counter_driver, sim.url,
                                       SIMULATOR_OPTIONS["tablet-counter"], request.config))


@pytest.fixture(params=["rtu", "tcp"])
async def filler_kit(request: pytest.FixtureRequest, filler_driver: str) -> AsyncIterator[Kit]:
    """The filler driver under test against a filler (simulated over RTU on a pty and TCP)."""
    url = request.config.getoption("--device-url")
    if url:
        if request.param != "tcp":
            pytest.skip("one run against a real device")
        yield Kit(url, None, _maker(filler_driver, url, {}, request.config))
        return
    sim = FillerSimulator(cells=cells(), seed=12, time_scale=TIME_SCALE)
    await (sim.listen_rtu_pty() if request.param == "rtu" else sim.listen_tcp())
    async with sim:
        yield Kit(sim.url, sim, _maker(filler_driver, sim.url, SIMULATOR_OPTIONS["vial-filler"],
                                       request.config))
