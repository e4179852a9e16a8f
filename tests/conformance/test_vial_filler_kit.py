"""The VialFiller conformance kit: every registered vial filler driver, against a filler.

Every command, every fault the ICD names, idempotence of START, and recovery
after a reconnect. A vendor runs it with
``pytest tests/conformance --driver NAME [--device-url URL]``.
"""

from __future__ import annotations

import asyncio

import pytest

from drivers import errors
from drivers.base import VialFiller
from drivers.filler_types import (
    CapType,
    CellCalibration,
    FillerFault,
    FillerState,
    VialEnd,
    VialReport,
)
from tests.conformance.conftest import Kit

CR = CapType.CHILD_RESISTANT


async def fate(fv: VialFiller, job: int, *, stopped_too: bool = False) -> VialReport:
    """Ask for ``job`` until it ends (or stops in FAULT/SAFE, with ``stopped_too``)."""
    async with asyncio.timeout(15):
        while True:
            report = await fv.job(job)
            if report.finished or (stopped_too and report.stopped):
                return report
            await asyncio.sleep(0.02)


async def counting(fv: VialFiller, job: int) -> None:
    """Until the filler reports ``job`` counting: a fault injected now lands mid-vial."""
    async with asyncio.timeout(15):
        while (report := await fv.job(job)).count == 0 and not report.finished:  # noqa: ASYNC110 - polled, as a host does
            await asyncio.sleep(0.02)


async def test_driver_satisfies_the_protocol(filler_kit: Kit) -> None:
    driver = filler_kit.make()
    assert isinstance(driver, VialFiller)
    assert getattr(type(driver), "kind", None) == "vial-filler"


async def test_calls_before_open_fail_with_not_connected(filler_kit: Kit) -> None:
    with pytest.raises(errors.NotConnectedError):
        await filler_kit.make().status()


async def test_identify_and_an_idle_status(filler_kit: Kit) -> None:
    async with filler_kit.make() as fv:
        identity = await fv.identify()
        status = await fv.status()
    assert identity.cells >= 1 and identity.firmware
    assert status.state is FillerState.IDLE and status.door_closed and not status.estop


async def test_a_vial_is_filled_and_released(filler_kit: Kit) -> None:
    async with filler_kit.make() as fv:
        events = fv.events()
        await fv.start(1001, 1, 20, 8, CapType.EASY_OPEN)
        seen = []
        async with asyncio.timeout(15):
            async for change in events:  # the poller tells each change as it sees it
                seen.append(change)
                if change.state is FillerState.DONE:
                    break
        report = await fate(fv, 1001)
        status = await fv.status()
        await fv.output_taken()
        after = await fv.status()
    assert report.end is VialEnd.DONE and report.count == 20 and report.weight_mg > 0
    assert status.state is FillerState.DONE and status.vial_in_bay
    assert after.state is FillerState.IDLE and not after.vial_in_bay
    assert {s.state for s in seen} >= {FillerState.FILLING, FillerState.DONE}


async def test_start_is_idempotent(filler_kit: Kit) -> None:
    async with filler_kit.make() as fv:
        await fv.start(1002, 2, 10, 8, CR)
        await fv.start(1002, 2, 10, 8, CR)
        report = await fate(fv, 1002)
        await fv.start(1002, 2, 10, 8, CR)  # the last job: nothing again
        await fv.output_taken()
    assert report.count == 10
    if filler_kit.sim is not None:
        assert filler_kit.sim.device.started_jobs == [1002]


async def test_refusals_are_typed(filler_kit: Kit) -> None:
    async with filler_kit.make() as fv:
        cells = (await fv.identify()).cells
        with pytest.raises(errors.NoSuchChannel):
            await fv.start(1003, cells + 1, 5, 8, CR)
        with pytest.raises(errors.BadRequest):
            await fv.start(1003, 1, 5, 7, CR)  # no 7-dram vial
        with pytest.raises(errors.UnknownJob):
            await fv.job(999_999)
        await fv.start(1003, 1, 200, 30, CR)
        with pytest.raises(errors.Busy):
            await fv.start(1004, 2, 5, 8, CR)
        await fv.abort()
        report = await fate(fv, 1003)
        with pytest.raises(errors.OutputOccupied):  # the partial vial waits in the bay
            await fv.start(1004, 2, 5, 8, CR)
        await fv.output_taken()
    assert report.end is VialEnd.ABORTED and report.count < 200


