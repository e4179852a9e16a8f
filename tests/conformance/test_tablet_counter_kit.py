"""The TabletCounter conformance kit: every registered counter driver, against a counter.

Every command, every fault the ICD names, idempotence, and recovery after a
reconnect. A vendor runs it against their driver and device with
``pytest tests/conformance --driver NAME [--device-url URL]``.
"""

from __future__ import annotations

import asyncio

import pytest

from drivers import errors
from drivers.base import (
    Calibration,
    CounterEvent,
    CountState,
    JobEnded,
    JobOutcome,
    JobReport,
    Progress,
    TabletCounter,
)
from drivers.events import EventStream
from tests.conformance.conftest import Kit


async def ended(events: EventStream[CounterEvent], job: str) -> tuple[JobReport, list[int]]:
    """Read events until ``job`` ends; its report and the progress counts seen."""
    progress: list[int] = []
    async with asyncio.timeout(15):
        async for event in events:
            if isinstance(event, Progress) and event.job == job:
                progress.append(event.count)
            if isinstance(event, JobEnded) and event.report.job == job:
                return event.report, progress
    raise AssertionError("the events ended before the job")


async def test_driver_satisfies_the_protocol(counter_kit: Kit) -> None:
    driver = counter_kit.make()
    assert isinstance(driver, TabletCounter)
    assert getattr(type(driver), "kind", None) == "tablet-counter"


async def test_calls_before_open_fail_with_not_connected(counter_kit: Kit) -> None:
    with pytest.raises(errors.NotConnectedError):
        await counter_kit.make().status()


async def test_identify_and_an_idle_status(counter_kit: Kit) -> None:
    async with counter_kit.make() as tc:
        identity = await tc.identify()
        status = await tc.status()
    assert identity.channels >= 1 and identity.firmware
    assert status.state is CountState.IDLE


async def test_a_count_reports_progress_ends_done_and_is_taken(counter_kit: Kit) -> None:
    async with counter_kit.make() as tc:
        events = tc.events()
        await tc.count("KIT-1", 1, 30)
        report, progress = await ended(events, "KIT-1")
        assert (await tc.job("KIT-1")) == report
        assert (await tc.status()).state is CountState.DONE
        await tc.take("KIT-1")
        assert (await tc.status()).state is CountState.IDLE
    assert report.outcome is JobOutcome.DONE and report.count == 30 and report.weight_mg > 0
    assert progress == sorted(progress)


async def test_count_is_idempotent(counter_kit: Kit) -> None:
    async with counter_kit.make() as tc:
        events = tc.events()
        await tc.count("KIT-2", 2, 12)
        await tc.count("KIT-2", 2, 12)
        report, _ = await ended(events, "KIT-2")
        await tc.count("KIT-2", 2, 12)  # and once it ended
        with pytest.raises(errors.JobConflict):
            await tc.count("KIT-2", 2, 13)
        await tc.take("KIT-2")
    assert report.count == 12
    if counter_kit.sim is not None:
        assert counter_kit.sim.device.started_jobs == ["KIT-2"]


async def test_refusals_are_typed(counter_kit: Kit) -> None:
    async with counter_kit.make() as tc:
        channels = (await tc.identify()).channels
        with pytest.raises(errors.NoSuchChannel):
            await tc.count("KIT-3", channels + 1, 5)
        with pytest.raises(errors.UnknownJob):
            await tc.job("KIT-NEVER")
        # A job id the ICD does not allow never reaches the wire, or the device refuses it.
        with pytest.raises((ValueError, errors.BadRequest)):
            await tc.count("KIT 3", 1, 5)


async def test_uncalibrated_channel_is_refused(counter_kit: Kit) -> None:
    counter_kit.needs_simulator()
    async with counter_kit.make() as tc:
        with pytest.raises(errors.NotCalibrated):
            await tc.count("KIT-4", 4, 5)


async def test_abort_stops_a_count(counter_kit: Kit) -> None:
    async with counter_kit.make() as tc:
        events = tc.events()
        await tc.count("KIT-5", 1, 300)
        async with asyncio.timeout(15):  # until it is counting: the abort lands mid-count
            while not isinstance(await anext(events), Progress):
                pass
        aborted = await tc.abort()
        report, _ = await ended(events, "KIT-5")
        await tc.take("KIT-5")
    assert aborted is not None and aborted.job == "KIT-5"
    assert report.outcome is JobOutcome.ABORTED and report.count < 300


@pytest.mark.parametrize("fault", ["jam", "empty", "door"])
async def test_a_fault_stops_the_count_until_cleared(counter_kit: Kit, fault: str) -> None:
    counter_kit.needs_simulator()
    device = counter_kit.sim.device
    if fault == "jam":
        device.faults.jam_after = 6
    elif fault == "empty":
        device.set_stock(3, 4)
    async with counter_kit.make() as tc:
        events = tc.events()
        await tc.count("KIT-6", 3, 200)
        if fault == "door":
            await asyncio.sleep(0.1)  # about 24 tablets in
            device.open_door()
        report, _ = await ended(events, "KIT-6")
        with pytest.raises(errors.OutputOccupied):  # the chute still holds KIT-6's tablets
            await tc.count("KIT-7", 1, 5)
        await tc.take("KIT-6")
        with pytest.raises(errors.DoorOpen if fault == "door" else errors.JammedOrEmpty):
            await tc.count("KIT-7", 1, 5)
        device.close_door()
        await tc.clear()
        assert (await tc.status()).state is CountState.IDLE
    expected = {"jam": JobOutcome.JAM, "empty": JobOutcome.EMPTY, "door": JobOutcome.ABORTED}
    assert report.outcome is expected[fault] and report.count < 200


async def test_calibration_and_scale(counter_kit: Kit) -> None:
    async with counter_kit.make() as tc:
        before = await tc.read_calibration(2)
        await tc.write_calibration(2, Calibration(61, 45))
        after = await tc.read_calibration(2)
        await tc.write_calibration(2, before)
        await tc.tare()
        reading = await tc.weigh()
    assert after == Calibration(61, 45)
    assert abs(reading.weight_mg) < 20


async def test_a_job_is_recovered_after_a_reconnect(counter_kit: Kit) -> None:
    first = counter_kit.make()
    await first.open()
    await first.count("KIT-8", 1, 40)
    await first.close()  # the host goes away mid-count
    async with counter_kit.make() as again:
        async with asyncio.timeout(15):
            while not (report := await again.job("KIT-8")).finished:  # noqa: ASYNC110 - polled
                await asyncio.sleep(0.05)
        await again.count("KIT-8", 1, 40)  # a restarted host that asks again starts nothing
        await again.take("KIT-8")
    assert report.outcome is JobOutcome.DONE and report.count == 40
    if counter_kit.sim is not None:
        assert counter_kit.sim.device.started_jobs == ["KIT-8"]


async def test_events_end_when_the_driver_closes(counter_kit: Kit) -> None:
    tc = counter_kit.make()
    await tc.open()
    events = tc.events()
    await tc.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(events), 5)
