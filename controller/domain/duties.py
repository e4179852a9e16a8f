"""Who may change what outside a prescription's workflow: stock, set-aside vials, alarms,
robots, people. Pure: one table of duties and the roles that may do each, read by the store
and the alarm desk where each change is recorded (``workflow.py`` holds the prescription's
own steps)."""

from __future__ import annotations

from enum import StrEnum

from controller.domain.workflow import Person, Role, RoleError


class Duty(StrEnum):
    """A kind of change a person makes."""

    RESTOCK = "restock a bin"
    CORRECT_STOCK = "correct a bin's count"
    UNLOAD_BIN = "unload a bin"
    LOAD_BIN = "load a bin with a drug"
    DISPOSE_VIAL = "record what became of a set-aside vial"
    ANSWER_ALARM = "acknowledge or shelve an alarm"
    SERVICE_ROBOT = "take a robot out of or back into service"
    MANAGE_USERS = "manage users"


_HANDS = frozenset({Role.TECHNICIAN, Role.PHARMACIST})
ROLES_FOR: dict[Duty, frozenset[Role]] = {
    Duty.RESTOCK: _HANDS,
    Duty.CORRECT_STOCK: _HANDS,
    Duty.UNLOAD_BIN: _HANDS,
    Duty.LOAD_BIN: frozenset({Role.PHARMACIST}),  # which drug a bin holds: a pharmacist's call
    Duty.DISPOSE_VIAL: _HANDS,
    Duty.ANSWER_ALARM: frozenset({Role.TECHNICIAN, Role.PHARMACIST, Role.MAINTENANCE}),
    Duty.SERVICE_ROBOT: frozenset({Role.TECHNICIAN, Role.MAINTENANCE}),
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
