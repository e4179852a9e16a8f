"""What every robot worker shares: its queue, its fills and its recovery rules (its link, its
person and its output are :class:`controller.robots.link.RobotLink`'s).

A worker connects, reconciles what a lost link or a restart left open, then
takes fills from its queue one at a time. When a fill goes wrong, the
recovery table (:mod:`controller.domain.recovery`) says what becomes of the
order and whether the robot waits for a person. Subclasses speak to one kind
of robot: :class:`controller.robots.counter.CounterRobot`,
:class:`controller.robots.filler.FillerRobot`.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, Generic, TypeVar

import structlog

from controller.domain.orders import FillOutcome, OrderState, TransitionError
from controller.domain.recovery import MAX_ATTEMPTS, OrderAction, Problem, rule_for
from controller.robots.link import Dispense, RobotLink
from controller.robots.notices import (
    FillStarted,
    RobotKnown,
)
from controller.robots.outcomes import problem_of_refusal
from controller.store import FillRecord, FillRefused, FillResult
from drivers import errors
from drivers.events import EventStream

log = structlog.get_logger(__name__)


R = TypeVar("R")


class RobotWorker(RobotLink, Generic[R]):
    """The supervisor's hands on one robot; ``R`` is its driver's report of a job's fate."""

    numeric_jobs = False
    """True when the robot's job ids are numbers (the store then issues numeric ones)."""

    # -- what routing sees ----------------------------------------------------

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

    def unqueue(self) -> list[Dispense]:
        """Give up every queued fill (the robot went offline: its orders go elsewhere)."""
        items = []
        while not self.queue.empty():
            items.append(self.queue.get_nowait())
        self._queued_s = 0.0
        return items

    def enqueue(self, item: Dispense) -> None:
        """Queue a fill."""
        self._queued_s += item.estimate_s
        self.queue.put_nowait(item)
        self._arrived.set()

    # -- the link's life --------------------------------------------------------

    @abstractmethod
    async def _carry_out(self, fill: FillRecord) -> None:
        """Carry out one recorded fill on the robot and record how it ended."""

    @abstractmethod
    async def _job_report(self, fill: FillRecord) -> R:
        """The robot's report of ``fill``'s job; UnknownJob when it does not know it."""

    @abstractmethod
    def _job_is_over(self, report: R) -> bool:
        """True when the robot will do no more for that job (ended, or stopped for a person)."""

    @abstractmethod
    async def _follow_job(self, fill: FillRecord, events: EventStream[Any]) -> R:
        """Follow a running job until it is over; progress to the listeners on the way."""

    @abstractmethod
    async def _judge_and_record(self, fill: FillRecord, report: R) -> None:
        """Judge and record a job that is over, then release what the robot holds."""

    @abstractmethod
    async def _find_waiting_output(self) -> None:
        """After a reconnect or a restart: what the robot's output holds now, for a person."""

    @abstractmethod
    async def _ask_for_person_if_stopped(self) -> None:
        """Ask for a person when the robot stopped where only a person can clear it."""

    async def _recover(self) -> None:
        """Reconcile every open fill with the robot before anything new is sent.

        A job the robot knows is followed to its end and recorded; one it never
        started is started now. Either way no vial is filled twice.
        """
        for fill in await self._store.orders.open_fills(self.id):
            self.busy_s = self.estimate_s(fill.quantity)
            try:
                events = self.driver.events()
                try:
                    try:
                        report = await self._job_report(fill)
                    except errors.UnknownJob:
                        events.close()
                        await self._resume(fill)
                        continue
                    log.info("fill reconciled with robot", robot=self.id, fill=fill.id,
                             job=fill.job, report=str(report))
                    if not self._job_is_over(report):
                        report = await self._follow_job(fill, events)
                finally:
                    events.close()
                await self._judge_and_record(fill, report)
            finally:
                self.busy_s = 0.0
        await self._find_waiting_output()
        await self._ask_for_person_if_stopped()
        self.known = True
        self._floor.news(RobotKnown(self.id))

    async def _resume(self, fill: FillRecord) -> None:
        """Send a recorded fill the robot never started, if the store's checks still allow it
        today; otherwise record it refused (nothing was counted) and hand its order back."""
        try:
            await self._store.orders.check_resume(fill.id)
        except FillRefused as exc:
            log.warning("fill not resumed", robot=self.id, fill=fill.id, reason=str(exc))
            ended, action = await self._record(fill, FillResult(
                FillOutcome.REFUSED, 0, None, None, f"not resumed: {exc}"), Problem.NOT_ALLOWED)
            self._floor.fill_ended(ended, action)
            return
        log.info("fill resumed: robot never started it", robot=self.id, fill=fill.id,
                 job=fill.job)
        await self._carry_out(fill)

    async def _work(self) -> None:
        await self._recover()
        while True:
            await self._wait_for_person()
            while self.queue.empty():
                self._arrived.clear()
                await self._probing(self._arrived)
            await self._until_calibrated()
            item = self.queue.get_nowait()
            self._queued_s = max(0.0, self._queued_s - item.estimate_s)
            self.busy_s = item.estimate_s
            try:
                try:
                    fill = await self._store.orders.start_fill(item.order_id, item.bin_id,
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
                    self._floor.order_returned(item.order_id, self.id, str(exc))
                    continue
                log.info("fill started", robot=self.id, order=fill.order_id, fill=fill.id,
                         job=fill.job, bin=fill.bin, quantity=fill.quantity)
                self._floor.news(FillStarted(fill))
                self.job = fill.job
                await self._carry_out(fill)
            finally:
                self.busy_s = 0.0
                self.job = None

    # -- outcomes ----------------------------------------------------------------

    async def _record(self, fill: FillRecord, result: FillResult,
                      problem: Problem | None) -> tuple[FillRecord, OrderAction | None]:
        """Store the outcome (before the vial or chute is released), as the rules say."""
        action: OrderAction | None = None
        then: OrderState | None = None
        if problem is not None:
            rule = rule_for(problem)
            action = rule.order
            attempts = len(await self._store.orders.fills(fill.order_id))
            if action is not OrderAction.FAIL and attempts >= MAX_ATTEMPTS:
                log.warning("order failed too often; no more attempts", order=fill.order_id,
                            attempts=attempts)
                action = OrderAction.FAIL
            if action is not OrderAction.FAIL:
                then = OrderState.QUEUED
            if rule.robot_needs_person:
                self._needs_person(f"{problem}: {rule.response}")
        ended = await self._store.orders.finish_fill(fill.id, result, then=then)
        log.info("fill ended", robot=self.id, order=fill.order_id, fill=fill.id, job=fill.job,
                 outcome=result.outcome, counted=result.counted, weight_mg=result.weight_mg,
                 detail=result.detail, action=action)
        return ended, action

    async def _correct_if_empty(self, fill: FillRecord, outcome: FillOutcome) -> None:
        """A bin that ran empty holds nothing, whatever the sum of its movements said."""
        if outcome is FillOutcome.RAN_EMPTY:
            await self._store.stock.bin_ran_empty(fill.bin_id, fill.job)

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
            self._floor.fill_ended(ended, action)
