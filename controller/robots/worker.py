"""What every robot worker shares: its queue, its link's life, its person, its recovery rules.

A worker connects, reconciles what a lost link or a restart left open, then
takes fills from its queue one at a time. When a fill goes wrong, the
recovery table (:mod:`controller.domain.recovery`) says what becomes of the
order and whether the robot waits for a person. Subclasses speak to one kind
of robot: :class:`controller.robots.counter.CounterRobot`,
:class:`controller.robots.filler.FillerRobot`.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import structlog

from controller.backoff import Backoff
from controller.clock import Clock, wait_set
from controller.config import Robot
from controller.domain.drugs import Formulary
from controller.domain.orders import FillOutcome, OrderState, TransitionError
from controller.domain.recovery import MAX_ATTEMPTS, OrderAction, Problem, rule_for
from controller.robots.notices import (
    FillStarted,
    Floor,
    OutputTaken,
    OutputWaiting,
    RobotCleared,
    RobotKnown,
    RobotNeedsAttention,
)
from controller.robots.outcomes import problem_of_refusal
from controller.store import FillRecord, FillRefused, FillResult, Store
from drivers import errors
from drivers.events import EventStream
from drivers.tasks import cancelled

log = structlog.get_logger(__name__)


class OutputError(ValueError):
    """A person's "taken" that does not match what the robot's output holds."""


BUSY_POLL_S = 0.2
"""How often to look whether a robot that refused as busy has finished."""

PROBE_S = 1.0
"""How often an idle worker asks its robot how it is: a link lost while nothing was asked
of the robot is seen within seconds (the README's 5), not at the next order."""

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Output:
    """What waits in a robot's output (a filler's bay, a counter's chute) for a person."""

    fill_id: int
    order_id: int
    job: str
    since: datetime
    complete: bool
    """The order's filled vial (it goes on to its label), not a partial or unconfirmed one."""


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
        floor: Floor, clock: Clock, backoff: Backoff,
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
        self.output: Output | None = None
        """What waits in the robot's output for a person (the robot takes no job meanwhile)."""
        self.known = False
        """True once the worker has reconciled with the robot since start: until then its
        state (a fault, an output) is not known, only whether it answers."""
        self._queued_s = 0.0
        self._store = store
        self._formulary = formulary
        self._floor = floor
        self._clock = clock
        self._backoff = backoff
        self._person = asyncio.Event()
        """Set when a person cleared the robot or took its output."""
        self._link_failed: BaseException | None = None
        """A link error a person's request met while the worker waited for them."""
        self._arrived = asyncio.Event()
        """Set when a fill is queued."""

    # -- what routing sees ----------------------------------------------------

    @property
    def ready(self) -> bool:
        """Connected, and waiting for no person (a fault to clear, an output to take)."""
        return self.online and self.attention is None and self.output is None

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

    async def connect(self) -> None:
        """Open the link and check the robot is the one configured; the driver's error if not."""
        await self.driver.open()
        try:
            facts = await self._identify_and_check_bins()
        except BaseException:
            await self._close()
            raise
        self.online = True
        log.info("robot connected", robot=self.id, **facts)

    @abstractmethod
    async def _identify_and_check_bins(self) -> dict[str, object]:
        """Check the robot has the configured bins; what it says of itself, for the log."""

    def _require_bins(self, robot_has: int, word: str) -> None:
        """NotConnectedError when the configuration names bins beyond the robot's ``robot_has``."""
        missing = [c.channel for c in self.config.channels if c.channel > robot_has]
        if missing:
            raise errors.NotConnectedError(f"robot has {robot_has} {word}s; the configuration "
                                           f"names {word}(s) {missing}", device=self.id)

    @abstractmethod
    async def _tell_robot_cleared(self) -> None:
        """Tell the robot a person fixed what stopped it."""

    @abstractmethod
    async def _tell_output_taken(self, output: Output) -> None:
        """Tell the robot a person took its output (DN, OUTPUT_TAKEN)."""

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

    @abstractmethod
    async def _robot_is_busy(self) -> bool:
        """True while the robot is working on a job (ours or anyone's)."""

    @property
    def state(self) -> str:
        """One word for screens and the robot's MQTT message."""
        if not self.online:
            return "offline"
        if self.attention is not None:
            return "stopped"
        if self.job is not None or self.busy_s:
            return "working"
        return "output_waiting" if self.output is not None else "idle"

    async def vials_left(self) -> dict[int, int] | None:
        """Vials left in each hopper (vial fillers), or None where the robot has none."""
        return None

    async def clear(self, who: str) -> None:
        """``who`` fixed what stopped the robot, and took what its output held: tell it and
        take work again."""
        await self._tell_robot_cleared()
        self.attention = None
        if self.output is not None:
            await self.take_output(self.output.fill_id, who)
        self._person.set()
        log.info("robot cleared", robot=self.id)
        self._floor.news(RobotCleared(self.id))

    def waiting_output(self, fill_id: int | None = None) -> Output:
        """What the output holds (fill ``fill_id``'s, if named), or OutputError saying what
        it holds instead."""
        output = self.output
        if output is None:
            raise OutputError(f"{self.id}'s output holds nothing recorded: nothing to take")
        if fill_id is not None and output.fill_id != fill_id:
            raise OutputError(f"{self.id}'s output holds fill {output.fill_id} "
                              f"(order {output.order_id}), not fill {fill_id}")
        return output

    async def take_output(self, fill_id: int, who: str) -> Output:
        """A person took fill ``fill_id``'s vial or tablets from the output: tell the robot,
        which may then start its next job. OutputError when that is not what it holds."""
        output = self.waiting_output(fill_id)
        try:
            await self._tell_output_taken(output)
        except errors.DeviceError:
            raise
        except (errors.DriverError, OSError) as exc:
            # The link is gone: the worker, waiting for this very person, reconnects now (and
            # finds the output still held); the person takes it again once it answers.
            self._link_failed = exc
            self._person.set()
            raise
        self.output = None
        self._person.set()
        log.info("output taken", robot=self.id, fill=fill_id)
        self._floor.news(OutputTaken(self.id, fill_id, who))
        return output

    def _hold_output(self, fill: FillRecord, *, complete: bool) -> None:
        """The robot holds ``fill``'s vial or tablets until a person takes them."""
        if self.output is not None and self.output.fill_id == fill.id:
            return
        self.output = Output(fill.id, fill.order_id, fill.job, self._clock.now(), complete)
        log.info("output waits for a person", robot=self.id, fill=fill.id)
        self._floor.news(OutputWaiting(self.id, fill.id, fill.order_id))

    def unreachable(self, error: BaseException) -> None:
        """The robot could not be reached at start: offline, said once; ``run`` keeps trying."""
        self.online = False
        self.offline_since, self.offline_reason = self._clock.now(), str(error)
        log.error("robot not connected; will keep trying", robot=self.id, error=str(error))
        self._floor.offline(self.id, str(error))

    async def run(self) -> None:
        """Work until cancelled, reconnecting with backoff when the link drops.

        Nothing the worker meets stops the site: a link error takes the robot
        offline until it answers again; anything unexpected (a bug, a store
        error) is logged, stops this robot for a person (``robot_fault``), and
        the other robots go on.
        """
        lost: str | None = self.offline_reason
        if lost is not None:
            await self._clock.sleep(self._backoff.next_delay())
        stopped = False  # a person must look before anything more is sent (a refusal, a bug)
        try:
            while True:
                try:
                    if not self.online:
                        await self.connect()
                    if lost is not None:
                        log.info("robot link recovered", robot=self.id)
                        self.offline_since = self.offline_reason = None
                        self._floor.online(self.id)
                    lost = None
                    self._backoff.reset()
                    if stopped:
                        await self._wait_for_person()
                        stopped = False
                    await self._work()
                except errors.DeviceError as exc:
                    # The robot refused something the supervisor thought safe: a person looks
                    # before anything else is sent.
                    log.error("robot refused a request", robot=self.id, error=str(exc))
                    self._needs_person(f"unexpected refusal: {exc.args[0]}")
                    stopped = True
                    continue
                except (errors.DriverError, OSError) as exc:
                    if cancelled():  # a library swallowed our cancellation: stop as asked
                        raise asyncio.CancelledError from exc
                    await self._close()
                    if lost is None:
                        lost = str(exc)
                        self.offline_since, self.offline_reason = self._clock.now(), lost
                        log.warning("robot link lost", robot=self.id, error=lost)
                        self._floor.offline(self.id, lost)
                except Exception as exc:
                    if cancelled():
                        raise asyncio.CancelledError from exc
                    # Not the robot's fault as far as we know: keep it, and the site, up, but
                    # send nothing more to it until a person has looked.
                    log.exception("robot worker failed; robot stopped for a person",
                                  robot=self.id)
                    self._needs_person(f"internal error: {type(exc).__name__}: {exc}")
                    stopped = True
                    continue
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
            while self.queue.empty():
                self._arrived.clear()
                await self._probing(self._arrived)
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

    async def _wait_for_person(self) -> None:
        """Return at once unless the robot waits for a person (a fault to clear, an output to
        take); then, once they did."""
        while self.attention is not None or self.output is not None:
            self._person.clear()
            await self._probing(self._person)
            if self._link_failed is not None:
                failed, self._link_failed = self._link_failed, None
                raise failed

    async def _probing(self, event: asyncio.Event) -> None:
        """Wait until ``event`` is set, asking the robot how it is every PROBE_S meanwhile:
        the driver's error when the link is gone."""
        while not await wait_set(event, PROBE_S):
            await self._robot_is_busy()

    def _needs_person(self, reason: str) -> None:
        if self.attention is not None:
            return
        self.attention = reason
        log.warning("robot needs attention", robot=self.id, reason=reason)
        self._floor.news(RobotNeedsAttention(self.id, reason))

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

    async def _until_not_busy(self) -> None:
        """Wait (polling) until the robot has finished whatever job it is on."""
        while await self._robot_is_busy():
            await self._clock.sleep(BUSY_POLL_S)
