"""The serial driver against the simulator, over a real pty and a real TCP socket."""

from __future__ import annotations

import asyncio

import pytest

from controller.robots.scales import read
from drivers import errors
from drivers.base import (
    Calibration,
    CounterEvent,
    CountState,
    DoorMoved,
    JobEnded,
    JobOutcome,
    PoweredUp,
    Progress,
)
from drivers.events import EventStream
from drivers.tablet_counter import protocol as wire
from drivers.tablet_counter.driver import SerialTabletCounter
from simulators.tablet_counter.server import CounterSimulator
from tests.helpers import eventually, until_end


async def _progress(events: EventStream[CounterEvent]) -> CounterEvent:
    """The first progress event: the device is counting."""
    async with asyncio.timeout(10):
        async for event in events:
            if isinstance(event, Progress):
                return event
    raise AssertionError("the events ended before any progress")


def driver(sim: CounterSimulator) -> SerialTabletCounter:
    return SerialTabletCounter(name="tc-test", url=sim.url)


async def test_identify_reports_vendor_and_channels(counter: CounterSimulator) -> None:
    async with driver(counter) as tc:
        identity = await tc.identify()
    assert (identity.vendor, identity.model, identity.channels) == ("RXSIM", "TC-64", 4)


async def test_count_reports_progress_and_ends_done_with_weight(counter: CounterSimulator) -> None:
    async with driver(counter) as tc:
        events = tc.events()
        await tc.count("J1", 1, 30)
        progress: list[int] = []
        async with asyncio.timeout(10):
            async for event in events:
                if isinstance(event, Progress):
                    progress.append(event.count)
                if isinstance(event, JobEnded):
                    report = event.report
                    break
        assert progress == sorted(progress) and progress[-1] <= 30
        assert report.outcome is JobOutcome.DONE and report.count == 30
        assert abs(report.weight_mg - 30 * 250) < 30 * 250 * 0.05
        assert await tc.job("J1") == report
        status = await tc.status()
        assert (status.state, status.job, status.count) == (CountState.DONE, "J1", 30)
        await tc.take("J1")
        assert (await tc.status()).state is CountState.IDLE
    assert counter.device.channels[1].stock == 370


async def test_count_is_idempotent_for_the_same_job(counter: CounterSimulator) -> None:
    async with driver(counter) as tc:
        events = tc.events()
        await tc.count("J2", 2, 10)
        await tc.count("J2", 2, 10)
        await until_end(events, "J2")
        await tc.count("J2", 2, 10)
    assert counter.device.started_jobs == ["J2"]


async def test_dropped_reply_is_retried_with_the_same_seq_without_acting_twice(
    counter: CounterSimulator,
) -> None:
    async with driver(counter) as tc:
        counter.drop_replies(1)
        await tc.count("J3", 1, 5)
    frames = [f for f in counter.received if b" CT " in f]
    assert len(frames) == 2 and frames[0] == frames[1]
    assert counter.device.started_jobs == ["J3"]
    assert counter.device.faults.log == [f"dropped reply to {frames[0][1:3].decode()} CT"]


async def test_garbled_reply_is_dropped_and_the_request_retried(counter: CounterSimulator) -> None:
    async with driver(counter) as tc:
        counter.garble_replies(1)
        assert (await tc.status()).state is CountState.IDLE
    assert any(entry.startswith("garbled") for entry in counter.device.faults.log)


async def test_no_reply_after_every_retry_raises_reply_timeout(counter: CounterSimulator) -> None:
    async with driver(counter) as tc:
        counter.drop_replies(4)
        with pytest.raises(errors.ReplyTimeout, match="4 tries"):
            await tc.status()
        assert (await tc.status()).state is CountState.IDLE


async def test_job_is_recovered_after_the_driver_closes_mid_count(
    counter: CounterSimulator,
) -> None:
    async with driver(counter) as tc:
        await tc.count("J4", 3, 60)
        await eventually(lambda: counter.device.jobs["J4"].count > 0)  # mid-count
    async with driver(counter) as tc:
        events = tc.events()
        report = await tc.job("J4")
        if not report.finished:
            report = await until_end(events, "J4")
        assert (report.outcome, report.count) == (JobOutcome.DONE, 60)
        await tc.count("J4", 3, 60)
    assert counter.device.started_jobs == ["J4"]


