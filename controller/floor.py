"""The robots a configuration describes: each one's driver, found through the registry, and
its bins."""

from __future__ import annotations

from controller.config import ModbusFillerSettings, Robot, SerialCounterSettings, Settings
from controller.store import BinSpec
from drivers.base import TabletCounter, VialFiller
from drivers.registry import find_driver


def make_driver(robot: Robot, url: str) -> TabletCounter | VialFiller:
    """The driver the configuration names for ``robot``, found through the registry."""
    cls = find_driver(robot.driver.name)
    if getattr(cls, "kind", None) != robot.kind:
        raise TypeError(f"robot {robot.id} is a {robot.kind}, but driver {robot.driver.name!r} "
                        f"drives a {getattr(cls, 'kind', 'device of unknown kind')}")
    settings = robot.driver
    driver: object
    if isinstance(settings, SerialCounterSettings):
        driver = cls(name=robot.id, url=url, baud=settings.baud,
                     reply_timeout=settings.reply_timeout_ms / 1000, retries=settings.retries)
        protocol: type = TabletCounter
    else:
        assert isinstance(settings, ModbusFillerSettings)
        # A simulator runs machine time fast, its heartbeat watchdog too: keep up with it.
        scale = robot.simulator.time_scale if robot.simulated else 1.0
        driver = cls(name=robot.id, url=url, unit=settings.unit, baud=settings.baud,
                     parity=settings.parity, timeout=settings.timeout_ms / 1000,
                     retries=settings.retries, poll_interval=1 / settings.poll_hz,
                     heartbeat_interval=settings.heartbeat_s / scale)
        protocol = VialFiller
    if not isinstance(driver, protocol):
        raise TypeError(f"driver {robot.driver.name!r} is not a {protocol.__name__}")
    return driver  # type: ignore[return-value]


def bin_specs(settings: Settings) -> list[BinSpec]:
    """Every bin the configuration describes."""
    return [BinSpec(r.id, c.channel, c.ndc, c.lot, c.expiry, c.on_hand, c.par, c.capacity)
            for r in settings.config.robots for c in r.channels]
