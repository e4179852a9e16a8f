"""The robots a configuration describes: each one's driver, found through the registry, and
its bins."""

from __future__ import annotations

from controller.config import Robot, Settings
from controller.store import BinSpec
from drivers.base import TabletCounter, VialFiller
from drivers.registry import find_driver


def make_driver(robot: Robot, url: str) -> TabletCounter | VialFiller:
    """The driver the configuration names for ``robot``, found through the registry and built
    from its ``driver`` table (which load_config checked with that driver's model)."""
    cls = find_driver(robot.driver.name)
    # A simulator runs machine time fast, its watchdogs too: a driver keeps up with it.
    scale = robot.simulator.time_scale if robot.simulated else 1.0
    settings = robot.driver
    if not isinstance(settings, cls.settings):  # a Robot not read by load_config: check it now
        settings = cls.settings.model_validate(settings.model_dump())
    driver: object = cls.configured(settings, name=robot.id, url=url, time_scale=scale)
    if cls.kind == robot.kind == "tablet-counter" and isinstance(driver, TabletCounter):
        return driver
    if cls.kind == robot.kind == "vial-filler" and isinstance(driver, VialFiller):
        return driver
    raise TypeError(f"driver {robot.driver.name!r} ({type(driver).__name__}) is not a "
                    f"{robot.kind}'s driver")


def bin_specs(settings: Settings) -> list[BinSpec]:
    """Every bin the configuration describes."""
    return [BinSpec(r.id, c.channel, c.ndc, c.lot, c.expiry, c.on_hand, c.par, c.capacity,
                    tuple(sorted(c.calibration.model_dump(exclude_none=True).items())))
            for r in settings.config.robots for c in r.channels]