async def test_device_errors_become_typed_errors(counter: CounterSimulator) -> None:
    async with driver(counter) as tc:
        with pytest.raises(errors.NoSuchChannel, match="E11"):
            await tc.count("E11", 9, 5)
        with pytest.raises(errors.NotCalibrated, match="E14"):
            await tc.count("E14", 4, 5)
        with pytest.raises(errors.BadRequest, match="E02"):
            await tc.count("E02", 1, 0)
        with pytest.raises(errors.BadRequest, match="E01"):
            await tc._call("ZZ")
        with pytest.raises(errors.UnknownJob, match="E20"):
            await tc.job("NOPE")
        events = tc.events()
        # Long enough (1.6 s of machine time here) that a loaded machine still asks while it
        # counts; the abort below ends it early.
        await tc.count("A1", 1, 380)
        with pytest.raises(errors.Busy, match="E10"):
            await tc.count("A2", 1, 5)
        with pytest.raises(errors.JobConflict, match="E21"):
            await tc.count("A1", 1, 381)
        aborted = await tc.abort()
        assert aborted is not None and aborted.job == "A1"
        # The scale settles 300 ms (machine time) after the last tablet: hold it unsettled
        # here, so that a loaded machine cannot let it settle before the span is asked.
        device = counter.device
        settled, device.settled_at = device.settled_at, device.clock.now() + 3600
        with pytest.raises(errors.ScaleNotStable, match="E30"):
            await tc.span(5000)
        device.settled_at = settled
        report = await until_end(events, "A1")
        assert report.outcome is JobOutcome.ABORTED and report.count == aborted.count
        with pytest.raises(errors.OutputOccupied, match="E15"):
            await tc.count("A3", 1, 5)
        with pytest.raises(errors.OutputOccupied, match="E15"):
            await tc.tare()
        await tc.take("A1")
        assert await tc.abort() is None


async def test_jam_stops_the_count_and_needs_clearing(counter: CounterSimulator) -> None:
    counter.device.faults.jam_after = 7
    async with driver(counter) as tc:
        events = tc.events()
        await tc.count("JAM1", 1, 20)
        report = await until_end(events, "JAM1")
        assert (report.outcome, report.count) == (JobOutcome.JAM, 7)
        assert (await tc.status()).state is CountState.JAM
        with pytest.raises(errors.OutputOccupied, match="E15"):  # the ICD checks E15 first
            await tc.count("JAM2", 2, 5)
        await tc.take("JAM1")
        with pytest.raises(errors.JammedOrEmpty, match="E16"):
            await tc.count("JAM2", 2, 5)
        await tc.clear()
        await tc.count("JAM2", 2, 5)
        assert (await until_end(events, "JAM2")).outcome is JobOutcome.DONE


async def test_channel_running_empty_ends_the_job_empty(counter: CounterSimulator) -> None:
    counter.device.set_stock(2, 6)
    async with driver(counter) as tc:
        events = tc.events()
        await tc.count("EM1", 2, 10)
        report = await until_end(events, "EM1")
        assert (report.outcome, report.count) == (JobOutcome.EMPTY, 6)
        assert (await tc.status()).state is CountState.EMPTY


async def test_door_opening_aborts_the_count_and_refuses_new_ones(
    counter: CounterSimulator,
) -> None:
    async with driver(counter) as tc:
        events = tc.events()
        await tc.count("D1", 1, 200)
        seen: list[CounterEvent] = [await _progress(events)]  # counting has begun
        counter.device.open_door()
        report = await until_end(events, "D1", seen)
        assert DoorMoved(open=True) in seen
        assert report.outcome is JobOutcome.ABORTED
        await tc.take("D1")
        with pytest.raises(errors.DoorOpen, match="E13"):
            await tc.count("D2", 1, 5)
        with pytest.raises(errors.DoorOpen, match="E13"):
            await tc.clear()
        counter.device.close_door()
        await tc.clear()
        assert (await tc.status()).state is CountState.IDLE


