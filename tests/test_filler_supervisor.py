"""The supervisor with vial fillers (Modbus TCP and RTU) and a counter, over real links."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from pymodbus.client import AsyncModbusTcpClient

from controller.config import Settings
from controller.domain.alarms import Alarm
from controller.domain.orders import FillOutcome, OrderState
from controller.domain.recovery import RULES, Problem
from controller.robots.filler import FillerRobot
from controller.robots.notices import FillEnded, FillStarted, Notice, RobotNeedsAttention
from controller.robots.outcomes import problem_of_refusal
from controller.robots.simulated import Simulator, start_simulators
from controller.robots.supervisor import Supervisor
from controller.store import Store
from drivers import errors
from drivers.vial_filler import protocol as wire
from simulators.tablet_counter.server import CounterSimulator
from simulators.vial_filler.server import FillerSimulator
from tests.floors import ATORVASTATIN, order, write_config
from tests.helpers import eventually, supervisor_of, tech

METFORMIN = "65862-0008-01"

Floor = tuple[Settings, dict[str, Simulator]]


def filler(sims: dict[str, Simulator], robot: str = "fv1") -> FillerSimulator:
    sim = sims[robot]
    assert isinstance(sim, FillerSimulator)
    return sim


supervisor = supervisor_of


async def settle(sup: Supervisor, order_id: int) -> OrderState:
    async with asyncio.timeout(20):
        (record,) = await sup.wait_settled([order_id])
    return record.state


async def test_a_vial_is_filled_with_the_right_vial_and_cap(
        filler_floor: Floor, store: Store) -> None:
    settings, sims = filler_floor
    sims["tc1"].device.open_door()  # keep the counter out of it
    async with supervisor(settings, store, sims, technician=False) as sup:
        await eventually(lambda: sup.robots["tc1"].attention is not None)
        record = await sup.submit(order(ATORVASTATIN, 30, easy_open=True))
        state = await settle(sup, record.id)
        (fill,) = await store.orders.fills(record.id)
        device = filler(sims).device
        # The vial waits in the bay for a person; only then is the robot told OUTPUT_TAKEN.
        output = sup.robots["fv1"].output
        assert device.vial_in_bay and output is not None and output.fill_id == fill.id
        await sup.take_output("fv1", "tess")
        assert not device.vial_in_bay
    assert state is OrderState.FILLED
    assert (fill.robot, fill.counted, fill.outcome) == ("fv1", 30, FillOutcome.FILLED)
    assert device.started_jobs == [int(fill.job)]
    assert device.params[wire.Holding.VIAL] == 6 and device.params[wire.Holding.CAP] == 1
    (bin_,) = [b for b in await store.stock.bins() if b.robot == "fv1"]
    assert bin_.on_hand == 370


async def test_routing_prefers_the_robot_that_finishes_first(
        filler_floor: Floor, store: Store) -> None:
    settings, sims = filler_floor
    async with supervisor(settings, store, sims) as sup:
        # The counter (12/s) beats the filler (1.5 s pick, 8/s, weigh, cap) on one order.
        first = await sup.submit(order(ATORVASTATIN, 40))
        await settle(sup, first.id)
    (fill,) = await store.orders.fills(first.id)
    assert fill.robot == "tc1"


async def test_restarted_supervisor_never_fills_a_vial_twice(
        tmp_path: Path, store: Store) -> None:
    # Time scale 4: the restart must fit in the heartbeat's 5 s (1.25 s here) even on a
    # busy machine; a longer absence is the next test.
    settings = write_config(tmp_path, [
        {"id": "fv1", "kind": "vial-filler", "url": "sim:tcp", "seed": 3, "ndc": ATORVASTATIN,
         "on_hand": 400, "time_scale": 4}])
    sims = await start_simulators(settings)
    try:
        await _restart_mid_vial(settings, store, sims)
    finally:
        for sim in sims.values():
            await sim.close()


async def _restart_mid_vial(settings: Settings, store: Store,
                            sims: dict[str, Simulator]) -> None:
    device = filler(sims).device
    sup = supervisor(settings, store, sims)
    await sup.start()
    record = await sup.submit(order(ATORVASTATIN, 30))
    await eventually(lambda: device.job is not None and device.job.count > 2)
    await sup.stop()  # the supervisor restarts mid-vial, within the heartbeat's 5 s
    async with supervisor(settings, store, sims) as again:
        state = await settle(again, record.id)
        await eventually(lambda: not device.vial_in_bay)  # the technician took it
    (fill,) = await store.orders.fills(record.id)
    assert state is OrderState.FILLED and fill.counted == 30
    assert device.started_jobs == [int(fill.job)]


async def test_a_supervisor_down_past_the_heartbeat_finds_safe_and_no_complete_vial(
        lone_filler: Floor, store: Store) -> None:
    settings, sims = lone_filler
    device = filler(sims).device
    sup = supervisor(settings, store, sims)
    await sup.start()
    record = await sup.submit(order(ATORVASTATIN, 60))
    await eventually(lambda: device.job is not None and device.job.count > 5)
    await sup.stop()
    await eventually(lambda: device.state is wire.State.SAFE)
    async with supervisor(settings, store, sims) as again:
        state = await settle(again, record.id)
        assert again.robots["fv1"].attention is not None
    (fill,) = await store.orders.fills(record.id)
    assert state is OrderState.EXCEPTION and fill.outcome is FillOutcome.SAFE
    assert fill.counted is not None and fill.counted < 60
    assert device.started_jobs == [int(fill.job)]


async def test_restart_resends_a_start_the_robot_never_received(
        lone_filler: Floor, store: Store) -> None:
    settings, sims = lone_filler
    device = filler(sims).device
    sup = supervisor(settings, store, sims)
    await sup.start()
    await sup.stop()
    # As if the supervisor died between recording the fill and sending START.
    record, _ = await store.orders.receive_order(order(ATORVASTATIN, 12))
    await store.orders.move_order(record.id, OrderState.QUEUED)
    (bin_,) = await store.stock.bins()
    fill = await store.orders.start_fill(record.id, bin_.id, numeric_job=True)
    async with supervisor(settings, store, sims) as again:
        state = await settle(again, record.id)
    assert state is OrderState.FILLED and device.started_jobs == [int(fill.job)]


async def test_heartbeat_loss_gives_safe_and_the_vial_is_never_complete(
        filler_floor: Floor, store: Store) -> None:
    settings, sims = filler_floor
    sims["tc1"].device.open_door()
    stopped: list[str] = []

    def on_notice(notice: Notice) -> None:
        if isinstance(notice, FillStarted) and notice.fill.robot == "fv1" and not stopped:
            # The host's heartbeat stops (a hung task) while polling goes on: after the beat
            # under way, the next is an hour away. (Cancelling the task instead could cut a
            # heartbeat mid-request: on RTU its late reply then answers the next request, the
            # driver rightly calls the line out of step, reconnects, and beats again.)
            worker = sup.robots["fv1"]
            assert isinstance(worker, FillerRobot)
            worker.driver.heartbeat_interval = 3600  # type: ignore[attr-defined]
            stopped.append(notice.fill.job)

    async with supervisor(settings, store, sims) as sup:
        sup.subscribe(on_notice)
        await eventually(lambda: sup.robots["tc1"].attention is not None)
        record = await sup.submit(order(ATORVASTATIN, 50))
        await eventually(lambda: sup.robots["fv1"].attention is not None)
        sims["tc1"].device.close_door()
        await sup.clear("tc1", "tess")
        state = await settle(sup, record.id)
    first, second = await store.orders.fills(record.id)
    assert (first.robot, first.outcome) == ("fv1", FillOutcome.SAFE)
    assert first.counted is not None and first.counted < 50
    assert "heartbeat lost" in filler(sims).device.faults.log
    assert state is OrderState.FILLED and (second.robot, second.counted) == ("tc1", 50)


async def test_a_failed_vial_with_nowhere_else_to_go_is_an_exception_with_its_partial_count(
        lone_filler: Floor, store: Store) -> None:
    settings, sims = lone_filler
    filler(sims).device.faults.jam_after = 9
    async with supervisor(settings, store, sims) as sup:
        record = await sup.submit(order(ATORVASTATIN, 30))
        state = await settle(sup, record.id)
    settled = await store.orders.order(record.id)
    assert state is OrderState.EXCEPTION
    assert settled.reason is not None and "jammed after 9 of 30" in settled.reason
    assert "cannot fill it elsewhere" in settled.reason
    (vial,) = await store.vials.set_aside_vials()
    assert vial.count == 9
    returned = await store.vials.dispose_vial(vial.id, "returned", by=tech("tech-1"))
    (bin_,) = await store.stock.bins()
    assert returned.disposition == "returned" and bin_.on_hand == 400
    with pytest.raises(ValueError, match="expected one of"):
        await store.vials.dispose_vial(vial.id, "eaten", by=tech("tech-1"))


async def _abort_at_the_robot(sim: FillerSimulator) -> None:
    """Someone aborts the job from another Modbus client (a maintenance tool)."""
    host, port = sim.url.removeprefix("modbus-tcp://").split(":")
    async with AsyncModbusTcpClient(host, port=int(port)) as client:
        await client.write_register(wire.Holding.CMD, wire.Command.ABORT, device_id=1)


async def _busy_with_a_foreign_job(sim: FillerSimulator) -> None:
    host, port = sim.url.removeprefix("modbus-tcp://").split(":")
    async with AsyncModbusTcpClient(host, port=int(port)) as client:
        # 200 tablets: about 1.4 s at time scale 20, so the robot is still busy with it when
        # the supervisor sends its own job (even on a loaded machine).
        block = wire.CommandBlock(wire.Command.START, 4_000_000_000, 1, 200, 13)
        await client.write_registers(0, block.registers(), device_id=1)


# How to provoke each problem on fv1, when (before the order, or once its fill started), and
# what then becomes of the order: filled by fv1 again, by tc1 (rerouted), or EXCEPTION.
Provoke = Callable[[FillerSimulator], object]
CASES: list[tuple[Problem, str, Provoke, str]] = [
    (Problem.JAM, "before", lambda s: setattr(s.device.faults, "jam_after", 4), "tc1"),
    (Problem.RAN_EMPTY, "before", lambda s: s.device.set_stock(1, 7), "tc1"),
    (Problem.NO_VIAL, "before", lambda s: s.device.set_vials(6, 0), "tc1"),
    (Problem.DOOR_OPENED, "started", lambda s: s.device.open_door(), "tc1"),
    (Problem.CAP_FAULT, "before", lambda s: setattr(s.device.faults, "cap_fault", True), "tc1"),
    (Problem.SCALE_FAULT, "before", lambda s: setattr(s.device.faults, "scale_fault", True),
     "tc1"),
    (Problem.SAFE, "started", lambda s: s.device.press_estop(), "tc1"),
    (Problem.ABORTED, "started", _abort_at_the_robot, "exception"),
    (Problem.WEIGHT_OFF, "before", lambda s: setattr(s.device.faults, "miscount", 3),
     "exception"),
    # Once connected: the site's heartbeat keeps the foreign job from a SAFE stop.
    (Problem.REFUSED_BUSY, "connected", _busy_with_a_foreign_job, "fv1"),
    (Problem.REFUSED_OUTPUT_OCCUPIED, "before", lambda s: setattr(s.device, "vial_in_bay", True),
     "fv1"),
    (Problem.REFUSED_DOOR_OPEN, "before", lambda s: s.device.open_door(), "tc1"),
    # At connect the supervisor writes the store's calibration: the cell loses it after.
    (Problem.REFUSED_NOT_CALIBRATED, "connected",
     lambda s: setattr(s.device.cells[1], "sensitivity", 0), "tc1"),
]
"""Problems exercised here on a vial filler; the others are exercised below or elsewhere."""
ELSEWHERE = {
    Problem.COUNT_BY_HAND: "test_supervisor (a 90 count the scale cannot verify)",
    Problem.REFUSED_NO_SUCH_BIN: "test_every_refusal_has_a_rule (cells are checked at connect)",
    Problem.REFUSED_STOPPED: "test_every_refusal_has_a_rule (the counter's JammedOrEmpty)",
    Problem.REFUSED_BAD_REQUEST: "test_a_job_id_another_store_used_is_never_taken_as_ours",
    Problem.NOT_ALLOWED: "test_safety_stock (an open fill is not resumed after its lot expired)",
}


def test_every_problem_has_a_rule_and_a_test() -> None:
    assert set(RULES) == set(Problem)
    assert {c[0] for c in CASES} | set(ELSEWHERE) == set(Problem)


@pytest.mark.parametrize(("problem", "when", "provoke", "ends_on"), CASES,
                         ids=[c[0] for c in CASES])
async def test_recovery_rule(tmp_path: Path, store: Store, problem: Problem, when: str,
                             provoke: Provoke, ends_on: str) -> None:
    settings = write_config(tmp_path, [
        {"id": "fv1", "kind": "vial-filler", "url": "sim:tcp", "seed": 4, "ndc": ATORVASTATIN,
         "on_hand": 400},
        {"id": "tc1", "url": "sim:tcp", "seed": 5, "ndc": ATORVASTATIN, "on_hand": 400}])
    sims = await start_simulators(settings)
    fv1, tc1 = filler(sims), sims["tc1"]
    assert isinstance(tc1, CounterSimulator)
    tc1.device.open_door()  # the order goes to fv1 first
    rule = RULES[problem]
    ended: list[FillEnded] = []
    provoked: list[asyncio.Task[object]] = []
    people: list[asyncio.Task[None]] = []

    def on_notice(notice: Notice) -> None:
        if isinstance(notice, FillStarted) and notice.fill.robot == "fv1" and when == "started" \
                and not provoked:
            async def later() -> object:
                await eventually(lambda: fv1.device.job is not None and fv1.device.job.count > 2)
                return await _maybe_await(provoke(fv1))
            provoked.append(asyncio.get_running_loop().create_task(later()))
        elif isinstance(notice, FillEnded):
            ended.append(notice)
        elif isinstance(notice, RobotNeedsAttention) and notice.robot == "fv1":
            people.append(asyncio.get_running_loop().create_task(person(notice.robot)))

    async def person(robot: str) -> None:
        # Where the order stays on fv1, the technician takes the vial out of its bay and
        # clears it; elsewhere fv1 stays stopped and the order must go on without it.
        if ends_on == "fv1":
            fv1.device.take_vial()
            await sup.clear(robot, "tess")

    try:
        if when == "before":
            await _maybe_await(provoke(fv1))
        async with supervisor(settings, store, sims) as sup:
            sup.subscribe(on_notice)
            await eventually(lambda: sup.robots["tc1"].attention is not None)
            if when == "connected":
                await _once_online(sup, fv1, provoke)
            record = await sup.submit(order(ATORVASTATIN, 24))
            if ends_on == "tc1":
                await eventually(lambda: bool(ended))
                tc1.device.close_door()
                await sup.clear("tc1", "tess")
            state = await settle(sup, record.id)
            await asyncio.gather(*provoked, *people)
    finally:
        for sim in sims.values():
            await sim.close()
    first, *rest = await store.orders.fills(record.id)
    assert first.robot == "fv1" and ended[0].fill.id == first.id
    assert ended[0].action is rule.order
    if ends_on == "exception":
        assert state is OrderState.EXCEPTION and not rest
    else:
        assert state is OrderState.FILLED and rest[-1].robot == ends_on
        assert rest[-1].counted == 24


async def _once_online(sup: Supervisor, fv1: FillerSimulator, provoke: Provoke) -> None:
    await eventually(lambda: sup.robots["fv1"].online)
    await _maybe_await(provoke(fv1))


async def _maybe_await(value: object) -> object:
    return await value if asyncio.iscoroutine(value) else value


@pytest.mark.parametrize(("error", "problem"), [
    (errors.Busy, Problem.REFUSED_BUSY), (errors.OutputOccupied, Problem.REFUSED_OUTPUT_OCCUPIED),
    (errors.DoorOpen, Problem.REFUSED_DOOR_OPEN),
    (errors.NotCalibrated, Problem.REFUSED_NOT_CALIBRATED),
    (errors.NoSuchChannel, Problem.REFUSED_NO_SUCH_BIN),
    (errors.JammedOrEmpty, Problem.REFUSED_STOPPED),
    (errors.BadRequest, Problem.REFUSED_BAD_REQUEST),
    (errors.JobConflict, Problem.REFUSED_BAD_REQUEST),
])
def test_every_refusal_has_a_rule(error: type[errors.DeviceError], problem: Problem) -> None:
    assert problem_of_refusal(error("refused", device="r", code="x")) is problem
    assert problem in RULES


async def test_a_job_id_another_store_used_is_never_taken_as_ours(
        lone_filler: Floor, store: Store) -> None:
    settings, sims = lone_filler
    device = filler(sims).device
    device.last_job = store.job_base % wire.MAX_JOB + 1  # what our first fill's job id will be
    async with supervisor(settings, store, sims) as sup:
        record = await sup.submit(order(ATORVASTATIN, 10))
        state = await settle(sup, record.id)
    (fill,) = await store.orders.fills(record.id)
    assert int(fill.job) == device.last_job
    assert state is OrderState.EXCEPTION and fill.outcome is FillOutcome.REFUSED
    assert "from another store" in (fill.detail or "") and device.started_jobs == []


async def test_an_order_no_vial_holds_is_never_sent_to_a_filler(
        tmp_path: Path, store: Store) -> None:
    settings = write_config(tmp_path, [
        {"id": "fv1", "kind": "vial-filler", "url": "sim:tcp", "seed": 6, "ndc": METFORMIN,
         "on_hand": 800},
    ])
    sims = await start_simulators(settings)
    try:
        async with supervisor(settings, store, sims) as sup:
            record = await sup.submit(order(METFORMIN, 300))  # 300 × 470 mm³: over 60 drams
            state = await settle(sup, record.id)
    finally:
        for sim in sims.values():
            await sim.close()
    settled = await store.orders.order(record.id)
    assert state is OrderState.EXCEPTION
    assert settled.reason is not None and "need more than a 60-dram vial" in settled.reason
    assert filler(sims).device.started_jobs == []


async def test_a_hopper_running_low_raises_vial_hopper_low_and_a_refill_clears_it(
        lone_filler: Floor, store: Store) -> None:
    settings, sims = lone_filler
    device = filler(sims).device
    async with supervisor(settings, store, sims) as sup:
        driver = sup.robots["fv1"].driver

        async def seen(vials: int) -> None:
            """Until the filler's poller saw it: the alarm check reads no robot itself."""
            device.set_vials(16, vials)
            await eventually(lambda: driver.last_status.vials_left[16] == vials)
        async def standing() -> list[Alarm]:
            """After a pass (this one, or the watch's own that came first)."""
            await sup.watch.check()
            return [a for a in await store.alarms.alarms() if a.id == "vial-hopper-low-fv1"]
        await seen(4)
        (low,) = await standing()
        assert low.facts["detail"] == "16 dram: 4 left" and low.priority == "medium"
        await seen(200)
        (cleared,) = await standing()
        assert cleared.state == "unack_rtn"
