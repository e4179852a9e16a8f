"""The alarm desk: conditions from the store and the robots, through the domain's rules, into
the store with their MQTT messages.

The supervisor checks bins and robots; the CLI acknowledges, shelves and
restocks from another process. Each change is one transaction that reads the
alarms as they stand, so the two never undo each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from controller.clock import Clock
from controller.config import Settings
from controller.domain import alarm_handling as handling
from controller.domain import alarms as rules
from controller.domain.alarms import (
    BIN_TYPES,
    ROBOT_TYPES,
    Alarm,
    AlarmChange,
    AlarmError,
    BinFacts,
    Condition,
    Thresholds,
)
from controller.domain.roles import Duty, Person, require
from controller.store import BinRecord, Store
from controller.store.alarm_records import Decide


@dataclass(frozen=True, slots=True)
class RobotCondition:
    """How a robot stands, as far as alarms care."""

    robot: str
    offline_since: datetime | None = None
    offline_reason: str | None = None
    stopped: str | None = None
    """Why it waits for a person, or None."""
    vials_left: Mapping[int, int] | None = None
    """A vial filler's hoppers (drams → vials), when known."""
    output_since: datetime | None = None
    """Since when a vial or tablets wait in its output for a person (None: empty)."""
    output: str | None = None
    """What waits there, in words without patient data (``fill F00000012``)."""
    known: bool = True
    """False until the supervisor has heard from the robot since it started: its alarms
    (offline aside) then stand as they were, never cleared on ignorance."""


