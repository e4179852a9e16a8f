"""Who may move a filled order on, and when: labels, verification, release (DESIGN.md).

Pure. Order states and which may follow which are in ``orders.py``; this
module adds the people: each step needs a role, and the pharmacist who
verifies is never one who filled, labelled or hand-counted that order. A
schedule II drug needs a second count, witnessed by a pharmacist, before
release.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from controller.domain.orders import OrderState, TransitionError, check_transition


class Role(StrEnum):
    """What a person may do."""

    TECHNICIAN = "technician"
    PHARMACIST = "pharmacist"
    MAINTENANCE = "maintenance"
    ADMIN = "admin"
    """Manages users; dispenses nothing."""


@dataclass(frozen=True, slots=True)
class Person:
    """Someone signed in, with the roles they hold."""

    name: str
    roles: frozenset[Role]


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
    """Give an order up, with a reason, before anything is in its vial: → CANCELLED."""


_DISPENSERS = frozenset({Role.TECHNICIAN, Role.PHARMACIST})
ROLE_OF: dict[Action, frozenset[Role]] = {
    Action.LABEL: frozenset({Role.TECHNICIAN}),
    Action.WITNESS: frozenset({Role.PHARMACIST}),
    Action.VERIFY: frozenset({Role.PHARMACIST}),
    Action.REJECT: frozenset({Role.PHARMACIST}),
    Action.RELEASE: frozenset({Role.PHARMACIST}),
    Action.HAND_COUNT: _DISPENSERS,
    Action.RETRY: _DISPENSERS,
    Action.CANCEL: _DISPENSERS,
}
"""The roles that may take each action (any one of them suffices)."""


class WorkflowError(ValueError):
    """A step the order's state, the person's roles or the separation of duties forbids."""


class RoleError(WorkflowError):
    """The person does not hold a role the step needs."""


@dataclass(frozen=True, slots=True)
class Step:
    """One person's action on one order."""

    action: Action
    person: Person
    reason: str | None = None
    """Why (a rejection needs one)."""
    requeue: bool = True
    """For a rejection: fill it again (QUEUED), or give it up (CANCELLED)."""


@dataclass(frozen=True, slots=True)
class Dossier:
    """What the workflow knows of one order since its last fill."""

    state: OrderState
    schedule: str | None
    """The drug's DEA schedule (II … V), or None."""
    handled_by: frozenset[str] = frozenset()
    """Who filled, hand-counted or labelled this vial: none of them may verify it."""
    verified_by: str | None = None
    witnessed_by: str | None = None


def advance(dossier: Dossier, step: Step) -> Dossier:
    """The order after ``step``, or WorkflowError saying why it may not happen."""
    person, action = step.person, step.action
    needed = ROLE_OF[action]
    if not needed & person.roles:
        raise RoleError(f"{person.name} may not {action}: it needs the "
                            f"{' or '.join(sorted(needed))} role ({person.name} holds "
                            f"{', '.join(sorted(person.roles)) or 'none'})")
    if action is Action.WITNESS:
        return _witness(dossier, person)
    if action is Action.VERIFY and person.name in dossier.handled_by:
        raise WorkflowError(f"{person.name} filled, counted or labelled this vial and may not "
                            f"verify it: another pharmacist must")
    if action in (Action.REJECT, Action.CANCEL) and not (step.reason or "").strip():
        raise WorkflowError(f"to {action} needs a reason")
    if action is Action.RELEASE and dossier.schedule == "II" and dossier.witnessed_by is None:
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
    if action in (Action.LABEL, Action.HAND_COUNT):
        return replace(dossier, state=target, handled_by=dossier.handled_by | {person.name})
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
    handled = dossier.handled_by | ({by.name} if by is not None else frozenset())
    return replace(dossier, state=OrderState.FILLED, handled_by=handled)


def _witness(dossier: Dossier, person: Person) -> Dossier:
    if dossier.schedule != "II":
        raise WorkflowError("only a schedule II drug's count is witnessed")
    if dossier.state not in (OrderState.LABELED, OrderState.VERIFIED):
        # After the label: then everyone who handled the vial is known, and none of them
        # may be the witness.
        raise WorkflowError(f"the count is witnessed on the labelled vial; the order is "
                            f"{dossier.state}")
    if person.name in dossier.handled_by:
        raise WorkflowError(f"{person.name} filled, counted or labelled this vial and may not "
                            f"witness its count")
    return replace(dossier, witnessed_by=person.name)
