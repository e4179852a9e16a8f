"""Alarms after ISA-18.2: what each one means, and how it moves between states.

Pure: the caller hands in the alarms as they stand and the conditions as they
are now; these functions say what changes. The store writes the changes and
the messages they cause in one transaction.

An alarm exists only where a person must respond, so every type says its
cause, what happens if nobody acts, and what to do. Its id is stable for its
condition (``bin-low-vf1-12``), so a retained MQTT message always holds the
condition's present state.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any


class AlarmType(StrEnum):
    """Alarm types, as the MQTT ICD names them."""

    BIN_LOW = "bin_low"
    BIN_EMPTY = "bin_empty"
    BIN_EXPIRING = "bin_expiring"
    BIN_EXPIRED = "bin_expired"
    ROBOT_FAULT = "robot_fault"
    ROBOT_OFFLINE = "robot_offline"
    VIAL_HOPPER_LOW = "vial_hopper_low"
    OUTPUT_WAITING = "output_waiting"


BIN_TYPES = frozenset({AlarmType.BIN_LOW, AlarmType.BIN_EMPTY, AlarmType.BIN_EXPIRING,
                       AlarmType.BIN_EXPIRED})
ROBOT_TYPES = frozenset(AlarmType) - BIN_TYPES


class Priority(StrEnum):
    """How soon a person must respond."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for low … 3 for critical."""
        return list(Priority).index(self)


class AlarmState(StrEnum):
    """Where an alarm stands (ISA-18.2)."""

    NORMAL = "normal"
    """Over: no retained message."""
    UNACK_ACTIVE = "unack_active"
    ACK_ACTIVE = "ack_active"
    UNACK_RTN = "unack_rtn"
    """The condition cleared before anyone acknowledged it."""
    SHELVED = "shelved"
    OUT_OF_SERVICE = "out_of_service"


class AlarmError(ValueError):
    """A person asked an alarm to do what its state does not allow; says what it allows."""


@dataclass(frozen=True, slots=True)
class AlarmKind:
    """What one type of alarm means. Texts are formatted with the condition's facts."""

    priority: Priority
    message: str
    consequence: str
    response: str
    cleared: str
    """The message once the condition no longer holds (unack_rtn, or shelved and over)."""
    on_delay: timedelta = timedelta(0)
    """The condition must hold this long before the alarm is raised (a link's blink is not
    an alarm)."""


CATALOGUE: dict[AlarmType, AlarmKind] = {
    AlarmType.BIN_LOW: AlarmKind(
        Priority.MEDIUM,
        "{Place} ({drug}) has {on_hand} tablets left, at or below par {par}: restock",
        "Orders for this drug go to another robot or wait once the {unit} is empty",
        "Restock {place} with NDC {ndc} and scan the bottle",
        "{Place} ({drug}) is back above par {par}, {on_hand} tablets: acknowledge"),
    AlarmType.BIN_EMPTY: AlarmKind(
        Priority.HIGH,
        "{Place} ({drug}) is empty",
        "No order for this drug can be filled on {robot}; they go elsewhere or wait",
        "Restock {place} with NDC {ndc} and scan the bottle",
        "{Place} ({drug}) holds {on_hand} tablets again: acknowledge"),
    AlarmType.BIN_EXPIRING: AlarmKind(
        Priority.LOW,
        "{Place} ({drug}) holds lot {lot}, which expires on {expiry}",
        "Once it expires the {unit} stops dispensing and its tablets must be wasted",
        "Let it run down, or unload lot {lot} of {place} and restock with a later lot",
        "{Place} ({drug}) holds no lot near its expiry now: acknowledge"),
    AlarmType.BIN_EXPIRED: AlarmKind(
        Priority.CRITICAL,
        "{Place} ({drug}) holds lot {lot}, which expired on {expiry}",
        "The {unit} is kept from dispensing; expired tablets must not reach a patient",
        "Unload {place}, waste lot {lot} and record it, then restock with an in-date lot",
        "{Place} ({drug}) holds no expired lot now: acknowledge"),
    AlarmType.ROBOT_FAULT: AlarmKind(
        Priority.HIGH,
        "{robot} stopped: {detail}",
        "{robot} takes no orders; its queue goes to other robots or waits",
        "Go to {robot}, fix what stopped it (jam, door, vial, cap), then clear it",
        "{robot} was cleared and takes work again: acknowledge"),
    AlarmType.ROBOT_OFFLINE: AlarmKind(
        Priority.HIGH,
        "{robot} does not answer: {detail}",
        "{robot} takes no orders; a fill in progress is reconciled when it answers again",
        "Check {robot}'s power and cable (or network); the supervisor reconnects by itself",
        "{robot} answers again: acknowledge",
        on_delay=timedelta(seconds=5)),
    AlarmType.VIAL_HOPPER_LOW: AlarmKind(
        Priority.MEDIUM,
        "{robot}'s vial hoppers run low ({detail})",
        "Once a hopper is empty, orders needing that vial size stop on {robot}",
        "Refill {robot}'s vial hoppers",
        "{robot}'s vial hoppers were refilled: acknowledge"),
    AlarmType.OUTPUT_WAITING: AlarmKind(
        Priority.MEDIUM,
        "{robot}'s output has held {detail}, waiting for a person",
        "{robot} takes no new job until its output is taken; its queue waits",
        "Take the vial or tablets from {robot}'s output and scan its label (or record it "
        "taken)",
        "{robot}'s output was taken: acknowledge"),
}


