"""Who may move a filled order on, and when: labels, verification, release (DESIGN.md).

Pure. Order states and which may follow which are in ``orders.py``; this
module adds the people: each step is a duty of ``roles.py``'s table, and only a pharmacist moves a
filled vial on (verify, reject, release, cancel), never one who filled,
counted or labelled that vial. A schedule II drug is counted by two different
people: its second count is witnessed, before release, by a pharmacist who
neither handled nor verified the vial. The facts come from the store's own
records of the vial (a ``Dossier``), never from a caller.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from controller.domain.orders import OrderState, TransitionError, check_transition
from controller.domain.roles import Duty, Person, WorkflowError, require


class Action(StrEnum):
    """What a person does to an order after its fill."""

    LABEL = "label"
    """Scan the printed label's barcode at the filled vial: FILLED → LABELED."""
    WITNESS = "witness"
    """Witness the second count of a schedule II drug (the state does not change)."""
    VERIFY = "verify"
    """Check the vial and its evidence, approve: LABELED → VERIFIED."""
    REJECT = "reject"
    """Refuse the vial, with a reason: LABELED → QUEUED (fill again) or CANCELLED."""
    RELEASE = "release"
    """To the pickup bin or to shipping: VERIFIED → RELEASED."""
    HAND_COUNT = "hand_count"
    """Count an order in EXCEPTION by hand, its weight agreeing: EXCEPTION → FILLED."""
    RETRY = "retry"
    """Send an order in EXCEPTION to a robot again: EXCEPTION → QUEUED."""
    CANCEL = "cancel"
    """Give an order up, with a reason: → CANCELLED. Once it has a filled vial, only a
    pharmacist may, saying what became of the vial's tablets."""


VIAL_STATES = frozenset({OrderState.FILLED, OrderState.LABELED, OrderState.VERIFIED})
"""States in which an order has a filled vial waiting to go on."""
DISPOSITIONS = ("returned", "wasted")
"""What became of a vial's tablets that no patient gets: back to their bin, or destroyed."""
UNRECORDED_SCHEDULE = "?"
"""The schedule of an order taken before schedules were recorded at intake."""


def needs_witness(schedule: str | None) -> bool:
    """A schedule II drug's count is witnessed before release (and so is one whose schedule
    was not recorded: the safe reading)."""
    return schedule in ("II", UNRECORDED_SCHEDULE)


class NotTheVial(WorkflowError):
    """A label scanned for a vial that is no longer its order's (rejected, set aside,
    superseded, cancelled): says why."""


@dataclass(frozen=True, slots=True)
class Step:
    """One person's action on one order."""

    action: Action
    person: Person
    reason: str | None = None
    """Why (a rejection needs one)."""
    requeue: bool = True
    """For a rejection: fill it again (QUEUED), or give it up (CANCELLED)."""
    tablets: str | None = None
    """For a rejection, or a cancellation with a filled vial: what became of its tablets
    (``returned`` to their bin, or ``wasted``)."""


@dataclass(frozen=True, slots=True)
class Dossier:
    """What the workflow knows of one order and its vial: the store's own records of them,
    field for field (``store/verification.dossier`` builds it from those records)."""

    state: OrderState
    schedule: str | None
    """The drug's DEA schedule (II … V) as recorded at intake, or None."""
    counted_by: str | None = None
    """Who counted this vial by hand (None: a robot counted it)."""
    labelled_by: str | None = None
    """Who scanned its label onto it."""
    verified_by: str | None = None
    witnessed_by: str | None = None

    @property
    def handled_by(self) -> frozenset[str]:
        """Who counted or labelled this vial: none of them moves it on. The one place this
        is worked out."""
        return frozenset(who for who in (self.counted_by, self.labelled_by) if who)


_MOVES_A_VIAL_ON = frozenset({Action.VERIFY, Action.REJECT, Action.RELEASE})


