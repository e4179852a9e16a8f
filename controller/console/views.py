"""What the console's pages show, read from the supervisor and the store: robots as tiles,
the queue, the label station's vials, throughput. No patient data but where a page's task
needs it (the label station, verification, an order's page)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.console.feed import Count, Feed
from controller.domain.alarms import Alarm, AlarmState
from controller.domain.orders import FillOutcome, OrderState
from controller.pharmacy.service import Pharmacy
from controller.store import FillRecord, OrderRecord, fill_code

OPEN_STATES = (OrderState.RECEIVED, OrderState.QUEUED, OrderState.DISPENSING,
               OrderState.FILLED, OrderState.LABELED, OrderState.VERIFIED,
               OrderState.EXCEPTION)
"""States an order still has work in, in the order the work goes."""
SHIFT = timedelta(hours=8)
"""Throughput is drawn over the last shift."""


@dataclass(frozen=True, slots=True)
class RobotView:
    """One robot as a tile shows it: state in words, link, job and live count, output."""

    id: str
    kind: str
    state: str
    online: bool
    link: str
    attention: str | None
    job: str | None
    count: Count | None
    output_fill: str | None
    output_order: int | None
    output_since: datetime | None
    out_of_service: bool
    alarms: tuple[Alarm, ...]

    @property
    def worst(self) -> Alarm | None:
        """The robot's most urgent standing alarm (its tile takes that colour)."""
        return max(self.alarms, key=lambda a: a.priority.rank, default=None)


async def robots(pharmacy: Pharmacy, feed: Feed) -> list[RobotView]:
    """Every robot, in the configuration's order."""
    standing = await pharmacy.store.alarms.alarms()
    down = await pharmacy.store.alarms.out_of_service()
    views = []
    for r in pharmacy.supervisor.robots.values():
        output = r.output
        views.append(RobotView(
            id=r.id, kind=r.config.kind, state=r.state, online=r.online,
            link="online" if r.online else f"offline: {r.offline_reason or 'connecting'}",
            attention=r.attention, job=r.job, count=feed.counts.get(r.id),
            output_fill=fill_code(output.fill_id) if output else None,
            output_order=output.order_id if output else None,
            output_since=output.since if output else None, out_of_service=r.id in down,
            alarms=tuple(a for a in standing if a.robot == r.id and a.bin is None)))
    return views


def unacknowledged(alarms: list[Alarm]) -> int:
    """How many alarms no one has acknowledged."""
    return sum(a.state in (AlarmState.UNACK_ACTIVE, AlarmState.UNACK_RTN) for a in alarms)


@dataclass(frozen=True, slots=True)
class Queue:
    """Orders by state, and those with work left (no patient names)."""

    counts: dict[str, int]
    open: list[OrderRecord]
    exceptions: list[tuple[OrderRecord, str | None]]
    """Orders in exception, each with the recovery rules' advice."""


async def queue(pharmacy: Pharmacy) -> Queue:
    """The queue as the technician reads it."""
    orders = await pharmacy.store.orders.orders()
    counts = Counter(str(o.state) for o in orders)
    open_ = sorted((o for o in orders if o.state in OPEN_STATES and
                    o.state is not OrderState.EXCEPTION),
                   key=lambda o: (OPEN_STATES.index(o.state), o.id))
    exceptions = [(o, o.reason) for o in orders if o.state is OrderState.EXCEPTION]
    return Queue({str(s): counts.get(str(s), 0) for s in OrderState}, open_, exceptions)


@dataclass(frozen=True, slots=True)
class WaitingVial:
    """A filled vial waiting for its label scan: where it is and what was printed."""

    order: OrderRecord
    fill: FillRecord
    robot: str | None
    """The robot whose output holds it (None: it is out, counted by hand)."""
    printed: int
    """Labels printed for it so far."""


async def label_station(pharmacy: Pharmacy) -> list[WaitingVial]:
    """Every filled vial whose label is not yet scanned onto it, robots' outputs first."""
    waiting = []
    for order in await pharmacy.store.orders.orders(state=OrderState.FILLED):
        fill = await pharmacy.store.vials.order_vial(order.id)
        if fill is None:
            continue
        labels = await pharmacy.store.verification.labels_for(fill.id)
        waiting.append(WaitingVial(order, fill, pharmacy.supervisor.holding(fill.id),
                                   sum(x.outcome == "printed" for x in labels)))
    return sorted(waiting, key=lambda w: (w.robot is None, w.robot or "", w.fill.id))


@dataclass(frozen=True, slots=True)
class Throughput:
    """Vials per hour per robot over the shift, and the fills that failed, by cause."""

    hours: list[datetime]
    """The start of each hour drawn, oldest first."""
    vials: dict[str, list[int]]
    """Each robot's filled vials in each hour."""
    causes: list[tuple[str, int]]
    """Each cause of a failed fill in the shift, most frequent first."""


def throughput(fills: list[FillRecord], robots: list[str], now: datetime) -> Throughput:
    """Count the shift's vials by robot and hour, and its failed fills by cause."""
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    hours = [end - SHIFT + timedelta(hours=h) for h in range(int(SHIFT / timedelta(hours=1)))]
    vials = {robot: [0] * len(hours) for robot in robots}
    causes: Counter[str] = Counter()
    for fill in fills:
        if fill.ended_at is None or fill.ended_at < hours[0]:
            continue
        if fill.outcome is FillOutcome.FILLED:
            index = int((fill.ended_at - hours[0]) / timedelta(hours=1))
            if fill.robot in vials and 0 <= index < len(hours):
                vials[fill.robot][index] += 1
        elif fill.outcome is not None:
            causes[str(fill.outcome).replace("_", " ")] += 1
    return Throughput(hours, vials, causes.most_common())

