"""What people do to alarms after ISA-18.2 (acknowledge, shelve with a reason and an end,
take a robot out of service and back) and how a flood is told and annunciated. Pure, like
``alarms.py``, whose types these functions move.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from controller.domain.alarms import (
    Alarm,
    AlarmChange,
    AlarmError,
    AlarmState,
    AlarmType,
    Priority,
    ended,
    iso,
)


def acknowledge(alarm: Alarm, who: str, now: datetime) -> AlarmChange:
    """A person saw the alarm and takes charge of it."""
    _require_person(who)
    if alarm.state is AlarmState.UNACK_ACTIVE:
        after = replace(alarm, state=AlarmState.ACK_ACTIVE, acked_by=who, acked_at=now,
                        updated_at=now, seq=alarm.seq + 1)
    elif alarm.state is AlarmState.UNACK_RTN:
        after = ended(replace(alarm, acked_by=who, acked_at=now), now)
    elif alarm.state is AlarmState.ACK_ACTIVE:
        raise AlarmError(f"alarm {alarm.id} was already acknowledged by {alarm.acked_by}")
    else:
        raise AlarmError(f"alarm {alarm.id} is {alarm.state}; only an unacknowledged alarm "
                         f"(unack_active or unack_rtn) can be acknowledged")
    return AlarmChange(alarm, after, who, "acknowledged")


MAX_SHELF = timedelta(hours=24)


def shelve(alarm: Alarm, who: str, reason: str, until: datetime, now: datetime) -> AlarmChange:
    """Silence an alarm until ``until`` (at most a day), with a reason; it returns by itself."""
    _require_person(who)
    if not reason.strip():
        raise AlarmError("shelving needs a reason; say why the alarm may be silenced")
    if until <= now:
        raise AlarmError(f"shelve until {iso(until)}: that is not in the future")
    if until - now > MAX_SHELF:
        raise AlarmError(f"shelve until {iso(until)}: at most {MAX_SHELF} from now")
    if alarm.state not in (AlarmState.UNACK_ACTIVE, AlarmState.ACK_ACTIVE,
                           AlarmState.UNACK_RTN):
        raise AlarmError(f"alarm {alarm.id} is {alarm.state}; only a standing alarm can be "
                         f"shelved")
    after = replace(alarm, state=AlarmState.SHELVED, shelved_by=who, shelved_reason=reason,
                    shelved_until=until, updated_at=now, seq=alarm.seq + 1)
    return AlarmChange(alarm, after, who, f"shelved until {iso(until)}: {reason}")


def unshelve(alarm: Alarm, who: str, now: datetime, reason: str) -> AlarmChange:
    """The shelf ends (by a person, or its time ran out): a condition that holds alarms anew."""
    if alarm.state is not AlarmState.SHELVED:
        raise AlarmError(f"alarm {alarm.id} is {alarm.state}, not shelved")
    return AlarmChange(alarm, _returned(alarm, now), who, reason)


def expire_shelves(alarms: Iterable[Alarm], now: datetime) -> list[AlarmChange]:
    """Every shelf whose time has run out, ended."""
    return [unshelve(alarm, "supervisor", now, "shelf expired") for alarm in alarms
            if alarm.state is AlarmState.SHELVED and alarm.shelved_until is not None
            and alarm.shelved_until <= now]


def remove_from_service(alarms: Iterable[Alarm], robot: str, who: str,
                        now: datetime) -> list[AlarmChange]:
    """A robot goes down for maintenance: its standing alarms go out of service."""
    _require_person(who)
    return [AlarmChange(alarm, replace(alarm, state=AlarmState.OUT_OF_SERVICE, updated_at=now,
                                       seq=alarm.seq + 1), who, "robot out of service")
            for alarm in alarms if alarm.robot == robot
            and alarm.state not in (AlarmState.NORMAL, AlarmState.OUT_OF_SERVICE)]


def return_to_service(alarms: Iterable[Alarm], robot: str, who: str,
                      now: datetime) -> list[AlarmChange]:
    """A robot is back: its alarms whose conditions hold alarm anew; the rest are over."""
    _require_person(who)
    return [AlarmChange(alarm, _returned(alarm, now), who, "robot back in service")
            for alarm in alarms
            if alarm.robot == robot and alarm.state is AlarmState.OUT_OF_SERVICE]


def _returned(alarm: Alarm, now: datetime) -> Alarm:
    cleared = replace(alarm, shelved_by=None, shelved_reason=None, shelved_until=None,
                      acked_by=None, acked_at=None)
    if alarm.active:
        return replace(cleared, state=AlarmState.UNACK_ACTIVE, updated_at=now,
                       seq=alarm.seq + 1)
    return ended(cleared, now)


def _require_person(who: str) -> None:
    if not who.strip():
        raise AlarmError("say who: a person's name is recorded with every alarm action")


# -- floods -------------------------------------------------------------------------------

FLOOD_WINDOW = timedelta(minutes=10)
FLOOD_BEGINS_ABOVE = 10
FLOOD_ENDS_BELOW = 5


def flooding(raised_in_window: int, was_flooding: bool) -> bool:
    """ISA-18.2's flood: more than 10 new alarms in 10 minutes; over when fewer than 5."""
    if was_flooding:
        return raised_in_window >= FLOOD_ENDS_BELOW
    return raised_in_window > FLOOD_BEGINS_ABOVE


def is_raise(change: AlarmChange) -> bool:
    """The change announced a new alarm (counted toward a flood)."""
    before = change.before
    fresh = before is None or before.state in (AlarmState.NORMAL, AlarmState.UNACK_RTN)
    return fresh and change.after.state is AlarmState.UNACK_ACTIVE


@dataclass(frozen=True, slots=True)
class Annunciation:
    """What a technician's list shows: each alarm to show, and the rest counted by type."""

    shown: tuple[Alarm, ...]
    summarised: tuple[tuple[AlarmType, Priority, int], ...]


def annunciate(alarms: Iterable[Alarm], *, flood: bool) -> Annunciation:
    """Standing alarms, most urgent first. In a flood, high and critical alarms are each
    shown; low and medium ones are counted by type, so the urgent ones are never buried."""
    standing = sorted((a for a in alarms if a.state is not AlarmState.NORMAL),
                      key=lambda a: (-a.priority.rank, a.raised_at or a.updated_at, a.id))
    if not flood:
        return Annunciation(tuple(standing), ())
    shown = tuple(a for a in standing if a.priority.rank >= Priority.HIGH.rank)
    counts: dict[tuple[AlarmType, Priority], int] = {}
    for alarm in standing:
        if alarm.priority.rank < Priority.HIGH.rank:
            counts[(alarm.type, alarm.priority)] = counts.get((alarm.type, alarm.priority), 0) + 1
    return Annunciation(shown, tuple((t, p, n) for (t, p), n in counts.items()))
