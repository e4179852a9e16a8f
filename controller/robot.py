"""What every robot worker shares: its queue, its link's life, its person, its recovery rules.

A worker connects, reconciles what a lost link or a restart left open, then
takes fills from its queue one at a time. When a fill goes wrong, the
recovery table (:mod:`controller.domain.recovery`) says what becomes of the
order and whether the robot waits for a person. Subclasses speak to one kind
of robot: :class:`controller.counter_robot.CounterRobot`,
:class:`controller.filler_robot.FillerRobot`.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import structlog

from controller.backoff import Backoff
from controller.clock import Clock
from controller.config import Robot
from controller.domain.drugs import Formulary
from controller.domain.orders import FillOutcome, OrderState, TransitionError
from controller.domain.recovery import MAX_ATTEMPTS, OrderAction, Problem, rule_for
from controller.notices import (
    FillEnded,
    FillStarted,
    Notice,
    OrderReturned,
    RobotCleared,
    RobotNeedsAttention,
    RobotOffline,
    RobotOnline,
)
from controller.store import SUPERVISOR, FillRecord, FillRefused, FillResult, Store
from drivers import errors
from drivers.base import EventStream
from drivers.tasks import cancelled

log = structlog.get_logger(__name__)

BUSY_POLL_S = 0.2
"""How often to look whether a robot that refused as busy has finished."""

PROBLEM_OF_OUTCOME: dict[FillOutcome, Problem] = {
    FillOutcome.JAM: Problem.JAM,
    FillOutcome.RAN_EMPTY: Problem.RAN_EMPTY,
    FillOutcome.NO_VIAL: Problem.NO_VIAL,
    FillOutcome.DOOR_OPENED: Problem.DOOR_OPENED,
    FillOutcome.CAP_FAULT: Problem.CAP_FAULT,
    FillOutcome.SCALE_FAULT: Problem.SCALE_FAULT,
    FillOutcome.SAFE: Problem.SAFE,
    FillOutcome.ABORTED: Problem.ABORTED,
    FillOutcome.WEIGHT_OFF: Problem.WEIGHT_OFF,
    FillOutcome.COUNT_BY_HAND: Problem.COUNT_BY_HAND,
}


def problem_of_refusal(error: errors.DeviceError) -> Problem:
    """The recovery table's name for a robot's refusal to start a fill."""
    match error:
        case errors.Busy():
            return Problem.REFUSED_BUSY
        case errors.OutputOccupied():
            return Problem.REFUSED_OUTPUT_OCCUPIED
        case errors.DoorOpen():
            return Problem.REFUSED_DOOR_OPEN
        case errors.NotCalibrated():
            return Problem.REFUSED_NOT_CALIBRATED
        case errors.NoSuchChannel():
            return Problem.REFUSED_NO_SUCH_BIN
        case errors.JammedOrEmpty():
            return Problem.REFUSED_STOPPED
        case _:
            return Problem.REFUSED_BAD_REQUEST


R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Dispense:
    """An order routed to a bin of this robot, waiting its turn."""

    order_id: int
    bin_id: int
    estimate_s: float
    """How long the robot will take for it, for routing's finish-time estimate."""


