"""Keeps alarms and robot states current: after every notice that may change them, and each
second (shelves run out, on-delays pass, another process restocks a bin)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol

import structlog

from controller.alarms.desk import AlarmDesk, RobotCondition
from controller.clock import Clock, wait_set
from controller.config import Robot
from controller.domain.alarms import AlarmChange
from controller.logs import Trouble
from controller.mqtt.topics import Topics
from controller.store import Store, fill_code
from drivers.errors import DriverError

log = structlog.get_logger(__name__)

TICK_S = 1.0


class WaitingOutput(Protocol):
    """What waits in a robot's output for a person."""

    @property
    def fill_id(self) -> int: ...
    @property
    def since(self) -> datetime: ...


class Watched(Protocol):
    """What the watch reads of a robot (its worker, in ``controller/robots``): the watch sits
    below the robots and knows them only by this."""

    @property
    def id(self) -> str: ...
    @property
    def config(self) -> Robot: ...
    @property
    def online(self) -> bool: ...
    @property
    def known(self) -> bool:
        """Reconciled with its robot since start: its alarms can be decided."""
    @property
    def state(self) -> str: ...
    @property
    def job(self) -> str | None: ...
    @property
    def offline_since(self) -> datetime | None: ...
    @property
    def offline_reason(self) -> str | None: ...
    @property
    def attention(self) -> str | None: ...
    @property
    def output(self) -> WaitingOutput | None: ...

    async def vials_left(self) -> dict[int, int] | None:
        """Each hopper's vials (a vial filler), or None."""


class AlarmWatch:
    """One task that checks bins and robots, and puts robots' states in the outbox."""

    def __init__(self, desk: AlarmDesk, store: Store, robots: Mapping[str, Watched],
                 topics: Topics | None, clock: Clock, sent: Callable[[], None],
                 started_at: datetime,
                 changed: Callable[[list[AlarmChange]], None] = lambda _: None) -> None:
        self._desk = desk
        self._store = store
        self._robots = robots
        self._topics = topics
        self._clock = clock
        self._sent = sent
        """Called after anything went into the outbox (the publisher sends it)."""
        self._changed = changed
        """Told each pass's alarm changes (screens show them)."""
        self._started_at = started_at
        self._wake = asyncio.Event()
        self._dirty: set[str] = set(robots)
        self._states: dict[str, tuple[bool, str, str | None]] = {}
        self._vials: dict[str, dict[int, int] | None] = {}
        """The hoppers as last read: a robot that cannot be asked keeps its last reading."""
        self.flood = False
        self.trouble = Trouble("alarm check", log)
        """Why the last check failed (None while checks work), for the site's status."""
        self.changes: list[AlarmChange] = []
        """The latest pass's changes (for tests and screens)."""

    def poke(self, robot: str | None = None) -> None:
        """Something changed (on ``robot``): look now."""
        if robot is not None:
            self._dirty.add(robot)
        self._wake.set()

    async def run(self) -> None:
        """Check until cancelled."""
        while True:
            self._wake.clear()
            try:
                await self.check()
            except Exception as exc:
                # A store hiccup must not end the alarms for good: log it once, try next tick.
                self.trouble.failed(exc)
            else:
                self.trouble.recovered()
            await wait_set(self._wake, TICK_S)

    async def check(self) -> list[AlarmChange]:
        """One pass: bins, robots, shelves, flood, robot states."""
        robots = [await self._condition(r) for r in self._robots.values()]
        changes = await self._desk.check(robots)
        for change in changes:
            log.info("alarm", id=change.after.id, state=str(change.after.state),
                     who=change.who)
        flood = await self._desk.flooding(self.flood)
        if flood != self.flood:
            self.flood = flood
            log.warning("alarm flood" if flood else "alarm flood over")
            if self._topics is not None:
                await self._store.alarms.enqueue([self._topics.online(self._started_at,
                                                                      alarm_flood=flood)])
                self._sent()
        await self.robot_states()
        if changes:
            self._sent()
            self._changed(changes)
        self.changes = changes
        return changes

    async def _condition(self, robot: Watched) -> RobotCondition:
        if robot.online:
            with contextlib.suppress(DriverError, OSError):
                self._vials[robot.id] = await robot.vials_left()
        output = robot.output
        return RobotCondition(robot.id, robot.offline_since, robot.offline_reason,
                              robot.attention, self._vials.get(robot.id),
                              output.since if output else None,
                              f"fill {fill_code(output.fill_id)}" if output else None,
                              known=robot.known)

    async def robot_states(self) -> None:
        """Put each robot's state in the outbox where it changed since last said."""
        if self._topics is None:
            return
        messages = []
        for robot_id in sorted(self._dirty):
            robot = self._robots[robot_id]
            state = (robot.online, robot.state, robot.job)
            if self._states.get(robot_id) == state:
                continue
            self._states[robot_id] = state
            messages.append(self._topics.robot(robot_id, robot.config.kind,
                                               connected=robot.online, state=robot.state,
                                               job=robot.job, updated_at=self._clock.now()))
        self._dirty.clear()
        if messages:
            await self._store.alarms.enqueue(messages)
            self._sent()
