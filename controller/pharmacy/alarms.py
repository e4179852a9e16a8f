"""What a person does about alarms at the console or over the API: the alarm desk's rules
(ISA-18.2, the role table), then MQTT and every screen told at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from controller.domain.alarm_handling import Annunciation, annunciate
from controller.domain.alarms import AlarmChange, AlarmError
from controller.domain.roles import Person
from controller.robots.supervisor import Supervisor
from controller.store.alarm_records import AlarmEvent

LONGEST_SHELF = timedelta(hours=24)
"""An alarm is shelved for a day at most: it returns by itself."""


@dataclass(frozen=True, slots=True)
class Standing:
    """The standing alarms as a technician's list shows them, and whether they flood."""

    view: Annunciation
    flood: bool


class Alarms:
    """Standing alarms, their history, and a person's answers to them."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor
        self._desk = supervisor.desk
        self._store = supervisor.store

    async def standing(self) -> Standing:
        """Most urgent first; in a flood, high and critical ones and the rest counted."""
        flood = self._supervisor.watch.flood
        return Standing(annunciate(await self._store.alarms.alarms(), flood=flood), flood)

    async def history(self, alarm_id: str | None = None, *, last: int = 100) -> list[AlarmEvent]:
        """The latest ``last`` recorded changes (of one alarm, when given), newest first."""
        return (await self._store.alarms.alarm_history(alarm_id))[::-1][:last]

    async def acknowledge(self, alarm_id: str, person: Person) -> AlarmChange:
        """``person`` has seen the alarm and takes charge."""
        return self._told(await self._desk.acknowledge(alarm_id, person))

    async def shelve(self, alarm_id: str, person: Person, reason: str,
                     minutes: float) -> AlarmChange:
        """Silence the alarm for ``minutes`` (a day at most), saying why."""
        if not reason.strip():
            raise AlarmError("say why the alarm may be silenced")
        if not 0 < minutes <= LONGEST_SHELF / timedelta(minutes=1):
            raise AlarmError(f"shelve for {minutes:g} minutes: expected 1 to "
                             f"{LONGEST_SHELF / timedelta(minutes=1):g} minutes")
        until = self._supervisor.clock.now() + timedelta(minutes=minutes)
        return self._told(await self._desk.shelve(alarm_id, person, reason.strip(), until))

    async def unshelve(self, alarm_id: str, person: Person) -> AlarmChange:
        """End a shelf early."""
        return self._told(await self._desk.unshelve(alarm_id, person))

    async def set_in_service(self, robot: str, person: Person,
                             in_service: bool) -> list[AlarmChange]:
        """Take ``robot`` out of service for maintenance (its alarms with it), or back."""
        changes = await self._desk.set_in_service(robot, person, in_service)
        self._supervisor.alarms_changed(changes)
        return changes

    def _told(self, change: AlarmChange) -> AlarmChange:
        self._supervisor.alarms_changed([change])
        return change