def advance(dossier: Dossier, step: Step) -> Dossier:
    """The order after ``step``, or WorkflowError saying why it may not happen."""
    person, action = step.person, step.action
    require(person, Duty(action.value))
    if action is Action.WITNESS:
        return _witness(dossier, person)
    with_vial = action is Action.CANCEL and dossier.state in VIAL_STATES
    if with_vial:
        # A filled vial leaves the workflow only through a pharmacist, as a rejection does.
        require(person, Duty.CANCEL_FILLED)
    if (action in _MOVES_A_VIAL_ON or with_vial) and person.name in dossier.handled_by:
        raise WorkflowError(f"{person.name} filled, counted or labelled this vial and may not "
                            f"{action} it: another pharmacist must")
    if action is Action.VERIFY and person.name == dossier.witnessed_by:
        raise WorkflowError(f"{person.name} witnessed this vial's count and may not verify it:"
                            f" two different people count a schedule II vial")
    if action in (Action.REJECT, Action.CANCEL) and not (step.reason or "").strip():
        raise WorkflowError(f"to {action} needs a reason")
    if (action is Action.REJECT or with_vial) and step.tablets not in DISPOSITIONS:
        raise WorkflowError(f"say what became of the vial's tablets: "
                            f"{' or '.join(DISPOSITIONS)} (got {step.tablets!r})")
    if (action is Action.RELEASE and needs_witness(dossier.schedule)
            and dossier.witnessed_by is None):
        raise WorkflowError("a schedule II drug needs its second count witnessed by a "
                            "pharmacist before release")
    target = {
        Action.LABEL: OrderState.LABELED,
        Action.VERIFY: OrderState.VERIFIED,
        Action.REJECT: OrderState.QUEUED if step.requeue else OrderState.CANCELLED,
        Action.RELEASE: OrderState.RELEASED,
        Action.HAND_COUNT: OrderState.FILLED,
        Action.RETRY: OrderState.QUEUED,
        Action.CANCEL: OrderState.CANCELLED,
    }[action]
    if action in (Action.HAND_COUNT, Action.RETRY) and dossier.state is not OrderState.EXCEPTION:
        raise WorkflowError(f"cannot {action}: only an order in exception is counted by hand "
                            f"or retried by a person; the order is {dossier.state}")
    try:
        check_transition(dossier.state, target)
    except TransitionError as exc:
        raise WorkflowError(f"cannot {action}: {exc}") from None
    if action is Action.LABEL:
        return replace(dossier, state=target, labelled_by=person.name)
    if action is Action.HAND_COUNT:
        return replace(dossier, state=target, counted_by=person.name)
    if action is Action.VERIFY:
        return replace(dossier, state=target, verified_by=person.name)
    if action is Action.REJECT:
        # Filled again from scratch: a new vial, new hands, a new count to witness.
        return Dossier(target, dossier.schedule)
    return replace(dossier, state=target)


def filled(dossier: Dossier, by: Person | None = None) -> Dossier:
    """The order's vial was filled: by a robot (``by`` None), or by a person's hands."""
    try:
        check_transition(dossier.state, OrderState.FILLED)
    except TransitionError as exc:
        raise WorkflowError(str(exc)) from None
    return replace(dossier, state=OrderState.FILLED,
                   counted_by=by.name if by is not None else dossier.counted_by)


def _witness(dossier: Dossier, person: Person) -> Dossier:
    if not needs_witness(dossier.schedule):
        raise WorkflowError("only a schedule II drug's count is witnessed")
    if dossier.state not in (OrderState.LABELED, OrderState.VERIFIED):
        # After the label: then everyone who handled the vial is known, and none of them
        # may be the witness.
        raise WorkflowError(f"the count is witnessed on the labelled vial; the order is "
                            f"{dossier.state}")
    if person.name in dossier.handled_by:
        raise WorkflowError(f"{person.name} filled, counted or labelled this vial and may not "
                            f"witness its count")
    if person.name == dossier.verified_by:
        raise WorkflowError(f"{person.name} verified this vial and may not witness its count: "
                            f"two different people count a schedule II vial")
    if dossier.witnessed_by is not None:
        raise WorkflowError(f"this vial's count was witnessed already, by "
                            f"{dossier.witnessed_by}")
    return replace(dossier, witnessed_by=person.name)