@dataclass(frozen=True, slots=True)
class Condition:
    """A condition that holds now and calls for an alarm."""

    type: AlarmType
    robot: str
    bin: int | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)
    """ndc, drug, on_hand, par, lot, expiry (bins); detail (robots). Never patient data."""
    since: datetime | None = None
    """When it began, where an on-delay applies."""

    @property
    def id(self) -> str:
        """The alarm's stable id."""
        return alarm_id(self.type, self.robot, self.bin)


def alarm_id(kind: AlarmType, robot: str, bin_number: int | None = None) -> str:
    """``bin-low-vf1-12``; ``robot-offline-tc1``."""
    base = f"{kind.value.replace('_', '-')}-{robot}"
    return base if bin_number is None else f"{base}-{bin_number}"


@dataclass(frozen=True, slots=True)
class Alarm:
    """An alarm as it stands."""

    id: str
    type: AlarmType
    priority: Priority
    state: AlarmState
    active: bool
    """Whether its condition holds (it may be acknowledged, shelved or out of service)."""
    robot: str
    bin: int | None
    facts: Mapping[str, Any]
    raised_at: datetime | None
    updated_at: datetime
    acked_by: str | None = None
    acked_at: datetime | None = None
    shelved_by: str | None = None
    shelved_reason: str | None = None
    shelved_until: datetime | None = None
    seq: int = 0

    def text(self, which: str) -> str:
        """The catalogue's ``message`` (``cleared`` once the condition is gone),
        ``consequence`` or ``response``, filled in."""
        if which == "message" and not self.active:
            which = "cleared"
        template: str = getattr(CATALOGUE[self.type], which)
        unit = "cell" if self.facts.get("unit") == "cell" else "channel"
        place = f"{unit} {self.bin} of {self.robot}"
        values = {"robot": self.robot, "bin": self.bin, "place": place,
                  "Place": place.capitalize(), "unit": unit,
                  "drug": "", "ndc": "", "on_hand": "", "par": "", "lot": "", "expiry": "",
                  "detail": "", **self.facts}
        return template.format(**values)

    def payload(self) -> dict[str, Any]:
        """The alarm as the MQTT ICD writes it."""
        return {
            "id": self.id, "type": self.type.value, "priority": self.priority.value,
            "state": self.state.value, "robot": self.robot, "bin": self.bin,
            "ndc": self.facts.get("ndc"), "drug": self.facts.get("drug"),
            "on_hand": self.facts.get("on_hand"), "par": self.facts.get("par"),
            "message": self.text("message"), "consequence": self.text("consequence"),
            "response": self.text("response"),
            "raised_at": iso(self.raised_at), "updated_at": iso(self.updated_at),
            "acked_by": self.acked_by, "acked_at": iso(self.acked_at),
            "shelved_by": self.shelved_by, "shelved_reason": self.shelved_reason,
            "shelved_until": iso(self.shelved_until),
            "seq": self.seq,
        }


@dataclass(frozen=True, slots=True)
class AlarmChange:
    """One alarm moved (or its facts changed): to be recorded and published."""

    before: Alarm | None
    after: Alarm
    who: str
    reason: str | None = None

    @property
    def ended(self) -> bool:
        """The alarm is over: its retained message is removed."""
        return self.after.state is AlarmState.NORMAL


def iso(moment: datetime | None) -> str | None:
    """``2026-11-21T14:03:07.120Z``, as the ICD writes times."""
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# -- conditions ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When bins alarm (configuration ``[alarms]`` and ``[stock]``)."""

    expiring_days: int = 30
    low_deadband_pct: float = 10.0
    """A bin_low clears only above par plus this share of par (at least 1 tablet), so a
    count hovering at par does not chatter."""


def low_clears_above(par: int, thresholds: Thresholds) -> int:
    """The count a bin must exceed for its bin_low to clear."""
    return par + max(1, math.ceil(par * thresholds.low_deadband_pct / 100))


@dataclass(frozen=True, slots=True)
class BinFacts:
    """What the alarms need to know of a bin."""

    robot: str
    bin: int
    unit: str
    """``channel`` (a tablet counter's) or ``cell`` (a vial filler's)."""
    ndc: str
    drug: str
    on_hand: int
    par: int
    lot: str
    """The lot that expires first among those in the bin."""
    expiry: date