async def test_uncalibrated_cell_is_refused(filler_kit: Kit) -> None:
    filler_kit.needs_simulator()
    async with filler_kit.make() as fv:
        with pytest.raises(errors.NotCalibrated):
            await fv.start(1005, 4, 5, 8, CR)


@pytest.mark.parametrize(("fault", "seen", "end"), [
    ("jam", FillerFault.JAM, VialEnd.JAM),
    ("empty", FillerFault.CELL_EMPTY, VialEnd.CELL_EMPTY),
    ("no_vial", FillerFault.NO_VIAL, VialEnd.NO_VIAL),
    ("cap", FillerFault.CAP_FAULT, VialEnd.CAP_FAULT),
    ("scale", FillerFault.SCALE_FAULT, VialEnd.ABORTED),
    ("door", FillerFault.DOOR_OPEN, VialEnd.ABORTED),
])
async def test_a_fault_stops_the_job_until_reset(filler_kit: Kit, fault: str,
                                                 seen: FillerFault, end: VialEnd) -> None:
    filler_kit.needs_simulator()
    device = filler_kit.sim.device
    match fault:
        case "jam":
            device.faults.jam_after = 4
        case "empty":
            device.set_stock(3, 2)
        case "no_vial":
            device.set_vials(16, 0)
        case "cap":
            device.faults.cap_fault = True
        case "scale":
            device.faults.scale_fault = True
    async with filler_kit.make() as fv:
        await fv.start(1006, 3, 40, 16, CR)
        if fault == "door":
            await counting(fv, 1006)
            device.open_door()
        stopped = await fate(fv, 1006, stopped_too=True)
        with pytest.raises(errors.Busy):
            await fv.start(1007, 1, 5, 8, CR)
        device.close_door()
        await fv.reset_fault()
        ended = await fv.job(1006)
        assert (await fv.status()).state is FillerState.IDLE
    assert stopped.stopped and stopped.fault is seen
    assert ended.end is end and ended.count == stopped.count


async def test_emergency_stop_is_safe_never_complete(filler_kit: Kit) -> None:
    filler_kit.needs_simulator()
    device = filler_kit.sim.device
    async with filler_kit.make() as fv:
        await fv.start(1008, 1, 200, 30, CR)
        await counting(fv, 1008)
        device.press_estop()
        stopped = await fate(fv, 1008, stopped_too=True)
        device.release_estop()
        await fv.reset_fault()
        ended = await fv.job(1008)
    assert stopped.state is FillerState.SAFE and not stopped.finished
    assert ended.end is VialEnd.SAFE


async def test_calibration_and_scale(filler_kit: Kit) -> None:
    async with filler_kit.make() as fv:
        before = await fv.read_calibration(2)
        await fv.write_calibration(2, CellCalibration(37, 123.4))
        after = await fv.read_calibration(2)
        await fv.write_calibration(2, before)
        await fv.tare()
        if filler_kit.sim is not None:  # at a real filler, a person puts the mass in the bay
            filler_kit.sim.device.place_mass(20_000)
            await fv.span(20_000)
            spanned = (await fv.status()).weight_mg
            filler_kit.sim.device.place_mass(0)
            assert abs(spanned - 20_000) < 20
    assert after == CellCalibration(37, 123.4)


async def test_a_job_is_recovered_after_a_reconnect(filler_kit: Kit) -> None:
    first = filler_kit.make()
    await first.open()
    await first.start(1009, 1, 30, 8, CR)
    await first.close()  # the host goes away mid-vial and comes back at once
    async with filler_kit.make() as again:
        await again.start(1009, 1, 30, 8, CR)  # a restarted host that asks again fills nothing
        report = await fate(again, 1009, stopped_too=True)
        await again.output_taken()
    assert report.end is VialEnd.DONE and report.count == 30
    if filler_kit.sim is not None:
        assert filler_kit.sim.device.started_jobs == [1009]


async def test_events_end_when_the_driver_closes(filler_kit: Kit) -> None:
    fv = filler_kit.make()
    await fv.open()
    events = fv.events()
    await fv.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(events), 5)
