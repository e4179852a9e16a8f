"""What maintenance staff see of a running site: a robot's wire, live, and each bin's
calibration with the guided runs behind it and the robot's scale checks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from controller.domain.roles import Duty, Person, require
from controller.pharmacy.refusals import NotFound
from controller.robots.supervisor import Supervisor
from controller.store.calibration import Calibration, GuidedCalibration, ScaleCheck
from drivers.trace import Frame, Tap

BACKLOG = 2000
"""Frames a slow reader may fall behind by before the oldest are dropped (and counted)."""


@dataclass(frozen=True, slots=True)
class BinCalibration:
    """One bin's calibration now, its earlier versions, and its guided runs."""

    robot: str
    bin: int
    ndc: str
    history: list[Calibration]
    guided: list[GuidedCalibration]


class Maintenance:
    """A running site's robots, for a person with the maintenance role."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor

    def tap(self, robot: str, by: Person) -> Tap:
        """The robot's wire (maintenance only); NotFound for a robot the site has not, or
        whose driver does not trace."""
        require(by, Duty.TRACE)
        worker = self._supervisor.robots.get(robot)
        if worker is None:
            raise NotFound(f"no robot {robot!r}; the site has "
                           f"{', '.join(self._supervisor.robots)}")
        tap = getattr(worker.driver, "trace", None)
        if not isinstance(tap, Tap):
            raise NotFound(f"{robot}'s driver ({type(worker.driver).__name__}) keeps no trace")
        return tap

    @contextlib.asynccontextmanager
    async def watch(self, robot: str, by: Person) -> AsyncIterator[asyncio.Queue[Frame]]:
        """The robot's frames from now, in a queue, until the block ends."""
        frames: asyncio.Queue[Frame] = asyncio.Queue(BACKLOG)

        def put(frame: Frame) -> None:
            if frames.full():
                frames.get_nowait()
            frames.put_nowait(frame)
        stop = self.tap(robot, by).listen(put)
        try:
            yield frames
        finally:
            stop()

    async def calibrations(self, robot: str) -> tuple[list[BinCalibration], list[ScaleCheck]]:
        """Each of the robot's bins with its calibrations and guided runs, and its scale
        checks, newest first."""
        store = self._supervisor.store
        made = []
        for held in await store.stock.bins():
            if held.robot != robot:
                continue
            made.append(BinCalibration(
                robot, held.bin, held.ndc,
                await store.calibration.calibration_history(robot, held.bin),
                await store.calibration.guided_calibrations(robot, held.bin)))
        return made, await store.calibration.scale_checks(robot)
