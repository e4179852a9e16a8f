"""Orders and their states: a prescription from receipt to a filled vial.

The full life (labels, verification, release) is in DESIGN.md; this module
holds the states and the transitions allowed between them, as data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from controller.domain.drugs import Formulary

MAX_QUANTITY = 9999


class OrderState(StrEnum):
    """Where an order stands."""

    RECEIVED = "received"
    QUEUED = "queued"
    DISPENSING = "dispensing"
    FILLED = "filled"
    LABELED = "labeled"
    """The printed label's barcode was scanned onto the filled vial."""
    VERIFIED = "verified"
    """A pharmacist checked the vial and its evidence, and approved it."""
    RELEASED = "released"
    """To the pickup bin, or to shipping; closed for changes."""
    EXCEPTION = "exception"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    OrderState.RECEIVED: frozenset({OrderState.QUEUED, OrderState.REJECTED,
                                    OrderState.CANCELLED}),
    OrderState.QUEUED: frozenset({OrderState.DISPENSING, OrderState.EXCEPTION,
                                  OrderState.CANCELLED}),
    OrderState.DISPENSING: frozenset({OrderState.FILLED, OrderState.EXCEPTION,
                                      OrderState.QUEUED}),
    OrderState.EXCEPTION: frozenset({OrderState.QUEUED, OrderState.CANCELLED,
                                     OrderState.FILLED}),
    OrderState.FILLED: frozenset({OrderState.LABELED, OrderState.CANCELLED}),
    OrderState.LABELED: frozenset({OrderState.VERIFIED, OrderState.QUEUED,
                                   OrderState.CANCELLED}),
    OrderState.VERIFIED: frozenset({OrderState.RELEASED, OrderState.CANCELLED}),
    OrderState.RELEASED: frozenset(),
    OrderState.REJECTED: frozenset(),
    OrderState.CANCELLED: frozenset(),
}
"""Every state an order may move to from each state (who may move it: ``workflow.py``)."""

SUPERVISOR_MOVES: frozenset[tuple[OrderState | None, OrderState]] = frozenset({
    (OrderState.RECEIVED, OrderState.QUEUED),
    (OrderState.RECEIVED, OrderState.REJECTED),
    (OrderState.QUEUED, OrderState.EXCEPTION),
})
"""The moves the supervisor makes by itself, outside a fill: an order taken or refused, and
one no robot can fill. Every other move is a fill's (the robot's evidence) or a person's."""


class TransitionError(ValueError):
    """An order asked to move where its state does not allow."""


def check_transition(current: OrderState, target: OrderState) -> None:
    """Raise TransitionError unless ``current`` may move to ``target``."""
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing (final)"
        raise TransitionError(f"an order in {current} cannot move to {target}; "
                              f"allowed: {allowed}")


@dataclass(frozen=True, slots=True)
class Patient:
    """Who the prescription is for. Never logged, never published."""

    id: str
    name: str
    birth_date: date
    address: str | None = None
    """Where a mail order goes."""


@dataclass(frozen=True, slots=True)
class Prescriber:
    """Who wrote the prescription."""

    name: str
    npi: str
    dea: str | None = None
    """Needed for a scheduled drug."""


class Priority(StrEnum):
    """How soon the patient needs it."""

    ROUTINE = "routine"
    URGENT = "urgent"
    STAT = "stat"


class Fulfilment(StrEnum):
    """How the vial reaches the patient."""

    PICKUP = "pickup"
    SHIP = "ship"


@dataclass(frozen=True, slots=True)
class Order:
    """A prescription to fill: which drug, how many, for whom, and what its label says."""

    rx_number: str
    patient: Patient
    ndc: str
    quantity: int
    easy_open: bool = False
    """The patient asked for easy-open caps (otherwise child-resistant)."""
    sig: str = ""
    """The directions, as the label prints them first."""
    prescriber: Prescriber | None = None
    refills: int = 0
    days_supply: int | None = None
    priority: Priority = Priority.ROUTINE
    fulfilment: Fulfilment = Fulfilment.PICKUP
    written: date | None = None
    """The date the prescriber wrote it."""
    fill_number: int = 0
    """0 for the prescription's original fill, n for its n-th refill."""


def fill_problems(order: Order, formulary: Formulary) -> list[tuple[str, str]]:
    """Why no robot can fill ``order``: (field, what is wrong); empty when one can."""
    problems = []
    if order.ndc not in formulary:
        problems.append(("ndc", f"NDC {order.ndc} is not in the formulary"))
    if not 1 <= order.quantity <= MAX_QUANTITY:
        problems.append(("quantity",
                         f"quantity {order.quantity} is not between 1 and {MAX_QUANTITY}"))
    return problems


def order_problems(order: Order, formulary: Formulary) -> list[str]:
    """Why ``order`` cannot be filled as written; empty when it can."""
    return [message for _, message in fill_problems(order, formulary)]


class FillOutcome(StrEnum):
    """How one attempt to fill an order on a robot ended."""

    FILLED = "filled"
    WEIGHT_OFF = "weight_off"
    COUNT_BY_HAND = "count_by_hand"
    JAM = "jam"
    RAN_EMPTY = "ran_empty"
    ABORTED = "aborted"
    NO_VIAL = "no_vial"
    DOOR_OPENED = "door_opened"
    CAP_FAULT = "cap_fault"
    SCALE_FAULT = "scale_fault"
    SAFE = "safe"
    """The robot stopped for safety (heartbeat lost, emergency stop): never a complete vial."""
    REFUSED = "refused"
    """The robot refused the job (door open, not calibrated...)."""

