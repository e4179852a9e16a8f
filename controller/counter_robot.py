"""One tablet counter as the supervisor drives it: its link, its queue and its fills.

Every fill is recorded before the robot is told to count, and its outcome is
recorded before its tablets leave the chute. After a lost link or a restart,
the fills still open in the store are reconciled with the robot (``JB``)
before anything new is sent, so no vial is counted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from controller.backoff import Backoff
from controller.clock import Clock
from controller.config import Robot
from controller.domain.drugs import Formulary
from controller.domain.fills import judge_fill
from controller.domain.orders import FillOutcome
from controller.notices import (
    FillEnded,
    FillProgress,
    FillStarted,
    Notice,
    RobotCleared,
    RobotNeedsAttention,
    RobotOffline,
    RobotOnline,
)
from controller.store import FillRecord, FillResult, Store
from drivers.base import (
    CounterEvent,
    CountState,
    EventStream,
    JobEnded,
    JobOutcome,
    JobReport,
    Progress,
    TabletCounter,
)
from drivers.errors import DeviceError, DriverError, NotConnectedError, UnknownJob

log = structlog.get_logger(__name__)

POLL_S = 1.0
"""Seconds without an event during a count before asking the robot (``JB``) directly."""

_STOPPED = {
    JobOutcome.DONE: None,
    JobOutcome.JAM: FillOutcome.JAM,
    JobOutcome.EMPTY: FillOutcome.RAN_EMPTY,
    JobOutcome.ABORTED: FillOutcome.ABORTED,
}
_NEEDS_PERSON = {
    CountState.JAM: "jammed: clear the jam",
    CountState.EMPTY: "a channel ran empty: refill it",
    CountState.DOOR: "door open: close it",
    CountState.FAULT: "robot fault",
}


@dataclass(frozen=True, slots=True)
class Dispense:
    """An order routed to a bin of this robot, waiting its turn."""

    order_id: int
    bin_id: int


class CounterRobot:
    """The supervisor's hands on one tablet counter."""

    def __init__(
        self, *, robot: Robot, driver: TabletCounter, store: Store, formulary: Formulary,
        notify: Callable[[Notice], None], clock: Clock, backoff: Backoff,
    ) -> None:
        self.id = robot.id
        self.config = robot
        self.driver = driver
        self.queue: asyncio.Queue[Dispense] = asyncio.Queue()
        self.online = False
        self.busy = False
        self.attention: str | None = None
        self._store = store
        self._formulary = formulary
        self._notify = notify
        self._clock = clock
        self._backoff = backoff
        self._cleared = asyncio.Event()

    @property
    def ready(self) -> bool:
        """Connected and not waiting for a person."""
        return self.online and self.attention is None

    @property
    def load(self) -> int:
        """Fills queued or running here."""
        return self.queue.qsize() + int(self.busy)

    async def connect(self) -> None:
        """Open the link and ask who is there; raises the driver's error on failure."""
        await self.driver.open()
        try:
            identity = await self.driver.identify()
            missing = [c.channel for c in self.config.channels if c.channel > identity.channels]
            if missing:
                raise NotConnectedError(
                    f"robot has {identity.channels} channels; the configuration names "
                    f"channel(s) {missing}", device=self.id)
            await self._compare_calibration()
        except BaseException:
            await self._close()
            raise
        self.online = True
        log.info("robot connected", robot=self.id, vendor=identity.vendor, model=identity.model,
                 serial=identity.serial, firmware=identity.firmware)

    async def _compare_calibration(self) -> None:
        """Warn (once a connection) where the robot's calibration is not the configured one."""
        for channel in self.config.channels:
            held = await self.driver.read_calibration(channel.channel)
            wanted = channel.calibration
            if (held.sensitivity, held.gate_ms) != (wanted.sensitivity, wanted.gate_ms):
                log.warning("calibration differs from configuration", robot=self.id,
                            channel=channel.channel, robot_sensitivity=held.sensitivity,
                            robot_gate_ms=held.gate_ms, configured_sensitivity=wanted.sensitivity,
                            configured_gate_ms=wanted.gate_ms)

    async def clear(self) -> None:
        """A person fixed what stopped the robot: tell it (``CL``) and take work again."""
        await self.driver.clear()
        self.attention = None
        self._cleared.set()
        log.info("robot cleared", robot=self.id)
        self._notify(RobotCleared(self.id))

    async def run(self) -> None:
        """Work until cancelled, reconnecting with backoff when the link drops."""
        lost: str | None = None
        try:
            while True:
                try:
                    if not self.online:
                        await self.connect()
                    if lost is not None:
                        log.info("robot link recovered", robot=self.id)
                        self._notify(RobotOnline(self.id))
                    lost = None
                    self._backoff.reset()
                    await self._work()
                except DeviceError as exc:
                    # The robot refused something the supervisor thought safe: a person looks
                    # before anything else is sent.
                    log.error("robot refused a request", robot=self.id, error=str(exc))
                    self._needs_person(f"unexpected refusal: {exc.args[0]}")
                    await self._wait_for_person()
                    continue
                except (DriverError, OSError) as exc:
                    self.online = False
                    await self._close()
                    if lost is None:
                        lost = str(exc)
                        log.warning("robot link lost", robot=self.id, error=lost)
                        self._notify(RobotOffline(self.id, lost))
                await self._clock.sleep(self._backoff.next_delay())
        finally:
            await self._close()

    async def _close(self) -> None:
        self.online = False
        with contextlib.suppress(Exception):
            await self.driver.close()

    async def _work(self) -> None:
        await self._recover()
        while True:
            await self._wait_for_person()
            item = await self.queue.get()
            self.busy = True
            try:
                fill = await self._store.start_fill(item.order_id, item.bin_id)
                log.info("fill started", robot=self.id, order=fill.order_id, fill=fill.id,
                         job=fill.job, bin=fill.bin, quantity=fill.quantity)
                self._notify(FillStarted(fill))
                await self._count(fill)
            finally:
                self.busy = False

    async def _wait_for_person(self) -> None:
        """Return at once unless the robot waits for a person; then, once cleared."""
        while self.attention is not None:
            self._cleared.clear()
            await self._cleared.wait()

    async def _recover(self) -> None:
        """Finish what a lost link or a restart left open, before anything new."""
        for fill in await self._store.open_fills(self.id):
            self.busy = True
            try:
                events = self.driver.events()
                try:
                    report = await self.driver.job(fill.job)
                except UnknownJob:
                    events.close()
                    log.info("fill resumed: robot never started it", robot=self.id,
                             fill=fill.id, job=fill.job)
                    await self._count(fill)
                    continue
                log.info("fill reconciled with robot", robot=self.id, fill=fill.id,
                         job=fill.job, state=report.outcome, count=report.count)
                try:
                    if not report.finished:
                        report = await self._await_end(fill, events)
                finally:
                    events.close()
                await self._settle(fill, report)
            finally:
                self.busy = False
        status = await self.driver.status()
        if status.job is not None and status.state is not CountState.COUNTING:
            done = await self._store.fill_by_job(status.job)
            if done is not None and done.state == "ended":
                await self.driver.take(status.job)  # recorded, but its DN was lost
        await self._check_state()

    async def _count(self, fill: FillRecord) -> None:
        events = self.driver.events()
        try:
            try:
                await self.driver.count(fill.job, fill.bin, fill.quantity)
            except DeviceError as exc:
                ended = await self._record(fill, FillResult(
                    FillOutcome.REFUSED, 0, None, None, f"robot refused the count: {exc.args[0]}"))
                try:
                    await self._check_state()
                finally:
                    self._notify(FillEnded(ended))
                return
            report = await self._await_end(fill, events)
        finally:
            events.close()
        await self._settle(fill, report)

    async def _await_end(self, fill: FillRecord, events: EventStream[CounterEvent]) -> JobReport:
        while True:
            try:
                event = await asyncio.wait_for(anext(events), POLL_S)
            except TimeoutError:
                report = await self.driver.job(fill.job)
                if report.finished:
                    return report
                continue
            except StopAsyncIteration:
                raise DriverError("link closed while counting", device=self.id) from None
            if isinstance(event, JobEnded) and event.report.job == fill.job:
                return event.report
            if isinstance(event, Progress) and event.job == fill.job:
                self._notify(FillProgress(fill, event.count))

    async def _settle(self, fill: FillRecord, report: JobReport) -> None:
        drug = self._formulary[fill.ndc]
        outcome, check, detail = judge_fill(
            stopped=_STOPPED[report.outcome], quantity=fill.quantity, count=report.count,
            weight_mg=report.weight_mg, drug=drug, scale_noise_mg=self.config.scale_noise_mg)
        ended = await self._record(fill, FillResult(outcome, report.count, report.weight_mg,
                                                    check, detail))
        try:
            if outcome is FillOutcome.RAN_EMPTY:
                await self._store.correct_bin(fill.bin_id, 0, who="supervisor",
                                              reason=f"channel ran empty during job {fill.job}")
            await self.driver.take(fill.job)
            await self._check_state()
        finally:
            # The outcome is recorded: announce it even when the link drops from here on.
            self._notify(FillEnded(ended))

    async def _record(self, fill: FillRecord, result: FillResult) -> FillRecord:
        """Store the outcome (before the tablets leave the chute) and log it."""
        ended = await self._store.finish_fill(fill.id, result)
        log.info("fill ended", robot=self.id, order=fill.order_id, fill=fill.id, job=fill.job,
                 outcome=result.outcome, counted=result.counted, weight_mg=result.weight_mg,
                 detail=result.detail)
        return ended

    async def _check_state(self) -> None:
        """Ask for a person when the robot stopped in a state only a person can clear."""
        status = await self.driver.status()
        if status.state in _NEEDS_PERSON and self.attention is None:
            self._needs_person(_NEEDS_PERSON[status.state])

    def _needs_person(self, reason: str) -> None:
        self.attention = reason
        log.warning("robot needs attention", robot=self.id, reason=reason)
        self._notify(RobotNeedsAttention(self.id, reason))