def bin_facts(b: BinFacts) -> dict[str, Any]:
    """A bin's facts as its alarms carry them."""
    return {"unit": b.unit, "ndc": b.ndc, "drug": b.drug, "on_hand": b.on_hand,
            "par": b.par, "lot": b.lot, "expiry": f"{b.expiry:%Y-%m-%d}"}


def latest_bin_facts(bins: Iterable[BinFacts]) -> dict[str, dict[str, Any]]:
    """Every bin alarm's id, with its bin's facts now."""
    return {alarm_id(kind, b.robot, b.bin): bin_facts(b) for b in bins for kind in BIN_TYPES}


def bin_conditions(bins: Iterable[BinFacts], alarms: Mapping[str, Alarm], *, today: date,
                   thresholds: Thresholds) -> list[Condition]:
    """The bin conditions that hold: low (with its deadband), empty, expiring, expired."""
    found: list[Condition] = []
    for b in bins:
        facts = bin_facts(b)
        low = alarms.get(alarm_id(AlarmType.BIN_LOW, b.robot, b.bin))
        standing = low is not None and low.active
        if b.on_hand <= b.par or (standing and b.on_hand <= low_clears_above(b.par, thresholds)):
            found.append(Condition(AlarmType.BIN_LOW, b.robot, b.bin, facts))
        if b.on_hand <= 0:
            found.append(Condition(AlarmType.BIN_EMPTY, b.robot, b.bin, facts))
            continue  # an empty bin's lot is gone: nothing left to expire
        if b.expiry < today:
            found.append(Condition(AlarmType.BIN_EXPIRED, b.robot, b.bin, facts))
        elif b.expiry <= today + timedelta(days=thresholds.expiring_days):
            found.append(Condition(AlarmType.BIN_EXPIRING, b.robot, b.bin, facts))
    return found


# -- transitions --------------------------------------------------------------------------


def evaluate(alarms: Mapping[str, Alarm], conditions: Iterable[Condition], *,
             scope: frozenset[AlarmType], now: datetime,
             out_of_service: frozenset[str] = frozenset(), who: str = "supervisor",
             latest: Mapping[str, Mapping[str, Any]] | None = None) -> list[AlarmChange]:
    """What changes when ``conditions`` are all that hold now among alarms of ``scope``.

    ``latest`` gives, by alarm id, the facts as they are now for alarms whose condition
    cleared, so that a cleared alarm shows the count that cleared it.
    """
    changes: list[AlarmChange] = []
    holding: set[str] = set()
    for condition in conditions:
        kind = CATALOGUE[condition.type]
        if condition.since is not None and now - condition.since < kind.on_delay:
            if condition.id in alarms and alarms[condition.id].active:
                holding.add(condition.id)  # an alarm already raised stays while it holds
            continue
        holding.add(condition.id)
        before = alarms.get(condition.id)
        after = _raise(before, condition, kind, now, condition.robot in out_of_service)
        if after is not None:
            changes.append(AlarmChange(before, after, who))
    for alarm in alarms.values():
        if alarm.type in scope and alarm.id not in holding and alarm.active:
            cleared = _clear(alarm, now)
            if latest and alarm.id in latest:
                cleared = replace(cleared, facts=dict(latest[alarm.id]))
            changes.append(AlarmChange(alarm, cleared, who, "condition cleared"))
    return changes


def _raise(before: Alarm | None, condition: Condition, kind: AlarmKind, now: datetime,
           robot_down: bool) -> Alarm | None:
    facts = dict(condition.facts)
    if before is None or before.state is AlarmState.NORMAL:
        state = AlarmState.OUT_OF_SERVICE if robot_down else AlarmState.UNACK_ACTIVE
        return Alarm(id=condition.id, type=condition.type, priority=kind.priority, state=state,
                     active=True, robot=condition.robot, bin=condition.bin, facts=facts,
                     raised_at=now, updated_at=now,
                     seq=before.seq + 1 if before is not None else 1)
    if before.state is AlarmState.UNACK_RTN:
        return replace(before, state=AlarmState.UNACK_ACTIVE, active=True, facts=facts,
                       raised_at=now, updated_at=now, seq=before.seq + 1)
    if before.active and dict(before.facts) == facts:
        return None
    return replace(before, active=True, facts=facts, updated_at=now, seq=before.seq + 1)


def _clear(alarm: Alarm, now: datetime) -> Alarm:
    if alarm.state is AlarmState.UNACK_ACTIVE:
        return replace(alarm, state=AlarmState.UNACK_RTN, active=False, updated_at=now,
                       seq=alarm.seq + 1)
    if alarm.state is AlarmState.ACK_ACTIVE:
        return ended(alarm, now)
    # Shelved or out of service: it stays so; when it returns it is simply over.
    return replace(alarm, active=False, updated_at=now, seq=alarm.seq + 1)


def ended(alarm: Alarm, now: datetime) -> Alarm:
    return replace(alarm, state=AlarmState.NORMAL, active=False, updated_at=now,
                   acked_by=None, acked_at=None, shelved_by=None, shelved_reason=None,
                   shelved_until=None, seq=alarm.seq + 1)
