"""The alarm engine (ISA-18.2) and the alarm desk over a real store."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.alarms.desk import AlarmDesk, RobotCondition
from controller.clock import Clock
from controller.domain import alarm_handling as handling
from controller.domain import alarms as rules
from controller.domain.alarms import (
    BIN_TYPES,
    CATALOGUE,
    Alarm,
    AlarmError,
    AlarmState,
    AlarmType,
    BinFacts,
    Condition,
    Priority,
    Thresholds,
)
from controller.mqtt.topics import Topics
from controller.robots.floor import bin_specs
from controller.store import Store, sqlite_url
from tests.floors import ATORVASTATIN, write_config
from tests.helpers import maint, open_store, tech

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
THRESHOLDS = Thresholds(expiring_days=30, low_deadband_pct=10)


def facts(on_hand: int, par: int = 100, expiry: date = date(2027, 6, 1)) -> BinFacts:
    return BinFacts("vf1", 12, "cell", ATORVASTATIN, "atorvastatin 20 mg tablet", on_hand, par,
                    "LOT1", expiry)


def step(alarms: dict[str, Alarm], on_hand: int, now: datetime = T0,
         expiry: date = date(2027, 6, 1)) -> list[rules.AlarmChange]:
    """One evaluation of one bin; ``alarms`` is updated in place."""
    conditions = rules.bin_conditions([facts(on_hand, expiry=expiry)], alarms, today=now.date(),
                                      thresholds=THRESHOLDS)
    changes = rules.evaluate(alarms, conditions, scope=BIN_TYPES, now=now)
    for change in changes:
        alarms[change.after.id] = change.after
    return changes


def test_every_alarm_type_says_its_consequence_and_the_response() -> None:
    assert set(CATALOGUE) == set(AlarmType)
    assert [t.value for t in AlarmType] == ["bin_low", "bin_empty", "bin_expiring",
                                            "bin_expired", "robot_fault", "robot_offline",
                                            "vial_hopper_low", "output_waiting"]
    for kind in CATALOGUE.values():
        assert kind.consequence and kind.response and kind.message


def test_a_low_bin_alarms_with_the_icd_payload() -> None:
    alarms: dict[str, Alarm] = {}
    (change,) = step(alarms, 38, expiry=date(2027, 6, 1))
    payload = change.after.payload()
    assert payload["id"] == "bin-low-vf1-12"
    assert (payload["type"], payload["priority"], payload["state"]) == (
        "bin_low", "medium", "unack_active")
    assert (payload["robot"], payload["bin"], payload["ndc"], payload["on_hand"],
            payload["par"]) == ("vf1", 12, ATORVASTATIN, 38, 100)
    assert payload["message"] == ("Cell 12 of vf1 (atorvastatin 20 mg tablet) has 38 tablets "
                                  "left, at or below par 100: restock")
    assert payload["response"] == f"Restock cell 12 of vf1 with NDC {ATORVASTATIN} and scan " \
                                  "the bottle"
    assert payload["raised_at"] == "2026-11-23T09:00:00.000Z" and payload["seq"] == 1
    assert {"acked_by", "acked_at", "consequence", "updated_at", "drug"} <= set(payload)


def test_a_count_hovering_at_par_does_not_chatter() -> None:
    alarms: dict[str, Alarm] = {}
    raised = 0
    for on_hand in [100, 101, 100, 102, 99, 105, 110, 104, 101]:
        raised += sum(handling.is_raise(c) for c in step(alarms, on_hand))
    assert raised == 1
    assert alarms["bin-low-vf1-12"].state is AlarmState.UNACK_ACTIVE
    (cleared,) = step(alarms, 111)  # above par + 10 %: the condition clears
    assert cleared.after.state is AlarmState.UNACK_RTN


def test_isa_18_2_states_from_raise_to_normal() -> None:
    alarms: dict[str, Alarm] = {}
    step(alarms, 50)
    low = alarms["bin-low-vf1-12"]
    acked = handling.acknowledge(low, "ana", T0).after
    assert (acked.state, acked.acked_by) == (AlarmState.ACK_ACTIVE, "ana")
    alarms[low.id] = acked
    (cleared,) = step(alarms, 300)
    assert cleared.ended and cleared.after.state is AlarmState.NORMAL
    # Raised again and cleared before anyone looks: unack_rtn, ended by the acknowledgement.
    step(alarms, 50)
    step(alarms, 300)
    assert alarms[low.id].state is AlarmState.UNACK_RTN
    ended = handling.acknowledge(alarms[low.id], "ana", T0)
    assert ended.ended
    with pytest.raises(AlarmError, match="only an unacknowledged alarm"):
        handling.acknowledge(ended.after, "ana", T0)


def test_a_shelf_needs_a_reason_and_a_time_and_ends_by_itself() -> None:
    alarms: dict[str, Alarm] = {}
    step(alarms, 50)
    low = alarms["bin-low-vf1-12"]
    with pytest.raises(AlarmError, match="needs a reason"):
        handling.shelve(low, "ana", " ", T0 + timedelta(hours=1), T0)
    with pytest.raises(AlarmError, match="at most"):
        handling.shelve(low, "ana", "bottle ordered", T0 + timedelta(days=2), T0)
    with pytest.raises(AlarmError, match="say who"):
        handling.shelve(low, "", "bottle ordered", T0 + timedelta(hours=1), T0)
    shelved = handling.shelve(low, "ana", "bottle ordered", T0 + timedelta(hours=1), T0).after
    assert (shelved.state, shelved.shelved_reason) == (AlarmState.SHELVED, "bottle ordered")
    assert handling.expire_shelves([shelved], T0 + timedelta(minutes=59)) == []
    (back,) = handling.expire_shelves([shelved], T0 + timedelta(hours=1))
    assert back.after.state is AlarmState.UNACK_ACTIVE and back.after.shelved_by is None


def test_a_robot_out_of_service_takes_its_alarms_and_gives_back_those_that_hold() -> None:
    alarms: dict[str, Alarm] = {}
    step(alarms, 0)  # low and empty
    changes = handling.remove_from_service(alarms.values(), "vf1", "maint", T0)
    assert {c.after.state for c in changes} == {AlarmState.OUT_OF_SERVICE}
    for change in changes:
        alarms[change.after.id] = change.after
    step(alarms, 300)  # restocked while down
    back = handling.return_to_service(alarms.values(), "vf1", "maint", T0)
    assert {c.after.state for c in back} == {AlarmState.NORMAL}


def test_robot_offline_waits_out_its_on_delay() -> None:
    down = Condition(AlarmType.ROBOT_OFFLINE, "tc1", facts={"detail": "no answer"}, since=T0)
    assert rules.evaluate({}, [down], scope=rules.ROBOT_TYPES, now=T0 + timedelta(seconds=2)) \
        == []
    (raised,) = rules.evaluate({}, [down], scope=rules.ROBOT_TYPES,
                               now=T0 + timedelta(seconds=5))
    assert raised.after.id == "robot-offline-tc1" and raised.after.priority is Priority.HIGH


def test_a_flood_begins_above_ten_and_ends_below_five() -> None:
    assert not handling.flooding(10, False) and handling.flooding(11, False)
    assert handling.flooding(5, True) and not handling.flooding(4, True)


def make_alarm(number: int, kind: AlarmType) -> Alarm:
    return Alarm(f"a-{number}", kind, CATALOGUE[kind].priority, AlarmState.UNACK_ACTIVE, True,
                 "vf1", number, {}, T0 + timedelta(seconds=number), T0)


@settings(max_examples=50)
@given(st.lists(st.sampled_from(list(AlarmType)), min_size=1, max_size=40))
def test_in_a_flood_no_high_priority_alarm_is_hidden(kinds: list[AlarmType]) -> None:
    standing = [make_alarm(n, kind) for n, kind in enumerate(kinds)]
    view = handling.annunciate(standing, flood=True)
    urgent = {a.id for a in standing if a.priority.rank >= Priority.HIGH.rank}
    assert {a.id for a in view.shown} == urgent
    assert sum(n for _, _, n in view.summarised) == len(standing) - len(urgent)
    ranks = [a.priority.rank for a in view.shown]
    assert ranks == sorted(ranks, reverse=True)
    assert {a.id for a in handling.annunciate(standing, flood=False).shown} == {
        a.id for a in standing}


# -- the desk, over a real store -------------------------------------------------------------

class FixedClock(Clock):
    def __init__(self, now: datetime) -> None:
        self.moment = now

    def now(self) -> datetime:
        return self.moment


async def desk_and_store(tmp_path: Path, clock: Clock) -> tuple[AlarmDesk, Store]:
    settings = write_config(tmp_path, [{"id": "tc1", "url": "sim:pty", "seed": 1,
                                        "ndc": ATORVASTATIN, "on_hand": 400}])
    store = await open_store(sqlite_url(tmp_path / "rx.sqlite"), clock=clock)
    store.topics = Topics("t-desk")
    await store.stock.ensure_bins(bin_specs(settings))
    return AlarmDesk(settings, store, clock), store


async def test_desk_records_every_change_with_its_message(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    desk, store = await desk_and_store(tmp_path, clock)
    try:
        (record,) = await store.stock.bins()
        await store.stock.correct_bin(record.id, 10, by=tech("tech"), reason="counted")
        changes = await desk.check_bins()
        assert {c.after.type for c in changes} == {AlarmType.BIN_LOW}
        assert await desk.check_bins() == []  # nothing new: nothing written
        alarm_id = changes[0].after.id
        with pytest.raises(AlarmError, match="no standing alarm 'bin-low-tc1-9'"):
            await desk.acknowledge("bin-low-tc1-9", tech("ana"))
        await desk.acknowledge(alarm_id, tech("ana"))
        await store.stock.correct_bin(record.id, record.capacity, by=tech("tech"),
                                      reason="restocked")
        (ended,) = await desk.check_bins()
        assert ended.ended
        history = [(e.from_state, e.to_state, e.who)
                   for e in await store.alarms.alarm_history(alarm_id)]
        assert history == [(None, "unack_active", "supervisor"),
                           ("unack_active", "ack_active", "ana"),
                           ("ack_active", "normal", "supervisor")]
        messages = [o.message for o in await store.alarms.outbox()]
        assert [m.topic for m in messages] == [f"rxfill/t-desk/alarms/{alarm_id}"] * 3
        assert messages[-1].payload == b"" and all(m.retain for m in messages)
        assert await store.alarms.raised_since(T0 - timedelta(minutes=10)) == 1
    finally:
        await store.close()


async def test_desk_takes_a_robot_out_of_service_and_back(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    desk, store = await desk_and_store(tmp_path, clock)
    try:
        stopped = RobotCondition("tc1", stopped="jam on channel 1")
        (fault,) = await desk.check_robots([stopped])
        assert fault.after.id == "robot-fault-tc1"
        await desk.set_in_service("tc1", maint("maint"), False)
        assert await store.alarms.out_of_service() == {"tc1"}
        assert {a.state for a in await store.alarms.alarms()} == {AlarmState.OUT_OF_SERVICE}
        await desk.check_robots([RobotCondition("tc1")])  # fixed while down
        (back,) = await desk.set_in_service("tc1", maint("maint"), True)
        assert back.ended and await store.alarms.out_of_service() == frozenset()
        with pytest.raises(AlarmError, match="no robot 'zz'"):
            await desk.set_in_service("zz", maint("maint"), False)
    finally:
        await store.close()


async def test_desk_shelves_until_the_clock_passes(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    desk, store = await desk_and_store(tmp_path, clock)
    try:
        (hopper,) = await desk.check_robots([RobotCondition("tc1", vials_left={16: 3, 20: 40})])
        assert hopper.after.facts["detail"] == "16 dram: 3 left"
        await desk.shelve(hopper.after.id, tech("ana"), "vials on order",
                          T0 + timedelta(minutes=30))
        assert await desk.expire_shelves() == []
        clock.moment = T0 + timedelta(minutes=31)
        (back,) = await desk.expire_shelves()
        assert back.after.state is AlarmState.UNACK_ACTIVE
    finally:
        await store.close()


async def test_desk_sees_a_flood_and_its_end(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    desk, store = await desk_and_store(tmp_path, clock)
    try:
        stopped = [RobotCondition(f"r{n}", stopped="jam") for n in range(11)]
        await desk.check_robots(stopped[:10])
        assert not await desk.flooding(False)       # 10 in 10 minutes: not yet
        await desk.check_robots(stopped)
        assert await desk.flooding(False)           # the 11th
        clock.moment = T0 + timedelta(minutes=9)
        assert await desk.flooding(True)            # still 11 within the window
        clock.moment = T0 + timedelta(minutes=11)
        assert not await desk.flooding(True)        # none in the last 10 minutes
        view = handling.annunciate(await store.alarms.alarms(), flood=True)
        assert len(view.shown) == 11                # robot faults are high: every one shown
    finally:
        await store.close()
