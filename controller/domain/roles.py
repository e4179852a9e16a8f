"""Who may do what: the one table of duties and the roles that may do each.

Pure. Every door (the API, the CLI, the console, the store where each change is recorded)
checks a person against this table through :func:`require`; the prescription's own steps
(``workflow.Action``) are duties of the same names.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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


class WorkflowError(ValueError):
    """A step the order's state, the person's roles or the separation of duties forbids."""


class RoleError(WorkflowError):
    """The person does not hold a role the step needs."""


class Duty(StrEnum):
    """Something a person does; each is in :data:`ROLES_FOR`."""

    # The prescription's steps after its fill (workflow.Action, by the same values).
    LABEL = "label"
    WITNESS = "witness"
    VERIFY = "verify"
    REJECT = "reject"
    RELEASE = "release"
    HAND_COUNT = "hand_count"
    RETRY = "retry"
    CANCEL = "cancel"
    CANCEL_FILLED = "cancel an order whose vial is filled, labelled or verified"
    # The pharmacy's work around them.
    SUBMIT_ORDER = "submit orders"
    PRINT_LABEL = "print a vial's label"
    SEE_EVIDENCE = "see the verification station's evidence"
    SIGN_ON_DUTY = "sign on duty"
    TAKE_OUTPUT = "take a robot's output"
    CLEAR_ROBOT = "clear a robot"
    # Stock, vials, alarms, robots and people.
    RESTOCK = "restock a bin"
    CORRECT_STOCK = "correct a bin's count"
    UNLOAD_BIN = "unload a bin"
    LOAD_BIN = "load a bin with a drug"
    DISPOSE_VIAL = "record what became of a set-aside vial"
    ANSWER_ALARM = "acknowledge or shelve an alarm"
    SERVICE_ROBOT = "take a robot out of or back into service"
    CALIBRATE = "calibrate a robot's scale or channels"
    REGISTERS = "read or write a robot's registers"
    TRACE = "watch a robot's wire"
    MANAGE_USERS = "manage users"


_PHARMACIST = frozenset({Role.PHARMACIST})
_HANDS = frozenset({Role.TECHNICIAN, Role.PHARMACIST})
_AT_THE_ROBOT = frozenset({Role.TECHNICIAN, Role.MAINTENANCE})
ROLES_FOR: dict[Duty, frozenset[Role]] = {
    Duty.LABEL: frozenset({Role.TECHNICIAN}),
    Duty.WITNESS: _PHARMACIST,
    Duty.VERIFY: _PHARMACIST,
    Duty.REJECT: _PHARMACIST,
    Duty.RELEASE: _PHARMACIST,
    Duty.HAND_COUNT: _HANDS,
    Duty.RETRY: _HANDS,
    Duty.CANCEL: _HANDS,
    Duty.CANCEL_FILLED: _PHARMACIST,  # a filled vial leaves only through a pharmacist
    Duty.SUBMIT_ORDER: _HANDS,
    Duty.PRINT_LABEL: _HANDS,
    Duty.SEE_EVIDENCE: _PHARMACIST,
    Duty.SIGN_ON_DUTY: _PHARMACIST,
    Duty.TAKE_OUTPUT: _AT_THE_ROBOT,
    Duty.CLEAR_ROBOT: _AT_THE_ROBOT,
    Duty.RESTOCK: _HANDS,
    Duty.CORRECT_STOCK: _HANDS,
    Duty.UNLOAD_BIN: _HANDS,
    Duty.LOAD_BIN: _PHARMACIST,  # which drug a bin holds: a pharmacist's call
    Duty.DISPOSE_VIAL: _HANDS,
    Duty.ANSWER_ALARM: frozenset({Role.TECHNICIAN, Role.PHARMACIST, Role.MAINTENANCE}),
    Duty.SERVICE_ROBOT: _AT_THE_ROBOT,
    Duty.CALIBRATE: frozenset({Role.MAINTENANCE}),
    Duty.REGISTERS: frozenset({Role.MAINTENANCE}),
    Duty.TRACE: frozenset({Role.MAINTENANCE}),
    Duty.MANAGE_USERS: frozenset({Role.ADMIN}),
}
"""The roles that may do each duty (any one of them suffices)."""

RESERVED_NAMES = frozenset({"supervisor", "system", "demo", "admin", "root"})
"""Names the records use for the software itself, or that mean no one: never a user's."""


def require(person: Person, duty: Duty) -> None:
    """RoleError unless ``person`` holds a role ``duty`` needs, naming both."""
    needed = ROLES_FOR[duty]
    if not needed & person.roles:
        raise RoleError(f"{person.name} may not {duty}: it needs the "
                        f"{' or '.join(sorted(needed))} role ({person.name} holds "
                        f"{', '.join(sorted(person.roles)) or 'none'})")


def may(person: Person, duty: Duty) -> bool:
    """Whether ``person`` holds a role ``duty`` needs (screens offer only what one may do;
    :func:`require` still decides)."""
    return bool(ROLES_FOR[duty] & person.roles)
