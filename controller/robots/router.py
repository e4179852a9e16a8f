"""Routing: which robot's queue an order goes on, and again after a robot failed it, handed it
back or went offline. It keeps what is promised: each routed order's reservation on its bin,
and the orders that wait for an offline robot."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import structlog

from controller.domain.fills import PARTIAL_OUTCOMES
from controller.domain.orders import OrderState
from controller.domain.recovery import OrderAction
from controller.domain.routing import BinChoice, Unroutable, choose_bin
from controller.robots.link import Dispense
from controller.robots.notices import OrderReturned, OrderSettled
from controller.robots.worker import RobotWorker
from controller.store import FillRecord, OrderRecord, Store

log = structlog.get_logger(__name__)


class Router:
    """Routes orders to the robots' queues (the supervisor's, which settles what it cannot)."""

    def __init__(self, store: Store, robots: Mapping[str, RobotWorker[Any]],
                 now: Callable[[], datetime], settle: Callable[[OrderSettled], None]) -> None:
        self.store = store
        self.robots = robots
        self._now = now
        """The supervisor's time now (its clock, whichever it is then)."""
        self._settle = settle
        """Says an order is settled (in EXCEPTION here), and wakes whoever waits for it."""
        self._reservations: dict[int, tuple[int, int]] = {}
        """order id → (bin id, quantity) routed but not yet taken off the bin."""
        self.parked: set[int] = set()
        """Queued orders only an offline robot can fill: routed again when one is back."""
        self._route_lock = asyncio.Lock()

    def release(self, order_id: int) -> None:
        """The order left its queue (filled, handed back, cancelled): free its reservation."""
        self._reservations.pop(order_id, None)

    def withdraw(self, order_id: int) -> None:
        """A person cancelled ``order_id``: no reservation, and no more waiting for a robot."""
        self.release(order_id)
        self.parked.discard(order_id)

    async def route(self, order: OrderRecord, *, exclude: frozenset[str] = frozenset(),
                     only: str | None = None, failed: str | None = None) -> OrderRecord:
        """Queue ``order`` on the robot that will finish it first, or move it to EXCEPTION.

        An offline robot is offered nothing: an order only an offline robot
        could fill waits, queued, until that robot is back.
        ``exclude`` names robots that must not take it (they failed it);
        ``only`` keeps it on one robot (a retry there); ``failed`` says what
        happened before, for the EXCEPTION's reason.
        """
        async with self._route_lock:
            current = await self.store.orders.order(order.id)
            if current.state is not OrderState.QUEUED or order.id in self._reservations:
                return current  # routed (or settled) meanwhile: never queued twice
            choices, refusals, offline = await self._candidates(order, exclude, only)
            choice = choose_bin(order.ndc, order.quantity, choices)
            if isinstance(choice, Unroutable) and offline:
                self.parked.add(order.id)
                log.info("order waits for an offline robot", order=order.id,
                            robots=sorted(set(offline)))
                return current
            if isinstance(choice, Unroutable):
                reason = "; ".join([choice.reason, *refusals])
                if exclude:
                    reason += f" (not counting {', '.join(sorted(exclude))}, which failed it)"
                if failed:
                    reason = f"{failed}; cannot fill it elsewhere: {reason}"
                settled = await self.store.orders.move_order(order.id, OrderState.EXCEPTION,
                                                             reason=reason)
                log.warning("order cannot be routed", order=order.id, reason=reason)
                self._settle(OrderSettled(order.id, OrderState.EXCEPTION, reason))
                return settled
            self._reservations[order.id] = (choice.bin_id, order.quantity)
            worker = self.robots[choice.robot]
            worker.enqueue(Dispense(order.id, choice.bin_id, worker.estimate_s(order.quantity)))
            log.info("order routed", order=order.id, robot=choice.robot, bin=choice.bin,
                     finish_s=round(choice.finish_s, 1))
            return order

    async def _candidates(self, order: OrderRecord, exclude: frozenset[str],
                          only: str | None) -> tuple[list[BinChoice], list[str], list[str]]:
        """The bins that could fill ``order`` now, why others of its drug cannot, and the
        offline robots that could once back."""
        reserved: dict[int, int] = {}
        for bin_id, quantity in self._reservations.values():
            reserved[bin_id] = reserved.get(bin_id, 0) + quantity
        refusals: list[str] = []
        choices = []
        offline: list[str] = []
        today = self._now().date()
        down = await self.store.alarms.out_of_service()
        for b in await self.store.stock.bins():
            robot = self.robots.get(b.robot)
            if robot is None or b.robot in exclude or (only and b.robot != only):
                continue
            if b.robot in down:
                if b.ndc == order.ndc:
                    refusals.append(f"{b.robot}: out of service for maintenance")
                continue
            if b.ndc == order.ndc and b.on_hand > 0 and b.expiry < today:
                refusals.append(f"{b.robot} bin {b.bin}: lot {b.lot} expired on "
                                f"{b.expiry:%Y-%m-%d}")
                continue
            if b.ndc == order.ndc and (why := robot.can_fill(order.ndc, order.quantity)):
                refusals.append(f"{b.robot}: {why}")
                continue
            if not robot.online:
                if b.ndc == order.ndc and b.on_hand - reserved.get(b.id, 0) >= order.quantity:
                    offline.append(b.robot)
                continue
            choices.append(BinChoice(
                b.id, b.robot, b.bin, b.ndc, b.on_hand - reserved.get(b.id, 0), robot.ready,
                robot.backlog_s + robot.estimate_s(order.quantity)))
        return choices, refusals, offline

    async def after_failed_fill(self, fill: FillRecord, action: OrderAction) -> None:
        """Fill the order again, on the same robot or another, as the recovery rule said."""
        order = await self.store.orders.order(fill.order_id)
        if order.state is not OrderState.QUEUED:
            return
        if action is OrderAction.REROUTE:
            away = await self.failed_on(order.id) | {fill.robot}
            log.info("order rerouted", order=order.id, away_from=sorted(away))
            await self.route(order, exclude=away, failed=f"{fill.robot}: {fill.detail}")
        else:
            await self.route(order, only=fill.robot, failed=f"{fill.robot}: {fill.detail}")

    async def returned(self, notice: OrderReturned) -> None:
        """A robot handed a queued order back (the store refused the fill there): route it
        to another robot, or to exception with why."""
        order = await self.store.orders.order(notice.order_id)
        await self.route(order, exclude=await self.failed_on(order.id) | {notice.robot},
                          failed=f"{notice.robot}: {notice.reason}")

    async def reroute_queue(self, robot: str) -> None:
        """A robot went offline: what waited on its queue is routed again (to a robot that
        answers, or it waits, queued, for one)."""
        worker = self.robots[robot]
        if worker.online:
            return  # back already
        for item in worker.unqueue():
            self.release(item.order_id)
            order = await self.store.orders.order(item.order_id)
            log.info("order taken off an offline robot's queue", order=order.id, robot=robot)
            await self.route(order, exclude=await self.failed_on(order.id))

    async def unpark(self) -> None:
        """A robot is back: route the orders that waited for one."""
        parked, self.parked = sorted(self.parked), set()
        for order_id in parked:
            order = await self.store.orders.order(order_id)
            await self.route(order, exclude=await self.failed_on(order_id))

    async def failed_on(self, order_id: int) -> frozenset[str]:
        """The robots that left a partial vial of this order."""
        return frozenset(f.robot for f in await self.store.orders.fills(order_id)
                         if f.outcome in PARTIAL_OUTCOMES)