class RobotWorker(ABC, Generic[R]):
    """The supervisor's hands on one robot; ``R`` is its driver's report of a job's fate."""

    numeric_jobs = False
    """True when the robot's job ids are numbers (the store then issues numeric ones)."""

    def __init__(
        self, *, robot: Robot, driver: Any, store: Store, formulary: Formulary,
        notify: Callable[[Notice], None], clock: Clock, backoff: Backoff,
    ) -> None:
        self.id = robot.id
        self.config = robot
        self.driver = driver
        self.queue: asyncio.Queue[Dispense] = asyncio.Queue()
        self.online = False
        self.busy_s = 0.0
        """The estimate of the fill running now (0 when idle)."""
        self.attention: str | None = None
        self.offline_since: datetime | None = None
        """When the link was lost (None while it is up)."""
        self.offline_reason: str | None = None
        self.job: str | None = None
        """The job the robot is working on, as far as the supervisor knows."""
        self._queued_s = 0.0
        self._store = store
        self._formulary = formulary
        self._notify = notify
        self._clock = clock
        self._backoff = backoff
        self._cleared = asyncio.Event()

    # -- what routing sees ----------------------------------------------------

    @property
    def ready(self) -> bool:
        """Connected and not waiting for a person."""
        return self.online and self.attention is None

    @property
    def backlog_s(self) -> float:
        """Estimated seconds of work queued or running here."""
        return self._queued_s + self.busy_s

    @abstractmethod
    def estimate_s(self, quantity: int) -> float:
        """Seconds this robot takes to fill ``quantity`` (the machine's own rates)."""

    def can_fill(self, ndc: str, quantity: int) -> str | None:
        """Why this robot cannot take the order at all (None when it can)."""
        return None

    def enqueue(self, item: Dispense) -> None:
        """Queue a fill."""
        self._queued_s += item.estimate_s
        self.queue.put_nowait(item)

    # -- the link's life --------------------------------------------------------

    async def connect(self) -> None:
        """Open the link and check the robot is the one configured; the driver's error if not."""
        await self.driver.open()
        try:
            facts = await self._check_robot()
        except BaseException:
            await self._close()
            raise
        self.online = True
        log.info("robot connected", robot=self.id, **facts)

    @abstractmethod
    async def _check_robot(self) -> dict[str, object]:
        """Check the robot has the configured bins; what it says of itself, for the log."""

    def _require_bins(self, robot_has: int, word: str) -> None:
        """NotConnectedError when the configuration names bins beyond the robot's ``robot_has``."""
        missing = [c.channel for c in self.config.channels if c.channel > robot_has]
        if missing:
            raise errors.NotConnectedError(f"robot has {robot_has} {word}s; the configuration "
                                           f"names {word}(s) {missing}", device=self.id)

    @abstractmethod
    async def _clear_device(self) -> None:
        """Tell the robot a person fixed what stopped it."""

    @abstractmethod
    async def _fill(self, fill: FillRecord) -> None:
        """Carry out one recorded fill on the robot and record how it ended."""

    @abstractmethod
    async def _job(self, fill: FillRecord) -> R:
        """The robot's report of ``fill``'s job; UnknownJob when it does not know it."""

    @abstractmethod
    def _over(self, report: R) -> bool:
        """True when the robot will do no more for that job (ended, or stopped for a person)."""

    @abstractmethod
    async def _follow(self, fill: FillRecord, events: EventStream[Any]) -> R:
        """Follow a running job until it is over; progress to the listeners on the way."""

    @abstractmethod
    async def _settle(self, fill: FillRecord, report: R) -> None:
        """Judge and record a job that is over, then release what the robot holds."""

    @abstractmethod
    async def _release_recorded_output(self) -> None:
        """Release output whose outcome is recorded but whose release was lost with the link."""

    @abstractmethod
    async def _check_state(self) -> None:
        """Ask for a person when the robot stopped where only a person can clear it."""

    async def _recover(self) -> None:
        """Reconcile every open fill with the robot before anything new is sent.

        A job the robot knows is followed to its end and recorded; one it never
        started is started now. Either way no vial is filled twice.
        """
        for fill in await self._store.open_fills(self.id):
            self.busy_s = self.estimate_s(fill.quantity)
            try:
                events = self.driver.events()
                try:
                    try:
                        report = await self._job(fill)
                    except errors.UnknownJob:
                        events.close()
                        await self._resume(fill)
                        continue
                    log.info("fill reconciled with robot", robot=self.id, fill=fill.id,
                             job=fill.job, report=str(report))
                    if not self._over(report):
                        report = await self._follow(fill, events)
                finally:
                    events.close()
                await self._settle(fill, report)
            finally:
                self.busy_s = 0.0
        await self._release_recorded_output()
        await self._check_state()

    async def _resume(self, fill: FillRecord) -> None:
        """Send a recorded fill the robot never started, if the store's checks still allow it
        today; otherwise record it refused (nothing was counted) and hand its order back."""
        try:
            await self._store.check_resume(fill.id)
        except FillRefused as exc:
            log.warning("fill not resumed", robot=self.id, fill=fill.id, reason=str(exc))
            ended, action = await self._record(fill, FillResult(
                FillOutcome.REFUSED, 0, None, None, f"not resumed: {exc}"), Problem.NOT_ALLOWED)
            self._notify(FillEnded(ended, action))
            return
        log.info("fill resumed: robot never started it", robot=self.id, fill=fill.id,
                 job=fill.job)
        await self._fill(fill)

    @abstractmethod
    async def _busy(self) -> bool:
        """True while the robot is working on a job (ours or anyone's)."""

    @property
    def state(self) -> str:
        """One word for screens and the robot's MQTT message."""
        if not self.online:
            return "offline"
        if self.attention is not None:
            return "stopped"
        return "working" if self.job is not None or self.busy_s else "idle"

    async def vials_left(self) -> dict[int, int] | None:
        """Vials left in each hopper (vial fillers), or None where the robot has none."""
        return None

    async def clear(self) -> None:
        """A person fixed what stopped the robot: tell it and take work again."""
        await self._clear_device()
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
                        self.offline_since = self.offline_reason = None
                        self._notify(RobotOnline(self.id))
                    lost = None
                    self._backoff.reset()
                    await self._work()
                except errors.DeviceError as exc:
                    # The robot refused something the supervisor thought safe: a person looks
                    # before anything else is sent.
                    log.error("robot refused a request", robot=self.id, error=str(exc))
                    self._needs_person(f"unexpected refusal: {exc.args[0]}")
                    await self._wait_for_person()
                    continue
                except (errors.DriverError, OSError) as exc:
                    if cancelled():  # a library swallowed our cancellation: stop as asked
                        raise asyncio.CancelledError from exc
                    await self._close()
                    if lost is None:
                        lost = str(exc)
                        self.offline_since, self.offline_reason = self._clock.now(), lost
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
            self._queued_s = max(0.0, self._queued_s - item.estimate_s)
            self.busy_s = item.estimate_s
            try:
                try:
                    fill = await self._store.start_fill(item.order_id, item.bin_id,
                                                        numeric_job=self.numeric_jobs)
                except TransitionError:
                    # Cancelled while it waited on this queue: nothing was sent.
                    log.info("order no longer queued: skipped", robot=self.id,
                             order=item.order_id)
                    continue
                except FillRefused as exc:
                    # Out of service, or the bin's lot expired since it was routed here.
                    log.warning("fill refused here: order handed back", robot=self.id,
                                order=item.order_id, reason=str(exc))
                    self._notify(OrderReturned(item.order_id, self.id, str(exc)))
                    continue
                log.info("fill started", robot=self.id, order=fill.order_id, fill=fill.id,
                         job=fill.job, bin=fill.bin, quantity=fill.quantity)
                self._notify(FillStarted(fill))
                self.job = fill.job
                await self._fill(fill)
            finally:
                self.busy_s = 0.0
                self.job = None

    async def _wait_for_person(self) -> None:
        """Return at once unless the robot waits for a person; then, once cleared."""
        while self.attention is not None:
            self._cleared.clear()
            await self._cleared.wait()

    def _needs_person(self, reason: str) -> None:
        if self.attention is not None:
            return
        self.attention = reason
        log.warning("robot needs attention", robot=self.id, reason=reason)
        self._notify(RobotNeedsAttention(self.id, reason))

    # -- outcomes ----------------------------------------------------------------

    async def _record(self, fill: FillRecord, result: FillResult,
                      problem: Problem | None) -> tuple[FillRecord, OrderAction | None]:
        """Store the outcome (before the vial or chute is released), as the rules say."""
        action: OrderAction | None = None
        then: OrderState | None = None
        if problem is not None:
            rule = rule_for(problem)
            action = rule.order
            attempts = len(await self._store.fills(fill.order_id))
            if action is not OrderAction.FAIL and attempts >= MAX_ATTEMPTS:
                log.warning("order failed too often; no more attempts", order=fill.order_id,
                            attempts=attempts)
                action = OrderAction.FAIL
            if action is not OrderAction.FAIL:
                then = OrderState.QUEUED
            if rule.robot_needs_person:
                self._needs_person(f"{problem}: {rule.response}")
        ended = await self._store.finish_fill(fill.id, result, then=then)
        log.info("fill ended", robot=self.id, order=fill.order_id, fill=fill.id, job=fill.job,
                 outcome=result.outcome, counted=result.counted, weight_mg=result.weight_mg,
                 detail=result.detail, action=action)
        return ended, action

    async def _correct_if_empty(self, fill: FillRecord, outcome: FillOutcome) -> None:
        """A bin that ran empty holds nothing, whatever the sum of its movements said."""
        if outcome is FillOutcome.RAN_EMPTY:
            await self._store.correct_bin(fill.bin_id, 0, who=SUPERVISOR,
                                          reason=f"bin ran empty during job {fill.job}")

    async def _refused(self, fill: FillRecord, error: errors.DeviceError) -> None:
        """The robot refused to start the fill: nothing was dispensed."""
        problem = problem_of_refusal(error)
        ended, action = await self._record(fill, FillResult(
            FillOutcome.REFUSED, 0, None, None, f"robot refused the fill: {error.args[0]}"),
            problem)
        try:
            if action is OrderAction.RETRY:
                await self._until_not_busy()
        finally:
            self._notify(FillEnded(ended, action))

    async def _until_not_busy(self) -> None:
        """Wait (polling) until the robot has finished whatever job it is on."""
        while await self._busy():
            await self._clock.sleep(BUSY_POLL_S)
