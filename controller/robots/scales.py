"""Calibrating a robot's scale through its ICD commands: tare it empty, span it on a
reference mass, check it on a second mass. Refused while the robot has work on it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from controller.domain.scale import ScaleCheck, ScaleRefused, check, masses
from drivers.base import CountState, TabletCounter, VialFiller
from drivers.filler_types import FillerState

SETTLE_TRIES = 200
SETTLE_POLL_S = 0.05
"""A counter's scale is read again until it says it settled (10 s at most)."""


class Hands(Protocol):
    """The person at the robot (or, at a simulated one, the simulator's world)."""

    async def put(self, mass_mg: int) -> None:
        """Put this mass on the empty scale."""

    async def take_off(self) -> None:
        """Take everything off the scale."""


@dataclass(frozen=True, slots=True)
class ScaleCalibration:
    """What a calibration found: the reference before and after the span, and the check."""

    robot: str
    before: ScaleCheck
    after: ScaleCheck
    check: ScaleCheck

    @property
    def passed(self) -> bool:
        """The span took, and the second mass reads within its tolerance."""
        return self.after.passed and self.check.passed


async def _idle(driver: TabletCounter | VialFiller) -> None:
    if isinstance(driver, TabletCounter):
        status = await driver.status()
        if status.state is not CountState.IDLE:
            raise ScaleRefused(f"{driver.name} is {status.state} (job {status.job}): its scale "
                               f"is calibrated only when it is idle and its chute empty")
    else:
        state = (await driver.status()).state
        if state is not FillerState.IDLE:
            raise ScaleRefused(f"{driver.name} is {state}: its scale is calibrated only when "
                               f"it is idle and its bay empty")


async def read(driver: TabletCounter | VialFiller) -> int:
    """The scale's settled reading, in mg."""
    if isinstance(driver, VialFiller):
        return (await driver.status()).weight_mg
    for _ in range(SETTLE_TRIES):
        reading = await driver.weigh()
        if reading.stable:
            return reading.weight_mg
        await asyncio.sleep(SETTLE_POLL_S)
    raise ScaleRefused(f"{driver.name}'s scale did not settle: is the robot on a steady bench?")


async def calibrate_scale(driver: TabletCounter | VialFiller, *, robot: str, reference_mg: int,
                          check_mg: int | None, noise_mg: float, hands: Hands,
                          say: Callable[[str], None]) -> ScaleCalibration:
    """Tare, span on ``reference_mg``, check on ``check_mg`` (half the reference by default);
    ScaleRefused (or the driver's DeviceError) says why not, before anything was written."""
    reference, second = masses(reference_mg, check_mg)
    await _idle(driver)
    await hands.take_off()
    empty = await read(driver)  # settled first: a scale still moving is not tared
    await driver.tare()
    say(f"{robot}: tared empty (it read {empty} mg)")
    await hands.put(reference)
    before = check(reference, await read(driver), noise_mg)
    await driver.span(reference)
    after = check(reference, await read(driver), noise_mg)
    say(f"{robot}: {reference} mg read {before.read_mg} mg before the span, "
        f"{after.read_mg} mg after")
    await hands.take_off()
    await hands.put(second)
    checked = check(second, await read(driver), noise_mg)
    await hands.take_off()
    say(f"{robot}: check {second} mg read {checked.read_mg} mg (±{checked.tolerance_mg:g} mg "
        f"allowed): {'passed' if checked.passed else 'FAILED'}")
    return ScaleCalibration(robot, before, after, checked)