async def test_power_cycle_aborts_the_job_and_announces_itself(counter: CounterSimulator) -> None:
    async with driver(counter) as tc:
        events = tc.events()
        await tc.count("P1", 1, 200)
        await _progress(events)  # counting has begun
        await counter.device.power_cycle(off_s=0.5)
        async with asyncio.timeout(5):
            async for event in events:
                if isinstance(event, PoweredUp):
                    break
        report = await tc.job("P1")
        assert report.outcome is JobOutcome.ABORTED and 0 < report.count < 200


async def test_miscount_shows_in_the_weight(counter: CounterSimulator) -> None:
    counter.device.faults.miscount = 2
    async with driver(counter) as tc:
        events = tc.events()
        await tc.count("M1", 1, 20)
        report = await until_end(events, "M1")
    assert report.count == 20
    assert counter.device.jobs["M1"].tablets == 18
    assert abs(report.weight_mg - 18 * 250) < 100


async def test_calibration_is_read_and_written(counter: CounterSimulator) -> None:
    async with driver(counter) as tc:
        assert await tc.read_calibration(4) == Calibration(0, 0)
        await tc.write_calibration(4, Calibration(60, 35))
        assert await tc.read_calibration(4) == Calibration(60, 35)
        with pytest.raises(errors.BadRequest, match="E02"):
            await tc.write_calibration(4, Calibration(101, 35))
        with pytest.raises(errors.NoSuchChannel, match="E11"):
            await tc.read_calibration(12)
        await tc.count("C4", 4, 3)


async def test_scale_weighs_tares_and_spans(counter: CounterSimulator) -> None:
    async with driver(counter) as tc:
        reading = await tc.weigh()
        assert reading.stable and reading.weight_mg < 10
        await tc.tare()
        with pytest.raises(errors.DeviceError, match="E02"):
            await tc.span(5000)  # nothing on the scale to span on
        counter.device.scale_gain = 1.02  # a scale out of span reads 2 % heavy
        counter.device.place_mass(5000)
        assert abs(await read(tc) - 5100) < 10  # settled
        await tc.span(5000)
        assert abs(await read(tc) - 5000) < 10


async def test_calls_before_open_fail_at_once(counter: CounterSimulator) -> None:
    tc = driver(counter)
    with pytest.raises(errors.NotConnectedError, match="not open"):
        await tc.status()
    async with tc:
        with pytest.raises(errors.DriverError, match="re-entrant"):
            await tc.open()
    async with tc:  # reusable once closed
        await tc.status()


async def test_opening_a_missing_port_names_the_device() -> None:
    tc = SerialTabletCounter(name="tc-missing", url="/dev/does-not-exist")
    with pytest.raises(errors.NotConnectedError, match="tc-missing: cannot open"):
        await tc.open()


async def test_cut_link_fails_the_call_and_ends_the_events(tcp_counter: CounterSimulator) -> None:
    async with driver(tcp_counter) as tc:
        events = tc.events()
        await tc.count("L1", 1, 100)
        tcp_counter.cut_link()
        async with asyncio.timeout(5):
            async for _ in events:
                pass
        assert not tc.connected
        with pytest.raises(errors.LinkError, match="link lost"):
            await tc.status()


async def test_waiting_on_events_with_a_timeout_loses_nothing(counter: CounterSimulator) -> None:
    async with driver(counter) as tc:
        events = tc.events()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(events), 0.01)
        await tc.count("T1", 1, 3)
        assert (await until_end(events, "T1")).count == 3


async def test_closing_fails_a_call_waiting_in_another_task_at_once(
    counter: CounterSimulator,
) -> None:
    tc = driver(counter)
    await tc.open()
    counter.drop_replies(4)
    waiting = asyncio.create_task(tc.status())
    await eventually(lambda: tc._pending is not None)
    await tc.close()
    with pytest.raises(errors.NotConnectedError, match="closed while waiting"):
        await asyncio.wait_for(waiting, 0.05)


async def test_an_error_code_outside_the_icd_is_still_a_device_error(
    counter: CounterSimulator,
) -> None:
    async with driver(counter) as tc:
        with pytest.raises(errors.DeviceError, match="E99 an error code the ICD does not list"):
            tc._check(">01 ST*00", wire.Reply(1, False, ("E99",)))
