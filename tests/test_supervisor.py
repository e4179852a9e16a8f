"""The supervisor against simulated counters, over real ptys and sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog

from controller.clock import Clock
from controller.config import Settings
from controller.domain.orders import FillOutcome, OrderState
from controller.domain.routing import BinChoice, Unroutable, choose_bin
from controller.robots.notices import FillProgress, FillStarted, Notice, RobotOnline
from controller.robots.simulated import Simulator, start_simulators
from controller.robots.supervisor import Supervisor
from controller.store import FillRecord, Store, sqlite_url
from drivers.errors import DriverError
from drivers.tablet_counter.protocol import JobState
from simulators.tablet_counter.parts import SimJob
from simulators.tablet_counter.server import CounterSimulator
from tests.floors import ATORVASTATIN, LISINOPRIL, order, write_config
from tests.helpers import eventually, maint, open_store, supervisor_of


def counters(sims: dict[str, Simulator]) -> dict[str, CounterSimulator]:
    """The simulators of a floor of counters, typed as such."""
    assert all(isinstance(s, CounterSimulator) for s in sims.values())
    return {r: s for r, s in sims.items() if isinstance(s, CounterSimulator)}


@pytest.fixture
async def floor(tmp_path: Path) -> AsyncIterator[tuple[Settings, dict[str, CounterSimulator]]]:
    """Two simulated counters: tc1 on a pty, tc2 on TCP, both holding atorvastatin."""
    settings = write_config(tmp_path, [
        {"id": "tc1", "url": "sim:pty", "seed": 1, "ndc": ATORVASTATIN, "on_hand": 500},
        {"id": "tc2", "url": "sim:tcp", "seed": 2, "ndc": ATORVASTATIN, "on_hand": 300},
    ])
    sims = counters(await start_simulators(settings))
    yield settings, sims
    for sim in sims.values():
        await sim.close()


@pytest.fixture
async def tcp_floor(tmp_path: Path) -> AsyncIterator[tuple[Settings, dict[str, CounterSimulator]]]:
    """One simulated counter, tc1, on TCP (so that a test can cut its link)."""
    settings = write_config(tmp_path, [
        {"id": "tc1", "url": "sim:tcp", "seed": 3, "ndc": ATORVASTATIN, "on_hand": 500}])
    sims = counters(await start_simulators(settings))
    yield settings, sims
    await sims["tc1"].close()


supervisor = supervisor_of


async def test_supervisor_fills_orders_and_takes_counts_off_the_bins(
    floor: tuple[Settings, dict[str, CounterSimulator]], store: Store,
) -> None:
    settings, sims = floor
    async with supervisor(settings, store, sims) as sup:
        ids = [(await sup.submit(order(ATORVASTATIN, q))).id for q in (30, 60, 20)]
        async with asyncio.timeout(20):
            orders = await sup.wait_settled(ids)
    assert [o.state for o in orders] == [OrderState.FILLED] * 3
    fills = await store.orders.fills()
    assert sorted(f.counted or 0 for f in fills) == [20, 30, 60]
    on_hand = {b.robot: b.on_hand for b in await store.stock.bins()}
    taken = {r: sum(f.counted or 0 for f in fills if f.robot == r) for r in ("tc1", "tc2")}
    assert on_hand == {"tc1": 500 - taken["tc1"], "tc2": 300 - taken["tc2"]}
    started = sims["tc1"].device.started_jobs + sims["tc2"].device.started_jobs
    assert sorted(started) == sorted(f.job for f in fills)


async def test_orders_no_robot_can_fill_go_to_exception_with_the_reason(
    floor: tuple[Settings, dict[str, CounterSimulator]], store: Store,
) -> None:
    settings, sims = floor
    async with supervisor(settings, store, sims) as sup:
        absent = await sup.submit(order(LISINOPRIL, 10))
        too_many = await sup.submit(order(ATORVASTATIN, 600))
        unknown = await sup.submit(order("99999-9999-99", 10))
    assert (absent.state, absent.reason) == (OrderState.EXCEPTION,
                                             f"no robot holds NDC {LISINOPRIL}")
    assert too_many.state is OrderState.EXCEPTION
    assert too_many.reason is not None and "at most 500 available" in too_many.reason
    assert unknown.state is OrderState.REJECTED
    assert await store.orders.fills() == []


async def test_link_cut_mid_count_ends_with_the_true_partial_count_and_no_second_count(
    tcp_floor: tuple[Settings, dict[str, CounterSimulator]], store: Store,
) -> None:
    settings, sims = tcp_floor
    sim = sims["tc1"]
    sim.device.faults.jam_after = 70
    cut = asyncio.Event()

    def on_notice(notice: Notice) -> None:
        if isinstance(notice, FillProgress) and notice.count >= 10 and not cut.is_set():
            cut.set()
            sim.cut_link()

    sup = supervisor(settings, store, sims)
    sup.subscribe(on_notice)
    with structlog.testing.capture_logs() as logs:
        async with sup:
            record = await sup.submit(order(ATORVASTATIN, 120))
            async with asyncio.timeout(20):
                (settled,) = await sup.wait_settled([record.id])
    assert cut.is_set()
    (fill,) = await store.orders.fills()
    assert settled.state is OrderState.EXCEPTION
    assert (fill.outcome, fill.counted) == (FillOutcome.JAM, 70)
    assert sim.device.jobs[fill.job].count == 70
    assert sim.device.started_jobs == [fill.job]
    assert (await store.stock.bins())[0].on_hand == 430
    events = [entry["event"] for entry in logs]
    assert events.count("robot link lost") == 1
    assert events.count("robot link recovered") == 1


async def test_restarted_supervisor_reconciles_the_open_fill_and_never_counts_twice(
    floor: tuple[Settings, dict[str, CounterSimulator]], tmp_path: Path,
) -> None:
    settings, sims = floor
    url = sqlite_url(tmp_path / "restart.sqlite")
    store = await open_store(url)
    started = asyncio.Event()
    sup = supervisor(settings, store, sims)
    sup.subscribe(lambda n: started.set() if isinstance(n, FillProgress) else None)
    await sup.start()
    record = await sup.submit(order(ATORVASTATIN, 80))
    async with asyncio.timeout(10):
        await started.wait()
    await sup.stop()  # the supervisor dies mid-count
    await store.close()
    reopened = await open_store(url)
    assert [f.state for f in await reopened.orders.fills()] == ["dispensing"]
    await reopened.close()

    store = await open_store(url)
    try:
        async with supervisor(settings, store, sims) as again:
            async with asyncio.timeout(20):
                (settled,) = await again.wait_settled([record.id])
        (fill,) = await store.orders.fills()
    finally:
        await store.close()
    assert settled.state is OrderState.FILLED
    assert fill.counted == 80
    started_jobs = sims["tc1"].device.started_jobs + sims["tc2"].device.started_jobs
    assert started_jobs == [fill.job]


async def test_a_jam_reroutes_the_order_and_the_robot_waits_for_a_person(
    floor: tuple[Settings, dict[str, CounterSimulator]], store: Store,
) -> None:
    settings, sims = floor
    jammed: list[str] = []

    def on_notice(notice: Notice) -> None:
        if isinstance(notice, FillStarted) and not jammed:
            jammed.append(notice.fill.robot)
            sims[notice.fill.robot].device.faults.jam_after = 5

    async with supervisor(settings, store, sims) as sup:
        sup.subscribe(on_notice)
        first = await sup.submit(order(ATORVASTATIN, 20))
        async with asyncio.timeout(10):
            (result,) = await sup.wait_settled([first.id])
        robot = sup.robots[jammed[0]]
        assert result.state is OrderState.FILLED and robot.attention is not None
        assert not robot.ready
        await sup.clear(jammed[0], "tess")
        assert robot.ready
    jam, refill = await store.orders.fills()
    assert (jam.outcome, jam.counted, jam.robot) == (FillOutcome.JAM, 5, jammed[0])
    assert (refill.outcome, refill.counted, refill.quantity) == (FillOutcome.FILLED, 20, 20)
    assert refill.robot != jam.robot
    (partial,) = await store.vials.set_aside_vials()
    assert (partial.fill_id, partial.count, partial.disposition) == (jam.id, 5, None)


async def test_connecting_names_every_robot_that_failed_and_keeps_trying(
        tmp_path: Path, store: Store) -> None:
    settings = write_config(tmp_path, [
        {"id": "tc1", "url": "/dev/no-such-port", "seed": 1, "ndc": ATORVASTATIN, "on_hand": 5},
        {"id": "tc2", "url": "socket://127.0.0.1:9", "seed": 2, "ndc": ATORVASTATIN,
         "on_hand": 5},
    ])
    async with Supervisor(settings, store) as sup:
        reasons = {r.id: r.offline_reason for r in sup.robots.values()}
        assert not any(r.online for r in sup.robots.values())
        assert "tc1: cannot open /dev/no-such-port" in (reasons["tc1"] or "")
        assert reasons["tc2"]


def choice(bin_id: int, robot: str, available: int, ready: bool = True, finish_s: float = 0
           ) -> BinChoice:
    return BinChoice(bin_id, robot, 1, ATORVASTATIN, available, ready, finish_s)


def test_routing_prefers_a_ready_robot_then_the_one_finishing_first() -> None:
    bins = [choice(1, "a", 500, ready=False), choice(2, "b", 100, finish_s=20),
            choice(3, "c", 90, finish_s=5)]
    assert choose_bin(ATORVASTATIN, 50, bins) == bins[2]
    assert choose_bin(ATORVASTATIN, 95, bins) == bins[1]
    assert choose_bin(ATORVASTATIN, 400, bins) == bins[0]


def test_routing_says_why_no_bin_can_fill() -> None:
    assert choose_bin(LISINOPRIL, 5, [choice(1, "a", 10)]) == Unroutable(
        f"no robot holds NDC {LISINOPRIL}")
    short = choose_bin(ATORVASTATIN, 50, [choice(1, "a", 10), choice(2, "b", 40)])
    assert isinstance(short, Unroutable) and "at most 40 available in 2 bin(s)" in short.reason


async def test_link_lost_after_recording_still_settles_the_order_and_the_chute_waits_for_a_person(
    tcp_floor: tuple[Settings, dict[str, CounterSimulator]], store: Store,
) -> None:
    settings, sims = tcp_floor
    sim = sims["tc1"]
    async with supervisor(settings, store, sims, technician=False) as sup:
        worker = sup.robots["tc1"]
        real_settle = worker._judge_and_record

        async def settle_then_cut(fill: FillRecord, report: Any) -> None:
            await real_settle(fill, report)
            sim.cut_link()  # the line drops once the outcome is recorded

        worker._judge_and_record = settle_then_cut  # type: ignore[method-assign]
        back: list[RobotOnline] = []
        sup.subscribe(lambda n: back.append(n) if isinstance(n, RobotOnline) else None)
        record = await sup.submit(order(ATORVASTATIN, 20))
        async with asyncio.timeout(10):
            (settled,) = await sup.wait_settled([record.id])
        output = worker.output
        assert output is not None and sim.device.chute is not None
        # The person takes the tablets while the line is down: the robot cannot be told, so
        # the supervisor reconnects and finds them still recorded in the chute; the person
        # takes them again and the robot hears DN. None are released behind their back.
        with pytest.raises(DriverError):
            await sup.take_output("tc1", "tess", fill_id=output.fill_id)
        await eventually(lambda: bool(back) and worker.online)
        assert worker.output is not None and worker.output.fill_id == output.fill_id
        assert sim.device.chute is not None
        await sup.take_output("tc1", "tess", fill_id=output.fill_id)
        await eventually(lambda: sim.device.chute is None)
    assert settled.state is OrderState.FILLED
    assert len(sim.device.started_jobs) == 1
    assert (await store.stock.bins())[0].on_hand == 480


async def test_a_robot_without_a_configured_channel_is_refused_at_connect(
    tmp_path: Path, store: Store,
) -> None:
    settings = write_config(tmp_path, [{"id": "tc1", "url": "sim:pty", "seed": 1,
                                        "ndc": ATORVASTATIN, "on_hand": 5, "channel": 5}])
    sim = CounterSimulator(channels=4, seed=1)
    await sim.listen_pty()
    try:
        expected = "robot has 4 channels; the configuration names channel(s) [5]"
        async with Supervisor(settings, store, urls={"tc1": sim.url}) as sup:
            assert not sup.robots["tc1"].online
            assert expected in (sup.robots["tc1"].offline_reason or "")
    finally:
        await sim.close()


async def test_the_stores_calibration_is_put_on_a_robot_that_holds_another(
    floor: tuple[Settings, dict[str, CounterSimulator]], store: Store,
) -> None:
    settings, sims = floor
    sims["tc2"].device.channels[1].sensitivity = 77  # someone turned a knob at the robot
    with structlog.testing.capture_logs() as logs:
        async with supervisor(settings, store, sims):
            pass
    (warning,) = [e for e in logs
                  if e["event"] == "calibration differed from the store's: written to the robot"]
    assert (warning["robot"], warning["robot_sensitivity"], warning["sensitivity"]) \
        == ("tc2", 77, 50)
    assert sims["tc2"].device.channels[1].sensitivity == 50
    await store.calibration.record_calibration("tc1", 1, {"sensitivity": 61, "gate_ms": 38},
                                               by=maint(), reason="guided, by hand")
    async with supervisor(settings, store, sims):  # a restart: the person's stands
        pass
    channel = sims["tc1"].device.channels[1]
    assert (channel.sensitivity, channel.gate_ms) == (61, 38)


async def test_waiting_for_orders_fails_loudly_when_the_supervisor_dies(
    floor: tuple[Settings, dict[str, CounterSimulator]], store: Store,
) -> None:
    # A bug inside a worker's loop stops only that robot (test_site_stays_up.py); one that
    # escapes the loop itself ends the supervisor, and whoever waits is told at once.
    settings, sims = floor
    sup = supervisor(settings, store, sims)

    async def broken() -> None:
        raise ValueError("a bug outside the worker's loop")

    for robot in sup.robots.values():
        robot.run = broken  # type: ignore[method-assign]
    async with sup:
        record = await sup.submit(order(ATORVASTATIN, 10))
        with pytest.raises(RuntimeError, match="stopped before the orders settled"):
            async with asyncio.timeout(10):
                await sup.wait_settled([record.id])


async def test_a_failing_listener_never_stops_a_fill(
    floor: tuple[Settings, dict[str, CounterSimulator]], store: Store,
) -> None:
    settings, sims = floor

    def broken_screen(notice: Notice) -> None:
        raise OSError("the screen went away")

    with structlog.testing.capture_logs() as logs:
        async with supervisor(settings, store, sims) as sup:
            sup.subscribe(broken_screen)
            record = await sup.submit(order(ATORVASTATIN, 10))
            async with asyncio.timeout(10):
                (settled,) = await sup.wait_settled([record.id])
    assert settled.state is OrderState.FILLED
    assert any(e["event"] == "notice listener failed" for e in logs)


async def test_submit_returns_before_any_robot_starts_the_order(
    floor: tuple[Settings, dict[str, CounterSimulator]], store: Store,
) -> None:
    settings, sims = floor
    returned: set[int] = set()
    early: list[int] = []

    def on_notice(notice: Notice) -> None:
        if isinstance(notice, FillStarted) and notice.fill.order_id not in returned:
            early.append(notice.fill.order_id)

    async with supervisor(settings, store, sims) as sup:
        sup.subscribe(on_notice)
        for quantity in (10, 12, 14, 16):
            returned.add((await sup.submit(order(ATORVASTATIN, quantity))).id)
        async with asyncio.timeout(10):
            await sup.wait_settled(sorted(returned))
    assert early == []


async def test_a_robot_out_of_service_takes_no_orders_and_an_expired_lot_is_never_drawn(
    floor: tuple[Settings, dict[str, CounterSimulator]], store: Store,
) -> None:
    settings, sims = floor
    async with supervisor(settings, store, sims) as sup:
        await sup.desk.set_in_service("tc1", maint("maint"), False)
        first = await sup.submit(order(ATORVASTATIN, 10))
        async with asyncio.timeout(20):
            (filled,) = await sup.wait_settled([first.id])
        assert filled.state is OrderState.FILLED
        assert [f.robot for f in await store.orders.fills(first.id)] == ["tc2"]
        # tc2's lot expired (the clock moved on past 2030-01-01): nothing is left to fill from.
        sup.clock = LaterClock()
        second = await sup.submit(order(ATORVASTATIN, 10))
        assert second.state is OrderState.EXCEPTION
        assert "tc1: out of service for maintenance" in (second.reason or "")
        assert "tc2 bin 1: lot L1 expired on 2030-01-01" in (second.reason or "")


class LaterClock(Clock):
    """Real time, five years on."""

    def now(self) -> datetime:
        return super().now() + timedelta(days=5 * 366)


async def test_a_counter_job_id_another_store_used_is_never_taken_as_ours(
    tcp_floor: tuple[Settings, dict[str, CounterSimulator]], store: Store,
) -> None:
    settings, sims = tcp_floor
    device = sims["tc1"].device
    ours = f"{store.instance}-1"  # what our first fill's job id will be (a copied store's too)
    device.jobs[ours] = SimJob(ours, 1, 30, JobState.DONE, count=30, tablets=30, mass_mg=7500,
                               weight_mg=7500)
    async with supervisor(settings, store, sims) as sup:
        record = await sup.submit(order(ATORVASTATIN, 30))
        async with asyncio.timeout(20):
            (settled,) = await sup.wait_settled([record.id])
    (fill,) = await store.orders.fills(record.id)
    assert fill.job == ours
    assert settled.state is OrderState.EXCEPTION and fill.outcome is FillOutcome.REFUSED
    assert "from another store" in (fill.detail or "") and device.started_jobs == []
    assert fill.counted in (None, 0)