class AlarmDesk:
    """Raises, clears, acknowledges and shelves alarms for one site."""

    def __init__(self, settings: Settings, store: Store, clock: Clock | None = None) -> None:
        self._settings = settings
        self._store = store
        self._clock = clock or Clock()
        config = settings.config
        self.thresholds = Thresholds(expiring_days=config.stock.expiring_days,
                                     low_deadband_pct=config.alarms.low_deadband_pct)
        self._units = {r.id: "cell" if r.kind == "vial-filler" else "channel"
                       for r in config.robots}

    async def check(self, robots: Iterable[RobotCondition]) -> list[AlarmChange]:
        """One pass over everything (bins, robots, shelves), in one transaction."""
        now = self._clock.now()
        return await self._store.alarms.change_alarms(_chain(
            self._bins_decide(now), self._robots_decide(now, robots),
            self._shelves_decide(now)))

    async def check_bins(self) -> list[AlarmChange]:
        """Raise and clear the bins' alarms as their counts and lots stand now."""
        return await self._store.alarms.change_alarms(self._bins_decide(self._clock.now()))

    async def check_robots(self, robots: Iterable[RobotCondition]) -> list[AlarmChange]:
        """Raise and clear the robots' alarms (fault, offline, vial hoppers)."""
        now = self._clock.now()
        return await self._store.alarms.change_alarms(self._robots_decide(now, robots))

    async def expire_shelves(self) -> list[AlarmChange]:
        """Shelves whose time ran out end; their alarms return."""
        return await self._store.alarms.change_alarms(self._shelves_decide(self._clock.now()))

    def _bins_decide(self, now: datetime) -> Decide:
        def decide(alarms: Mapping[str, Alarm], bins: list[BinRecord],
                   down: frozenset[str]) -> list[AlarmChange]:
            facts = [self.facts(b) for b in bins]
            conditions = rules.bin_conditions(facts, alarms, today=now.date(),
                                              thresholds=self.thresholds)
            return rules.evaluate(alarms, conditions, scope=BIN_TYPES, now=now,
                                  out_of_service=down, latest=rules.latest_bin_facts(facts))
        return decide

    def _robots_decide(self, now: datetime, robots: Iterable[RobotCondition]) -> Decide:
        robots = list(robots)
        unknown = {r.robot for r in robots if not r.known}
        conditions = [c for c in self._robot_conditions(robots, now)
                      if c.robot not in unknown or c.type is rules.AlarmType.ROBOT_OFFLINE]

        def decide(alarms: Mapping[str, Alarm], _bins: list[BinRecord],
                   down: frozenset[str]) -> list[AlarmChange]:
            # A restart is no all-clear: what the supervisor has not yet heard stands.
            judged = {k: a for k, a in alarms.items()
                      if a.robot not in unknown or a.type is rules.AlarmType.ROBOT_OFFLINE}
            return rules.evaluate(judged, conditions, scope=ROBOT_TYPES, now=now,
                                  out_of_service=down)
        return decide

    @staticmethod
    def _shelves_decide(now: datetime) -> Decide:
        return lambda alarms, _bins, _down: handling.expire_shelves(alarms.values(), now)

    async def republish(self) -> list[AlarmChange]:
        """Every standing alarm once more (seq + 1), for a broker that lost its retained ones."""
        def decide(alarms: Mapping[str, Alarm], _bins: list[BinRecord],
                   _down: frozenset[str]) -> list[AlarmChange]:
            return [AlarmChange(a, replace(a, seq=a.seq + 1), "supervisor", "republished")
                    for a in alarms.values() if a.state is not rules.AlarmState.NORMAL]
        return await self._store.alarms.change_alarms(decide)

    async def acknowledge(self, alarm_id: str, by: Person) -> AlarmChange:
        """A person acknowledges an alarm (AlarmError if its state does not allow it)."""
        require(by, Duty.ANSWER_ALARM)
        now = self._clock.now()
        return await self._one(alarm_id, lambda alarm: handling.acknowledge(alarm, by.name, now))

    async def shelve(self, alarm_id: str, by: Person, reason: str,
                     until: datetime) -> AlarmChange:
        """A person silences an alarm until ``until``, saying why."""
        require(by, Duty.ANSWER_ALARM)
        now = self._clock.now()
        return await self._one(alarm_id,
                               lambda alarm: handling.shelve(alarm, by.name, reason, until, now))

    async def unshelve(self, alarm_id: str, by: Person) -> AlarmChange:
        """A person ends a shelf early."""
        require(by, Duty.ANSWER_ALARM)
        now = self._clock.now()
        return await self._one(alarm_id, lambda alarm: handling.unshelve(
            alarm, by.name, now, "unshelved by a person"))

    async def set_in_service(self, robot: str, by: Person,
                             in_service: bool) -> list[AlarmChange]:
        """Take a robot out of service for maintenance (its alarms with it), or bring it back."""
        require(by, Duty.SERVICE_ROBOT)
        who = by.name
        if robot not in self._units:
            raise AlarmError(f"no robot {robot!r}; expected one of {', '.join(self._units)}")
        now = self._clock.now()
        move = handling.return_to_service if in_service else handling.remove_from_service
        return await self._store.alarms.change_alarms(
            lambda alarms, _bins, _down: move(alarms.values(), robot, who, now),
            service=(robot, in_service, who))

    async def _one(self, alarm_id: str, act: Callable[[Alarm], AlarmChange]) -> AlarmChange:
        def decide(alarms: Mapping[str, Alarm], _bins: list[BinRecord],
                   _down: frozenset[str]) -> list[AlarmChange]:
            alarm = alarms.get(alarm_id)
            if alarm is None or alarm.state is rules.AlarmState.NORMAL:
                standing = sorted(a.id for a in alarms.values()
                                  if a.state is not rules.AlarmState.NORMAL)
                raise AlarmError(f"no standing alarm {alarm_id!r}; standing: "
                                 f"{', '.join(standing) or 'none'}")
            return [act(alarm)]
        (change,) = await self._store.alarms.change_alarms(decide)
        return change

    async def flooding(self, was_flooding: bool) -> bool:
        """Whether alarms flood now (ISA-18.2: over 10 new in 10 minutes; under 5 ends it)."""
        raised = await self._store.alarms.raised_since(self._clock.now() - handling.FLOOD_WINDOW)
        return handling.flooding(raised, was_flooding)

    def facts(self, record: BinRecord) -> BinFacts:
        """What the alarm rules need to know of a bin."""
        drug = self._settings.formulary.get(record.ndc)
        return BinFacts(robot=record.robot, bin=record.bin,
                        unit=self._units.get(record.robot, "channel"), ndc=record.ndc,
                        drug=drug.display_name if drug else record.ndc,
                        on_hand=record.on_hand, par=record.par, lot=record.lot,
                        expiry=record.expiry)

    def _robot_conditions(self, robots: Iterable[RobotCondition],
                          now: datetime) -> Iterable[Condition]:
        hopper_low = self._settings.config.alarms.hopper_low_vials
        waiting = timedelta(seconds=self._settings.config.alarms.output_waiting_s)
        for robot in robots:
            if robot.output_since is not None and now - robot.output_since >= waiting:
                minutes = int((now - robot.output_since).total_seconds() // 60)
                yield Condition(rules.AlarmType.OUTPUT_WAITING, robot.robot, facts={
                    "detail": f"{robot.output or 'a vial or tablets'}, for {minutes} min"})
            if robot.offline_since is not None:
                yield Condition(rules.AlarmType.ROBOT_OFFLINE, robot.robot,
                                facts={"detail": robot.offline_reason or "no answer"},
                                since=robot.offline_since)
            if robot.stopped is not None:
                yield Condition(rules.AlarmType.ROBOT_FAULT, robot.robot,
                                facts={"detail": robot.stopped})
            low = {size: n for size, n in (robot.vials_left or {}).items() if n <= hopper_low}
            if low:
                detail = ", ".join(f"{size} dram: {n} left" for size, n in sorted(low.items()))
                yield Condition(rules.AlarmType.VIAL_HOPPER_LOW, robot.robot,
                                facts={"detail": detail})


def _chain(*decisions: Decide) -> Decide:
    """One decision made of several, each seeing the alarms as the ones before left them."""
    def decide(alarms: Mapping[str, Alarm], bins: list[BinRecord],
               down: frozenset[str]) -> list[AlarmChange]:
        current = dict(alarms)
        changes: list[AlarmChange] = []
        for decision in decisions:
            made = decision(current, bins, down)
            current.update((c.after.id, c.after) for c in made)
            changes.extend(made)
        return changes
    return decide
