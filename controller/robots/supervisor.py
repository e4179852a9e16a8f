"""The supervisor: one worker per robot in a TaskGroup, routing orders to their bins.

It connects every robot in parallel and reports every failure at once; it
routes each order to a bin that holds its NDC with enough on hand; the
robots' workers count, weigh and record, and tell it what happened (notices.Floor);
listeners (the demo's screen, the alarm watch, the MQTT publisher) hear every notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Coroutine, Mapping
from types import TracebackType
from typing import Any, Self

import structlog

from controller.alarms.desk import AlarmDesk
from controller.alarms.watch import AlarmWatch
from controller.backoff import Backoff
from controller.clock import Clock, wait_set
from controller.config import Settings
from controller.domain.alarms import AlarmChange
from controller.domain.orders import FillOutcome, Order, OrderState, order_problems
from controller.domain.recovery import OrderAction
from controller.mqtt.publisher import BrokerLink, Publisher
from controller.mqtt.topics import Topics
from controller.robots.counter import CounterRobot
from controller.robots.filler import FillerRobot
from controller.robots.floor import bin_specs, make_driver
from controller.robots.notices import (
    AlarmsChanged,
    FillEnded,
    FillStarted,
    Notice,
    OrderMoved,
    OrderReturned,
    OrderSettled,
    OutputTaken,
    OutputWaiting,
    RobotCleared,
    RobotKnown,
    RobotNeedsAttention,
    RobotOffline,
    RobotOnline,
)
from controller.robots.output import Output, OutputError
from controller.robots.router import Router
from controller.robots.worker import RobotWorker
from controller.store import FillRecord, OrderRecord, Store
from controller.store.watch import ChangeWatch
from drivers.tasks import stop_tasks

log = structlog.get_logger(__name__)

BROKER_WAIT_S = 3.0
SETTLED = frozenset({OrderState.FILLED, OrderState.LABELED, OrderState.VERIFIED,
                     OrderState.RELEASED, OrderState.EXCEPTION, OrderState.REJECTED,
                     OrderState.CANCELLED})


class Supervisor:
    """Drives every robot of a configuration; use as ``async with``.

    ``urls`` replaces a robot's configured url (the address of its simulator).
    """

    def __init__(self, settings: Settings, store: Store, *, urls: Mapping[str, str] | None = None,
                 clock: Clock | None = None, seed: int | None = None,
                 mqtt: BrokerLink | None = None) -> None:
        self.settings = settings
        self.store = store
        if store.formulary is None:
            store.formulary = settings.formulary  # the drugs whose schedules orders record
        self.clock = clock or Clock()
        self.started_at = self.clock.now()
        self.topics = Topics(settings.config.site.id) if mqtt is not None else None
        self.publisher = (Publisher(store, self.topics, mqtt, clock=self.clock,
                                    started_at=self.started_at,
                                    status=lambda: {"alarm_flood": self.watch.flood})
                          if mqtt is not None and self.topics is not None else None)
        self.desk = AlarmDesk(settings, store, self.clock)
        self._listeners: list[Callable[[Notice], None]] = []
        self._settled: dict[int, asyncio.Event] = {}
        self._task: asyncio.Task[None] | None = None
        rng = random.Random(seed)
        self._tasks: set[asyncio.Task[None]] = set()
        self._workers: list[asyncio.Task[None]] = []
        self.robots: dict[str, RobotWorker[Any]] = {}
        for robot in settings.config.robots:
            url = (urls or {}).get(robot.id, robot.url)
            if url.startswith("sim:"):
                raise ValueError(f"robot {robot.id} is simulated ({url}): start its simulator "
                                 f"and pass its address in urls")
            worker = CounterRobot if robot.kind == "tablet-counter" else FillerRobot
            self.robots[robot.id] = worker(
                robot=robot, driver=make_driver(robot, url), store=store,
                formulary=settings.formulary, floor=self, clock=self.clock,
                backoff=Backoff(rng=random.Random(rng.random())))
        if self.publisher is not None:
            self.publisher.robots = frozenset(self.robots)
        self.router = Router(store, self.robots, lambda: self.clock.now(), self._settle)
        self.watch = AlarmWatch(self.desk, store, self.robots, self.topics, self.clock,
                                self._sent, self.started_at, self.alarms_changed)
        self._watch_task: asyncio.Task[None] | None = None

    def subscribe(self, listener: Callable[[Notice], None]) -> None:
        """Call ``listener`` with every notice from now on."""
        self._listeners.append(listener)

    # -- lifecycle -----------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    async def start(self) -> None:
        """Load the bins, connect every robot at once, start the workers, resume queued orders.

        With MQTT, the publisher starts first and the standing alarms are
        published again (a broker restarted with us has lost its retained ones).
        """
        self.store.topics = self.topics
        await self.store.stock.ensure_bins(bin_specs(self.settings))
        if self.publisher is not None:
            await self.desk.republish()
            self.publisher.start()
            # Give the broker a moment, so that the site's stale retained messages are gone
            # before anything new is said; a broker that is down does not hold us up.
            await wait_set(self.publisher.ready, BROKER_WAIT_S)
        await self.connect_all()
        # Queued orders go back on the queues before any worker runs: a worker reconciling
        # an open fill may queue its order again, and must not meet it here.
        for order in await self.store.orders.orders():
            if order.state is OrderState.QUEUED:
                # An order a robot left a partial vial of is not sent back to that robot.
                await self.router.route(order, exclude=await self.router.failed_on(order.id))
        self._task = asyncio.create_task(self._run(), name="supervisor")
        self._task.add_done_callback(self._stopped)
        await self.watch.check()
        self._watch_task = asyncio.create_task(self.watch.run(), name="alarms")
        if (changes := self.store.change_watch()) is not None:
            self._spawn(self._others_changes(changes), "store-changes")

    async def _others_changes(self, changes: ChangeWatch) -> None:
        """Check the alarms and send the outbox as soon as another process (the CLI) changed
        the store."""
        period = self.settings.config.mqtt.store_poll_ms / 1000
        try:
            while True:
                await changes.changes(period)
                self.watch.poke()
                self._sent()
        finally:
            changes.close()

    async def connect_all(self) -> None:
        """Connect every robot in parallel. One that cannot be reached is offline (its
        ``robot_offline`` alarm says why) and its worker keeps trying: the site runs on."""
        robots = list(self.robots.values())
        results = await asyncio.gather(*(r.connect() for r in robots), return_exceptions=True)
        for robot, result in zip(robots, results, strict=True):
            if isinstance(result, (asyncio.CancelledError, KeyboardInterrupt, SystemExit)):
                raise result
            if isinstance(result, BaseException):
                robot.unreachable(result)

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as group:
            self._workers = [group.create_task(robot.run(), name=f"robot-{robot.id}")
                             for robot in self.robots.values()]

    def _stopped(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.critical("supervisor stopped: a robot worker failed", error=repr(task.exception()))

    async def stop(self) -> None:
        """Stop every worker, close every link, send what the outbox holds and say offline."""
        if self._watch_task is not None:
            await stop_tasks([self._watch_task])
            self._watch_task = None
        if self._task is not None:
            # A worker's failure was logged when it happened (_stopped); closing goes on. A
            # worker whose cancellation a library swallowed is cancelled again until it stops.
            await stop_tasks([self._task, *self._workers])
            self._task = None
        # Reroutes and refills still under way end here, each transaction rolled back or
        # committed: a stopped supervisor leaves nothing holding the store's write lock.
        await stop_tasks(list(self._tasks))
        for robot in self.robots.values():
            await robot.driver.close()
        if self.publisher is not None:
            for robot in self.robots.values():
                robot.online = False
                self.watch.poke(robot.id)
            with contextlib.suppress(Exception):  # the store is closing: the states can wait
                await self.watch.robot_states()
            await self.publisher.stop()

    def _sent(self) -> None:
        if self.publisher is not None:
            self.publisher.wake()

    def alarms_changed(self, changes: list[AlarmChange]) -> None:
        """Alarms changed (by the watch, or a person at the console): send them now, and tell
        the screens."""
        self._sent()
        self.news(AlarmsChanged(tuple(c.after.id for c in changes)))

    # -- orders --------------------------------------------------------------

    async def submit(self, order: Order, *, who: str = "supervisor") -> OrderRecord:
        """Receive an order, validate it, and route it to a robot (or say why not). The same
        prescription fill submitted again is the same order, routed once."""
        return (await self.take(order, who=who))[0]

    async def take(self, order: Order, *, who: str = "supervisor") -> tuple[OrderRecord, bool]:
        """As ``submit``: (the order, True when it is new)."""
        problems = order_problems(order, self.settings.formulary)
        reason = "; ".join(problems) or None
        record, new = await self.store.orders.receive_order(
            order, who=who, then=OrderState.REJECTED if problems else OrderState.QUEUED,
            reason=reason)
        if not new:
            log.info("order submitted again: the same order", order=record.id)
            return record, False
        self._settled[record.id] = asyncio.Event()
        self.news(OrderMoved(record.id, record.state, who))
        if problems:
            log.warning("order rejected", order=record.id, reason=reason)
            self._settle(OrderSettled(record.id, record.state, reason))
            return record, True
        log.info("order queued", order=record.id, ndc=order.ndc, quantity=order.quantity)
        # Nothing is awaited after routing: the caller has the record before a robot starts it.
        return await self.router.route(record), True

    async def requeued(self, order_id: int, *, robot: str | None = None) -> OrderRecord:
        """A person sent ``order_id`` back to QUEUED (a retry, a rejected vial): route it,
        away from robots that left a partial vial of it, or to ``robot`` if named."""
        order = await self.store.orders.order(order_id)
        self._settled[order_id] = asyncio.Event()
        if robot is not None:
            if robot not in self.robots:
                raise ValueError(f"no robot {robot!r}; expected one of "
                                 f"{', '.join(self.robots)}")
            return await self.router.route(order, only=robot)
        # Away from the robots that failed it, unless only they hold its drug: a person
        # who retries an order there has seen to the robot.
        failed = await self.router.failed_on(order_id)
        holders = {b.robot for b in await self.store.stock.bins()
                   if b.ndc == order.ndc and b.robot in self.robots}
        return await self.router.route(order, exclude=failed if holders - failed else frozenset())

    def withdrawn(self, order_id: int) -> None:
        """A person cancelled ``order_id``: its place on a robot's queue is given up (the
        robot skips it) and its bin's reservation released."""
        self.router.withdraw(order_id)
        self._settled.setdefault(order_id, asyncio.Event()).set()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.critical("supervisor task failed", task=task.get_name(),
                         error=repr(task.exception()))

    async def clear(self, robot: str, who: str) -> None:
        """``who`` fixed what stopped ``robot`` and took what its output held: recorded
        (audited) before the robot is told."""
        worker = self.robots[robot]
        output = worker.output
        await self.store.audit.audit(who, "robot cleared", f"robot:{robot}", {
            "was": worker.attention,
            "output_taken": None if output is None else {"fill": output.fill_id,
                                                         "order": output.order_id}})
        await worker.clear(who)

    def holding(self, fill_id: int) -> str | None:
        """The robot whose output holds fill ``fill_id``'s vial or tablets, if one does."""
        return next((r.id for r in self.robots.values()
                     if r.output is not None and r.output.fill_id == fill_id), None)

    async def take_output(self, robot: str, who: str, *, fill_id: int | None = None,
                          via: str = "taken") -> Output:
        """``who`` took what ``robot``'s output holds (fill ``fill_id``'s, if named): recorded
        (audited) before the robot is told, which may then start its next job."""
        if robot not in self.robots:
            raise OutputError(f"no robot {robot!r}; expected one of {', '.join(self.robots)}")
        worker = self.robots[robot]
        output = worker.waiting_output(fill_id)
        await self.store.audit.audit(who, "output taken", f"robot:{robot}",
                                     {"fill": output.fill_id, "order": output.order_id, "via": via})
        return await worker.take_output(output.fill_id, who)

    async def wait_settled(self, order_ids: list[int]) -> list[OrderRecord]:
        """Wait until every order is filled, in exception, rejected or cancelled."""
        for order_id in order_ids:
            event = self._settled.setdefault(order_id, asyncio.Event())
            if (await self.store.orders.order(order_id)).state in SETTLED:
                continue
            waiter = asyncio.ensure_future(event.wait())
            watched = {waiter} if self._task is None else {waiter, self._task}
            await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            if not waiter.done():
                waiter.cancel()
                raise RuntimeError("the supervisor stopped before the orders settled") from (
                    None if self._task is None or self._task.cancelled()
                    else self._task.exception())
        return [await self.store.orders.order(order_id) for order_id in order_ids]

    # -- what the workers tell it (notices.Floor) ----------------------------

    def news(self, notice: Notice) -> None:
        """Pass ``notice`` to the alarm watch and every listener; nothing is decided on it."""
        robot = getattr(notice, "robot", None) or getattr(getattr(notice, "fill", None),
                                                          "robot", None)
        if isinstance(notice, RobotOnline | RobotKnown | RobotOffline | RobotNeedsAttention
                      | RobotCleared | FillStarted | FillEnded | OutputWaiting | OutputTaken):
            self.watch.poke(robot)
        for listener in self._listeners:
            try:
                listener(notice)
            except Exception:
                # A screen or a publisher that fails must never stop a robot mid-fill.
                log.exception("notice listener failed", listener=repr(listener),
                              notice=type(notice).__name__)

    def online(self, robot: str) -> None:
        """A robot answers: route the orders that waited for one."""
        self.news(RobotOnline(robot))
        if self.router.parked:
            self._spawn(self.router.unpark(), f"unpark-{robot}")

    def offline(self, robot: str, reason: str) -> None:
        """A robot stopped answering: route what waited on its queue elsewhere."""
        self.news(RobotOffline(robot, reason))
        if robot in self.robots:
            self._spawn(self.router.reroute_queue(robot), f"reroute-{robot}")

    def fill_ended(self, fill: FillRecord, action: OrderAction | None) -> None:
        """Release the fill's reservation; fill its order again, or settle it."""
        self.news(FillEnded(fill, action))
        self.router.release(fill.order_id)
        if action not in (None, OrderAction.FAIL):
            self._spawn(self.router.after_failed_fill(fill, action),
                        f"refill-order-{fill.order_id}")
            return
        state = OrderState.FILLED if fill.outcome is FillOutcome.FILLED else OrderState.EXCEPTION
        self._settle(OrderSettled(fill.order_id, state, fill.detail, fill.id))

    def order_returned(self, order_id: int, robot: str, reason: str) -> None:
        """Release the order's reservation and route it to another robot (or exception)."""
        notice = OrderReturned(order_id, robot, reason)
        self.news(notice)
        self.router.release(order_id)
        self._spawn(self.router.returned(notice), f"reroute-order-{order_id}")

    def _settle(self, notice: OrderSettled) -> None:
        """Say an order is settled, and wake whoever waits for it to be."""
        self.news(notice)
        self._settled.setdefault(notice.order_id, asyncio.Event()).set()
