"""What a robot's worker tells the floor it works on: notices, news for whoever listens (the
demo's screen, the alarm watch, the MQTT publisher), and the :class:`Floor`'s calls, for what
the supervisor must do about it (route again, fill again, settle an order).

Notices carry ids, never patient data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from controller.domain.recovery import OrderAction
from controller.store import FillRecord


@dataclass(frozen=True, slots=True)
class RobotOnline:
    """A robot's link is up (first time or after a loss)."""

    robot: str


@dataclass(frozen=True, slots=True)
class RobotKnown:
    """The supervisor reconciled with a robot since it started: its state is known now."""

    robot: str


@dataclass(frozen=True, slots=True)
class RobotOffline:
    """A robot's link is down; the supervisor keeps trying."""

    robot: str
    error: str


@dataclass(frozen=True, slots=True)
class RobotNeedsAttention:
    """A robot stopped on a jam, an empty channel or an open door until a person clears it."""

    robot: str
    reason: str


@dataclass(frozen=True, slots=True)
class RobotCleared:
    """A person cleared the robot; it takes work again."""

    robot: str


@dataclass(frozen=True, slots=True)
class OutputWaiting:
    """A robot holds a fill's vial or tablets in its output until a person takes them; it
    takes no new job meanwhile."""

    robot: str
    fill_id: int
    order_id: int


@dataclass(frozen=True, slots=True)
class OutputTaken:
    """A person took the robot's output; the robot was told (DN, OUTPUT_TAKEN)."""

    robot: str
    fill_id: int
    who: str


@dataclass(frozen=True, slots=True)
class FillStarted:
    """A fill is recorded and about to be sent to its robot."""

    fill: FillRecord


@dataclass(frozen=True, slots=True)
class FillProgress:
    """Tablets counted so far."""

    fill: FillRecord
    count: int


@dataclass(frozen=True, slots=True)
class FillEnded:
    """A fill's outcome is recorded; ``action`` is what the recovery rules do with its order."""

    fill: FillRecord
    action: OrderAction | None = None
    """None when the fill succeeded or the order simply settles."""


@dataclass(frozen=True, slots=True)
class OrderReturned:
    """A robot handed a queued order back without filling it: the store refused the fill
    there (an expired lot, the robot out of service). The supervisor routes it again."""

    order_id: int
    robot: str
    reason: str


@dataclass(frozen=True, slots=True)
class OrderSettled:
    """An order reached a state that needs no robot: filled, exception or rejected."""

    order_id: int
    state: str
    reason: str | None
    fill_id: int | None = None
    """The fill that settled it, or None when no robot was involved."""


@dataclass(frozen=True, slots=True)
class OrderMoved:
    """A person (or intake) moved an order on: received, cancelled, retried, counted by
    hand, labelled, verified, rejected or released. For screens; nothing acts on it."""

    order_id: int
    state: str
    who: str


@dataclass(frozen=True, slots=True)
class AlarmsChanged:
    """Alarms were raised, cleared, acknowledged or shelved (their ids), or a bin's stock
    changed what they will be. For screens; the outbox already holds what MQTT says."""

    alarm_ids: tuple[str, ...]


Notice = (RobotOnline | RobotKnown | RobotOffline | RobotNeedsAttention | RobotCleared
          | OutputWaiting | OutputTaken | FillStarted | FillProgress | FillEnded | OrderReturned
          | OrderSettled | OrderMoved | AlarmsChanged)


class Floor(Protocol):
    """What a worker tells the supervisor. Each call says what happened; the supervisor both
    acts on it and passes the matching notice on as news."""

    def news(self, notice: Notice) -> None:
        """Tell whoever listens; nothing is decided on it."""

    def online(self, robot: str) -> None:
        """``robot`` answers (again): orders that waited for a robot are routed."""

    def offline(self, robot: str, reason: str) -> None:
        """``robot`` stopped answering: the orders queued on it are routed again."""

    def fill_ended(self, fill: FillRecord, action: OrderAction | None) -> None:
        """``fill`` ended and is recorded: its bin's reservation is released, and its order is
        filled again as ``action`` says, or settled."""

    def order_returned(self, order_id: int, robot: str, reason: str) -> None:
        """``robot`` could not start ``order_id`` (the store refused the fill there): it is
        routed to another robot, or to exception."""
