"""One vial filler as the supervisor drives it: START, follow, judge, release the vial.

The fill is recorded before START; START is idempotent on the device (a
second START of the same JOB_ID does nothing), and after a lost link or a
restart each open fill is reconciled from JOB_ID/LAST_JOB before anything
new is sent, so a vial is never filled twice. A job stopped in FAULT or SAFE
is never taken as complete: its partial vial is recorded and set aside.
"""

from __future__ import annotations

import asyncio

import structlog

from controller.domain.fills import judge_fill, problem_of
from controller.domain.orders import FillOutcome
from controller.domain.vials import cap_for, vial_for
from controller.robots.notices import FillProgress
from controller.robots.output import Output
from controller.robots.worker import RobotWorker
from controller.store import FillRecord, FillResult
from drivers.base import VialFiller
from drivers.errors import DeviceError, DriverError
from drivers.events import EventStream
from drivers.filler_types import (
    CapType,
    CellCalibration,
    FillerFault,
    FillerState,
    FillerStatus,
    VialEnd,
    VialReport,
)

log = structlog.get_logger(__name__)

POLL_S = 1.0
"""Seconds without a change from the poller before asking for the job directly."""
PICK_WEIGH_CAP_S = 1.5 + 0.4 + 1.0
TABLETS_PER_SECOND = 8.0

_STOPPED_BY: dict[FillerFault | None, FillOutcome] = {
    FillerFault.JAM: FillOutcome.JAM,
    FillerFault.CELL_EMPTY: FillOutcome.RAN_EMPTY,
    FillerFault.NO_VIAL: FillOutcome.NO_VIAL,
    FillerFault.DOOR_OPEN: FillOutcome.DOOR_OPENED,
    FillerFault.CAP_FAULT: FillOutcome.CAP_FAULT,
    FillerFault.SCALE_FAULT: FillOutcome.SCALE_FAULT,
}
_ENDED_AS: dict[VialEnd, FillOutcome | None] = {
    VialEnd.DONE: None,
    VialEnd.JAM: FillOutcome.JAM,
    VialEnd.CELL_EMPTY: FillOutcome.RAN_EMPTY,
    VialEnd.ABORTED: FillOutcome.ABORTED,
    VialEnd.NO_VIAL: FillOutcome.NO_VIAL,
    VialEnd.CAP_FAULT: FillOutcome.CAP_FAULT,
    VialEnd.SAFE: FillOutcome.SAFE,
}
_NEEDS_PERSON = {
    FillerState.FAULT: "stopped on a fault: fix it and clear the robot",
    FillerState.SAFE: "in SAFE (heartbeat lost or emergency stop): check it and clear it",
}


class FillerRobot(RobotWorker[VialReport]):
    """The supervisor's hands on one vial filler."""

    numeric_jobs = True
    driver: VialFiller

    def estimate_s(self, quantity: int) -> float:
        """Seconds to pick, count, weigh and cap a vial of ``quantity``."""
        return PICK_WEIGH_CAP_S + quantity / TABLETS_PER_SECOND

    def can_fill(self, ndc: str, quantity: int) -> str | None:
        """A filler cannot take an order no vial holds."""
        drug = self._formulary.get(ndc)
        if drug is not None and vial_for(quantity, drug.unit_volume_mm3) is None:
            return f"{quantity} tablets need more than a 60-dram vial"
        return None

    async def _identify_and_check_bins(self) -> dict[str, object]:
        identity = await self.driver.identify()
        self._require_bins(identity.cells, "cell")
        await self._compare_calibration()
        return {"firmware": identity.firmware, "cells": identity.cells, "unit": identity.unit}

    async def _compare_calibration(self) -> None:
        """Put the store's calibration of each cell (for the drug it holds) and the
        formulary's unit mass on the robot where it holds others (once a connection)."""
        for cell in self.config.channels:
            history = await self._store.calibration.calibration_history(self.id, cell.channel)
            if not history:
                continue  # never calibrated: start_fill refuses the bin, and says why
            sensitivity = int(history[0].settings["sensitivity"])
            held = await self.driver.read_calibration(cell.channel)
            unit_mass = self._formulary[history[0].ndc].unit_mass_mg
            if held.sensitivity != sensitivity or abs(held.unit_mass_mg - unit_mass) > 0.05:
                await self.driver.write_calibration(cell.channel,
                                                    CellCalibration(sensitivity, unit_mass))
                log.warning("calibration differed from the store's: written to the robot",
                            robot=self.id, cell=cell.channel, version=history[0].id,
                            robot_sensitivity=held.sensitivity,
                            robot_unit_mass_mg=held.unit_mass_mg, sensitivity=sensitivity,
                            unit_mass_mg=unit_mass)

    async def _tell_robot_cleared(self) -> None:
        status = await self.driver.status()
        if status.state in (FillerState.FAULT, FillerState.SAFE):
            await self.driver.reset_fault()
        if status.vial_in_bay:
            await self.driver.output_taken()  # the person who cleared it took the vial

    async def _tell_output_taken(self, output: Output) -> None:
        await self.driver.output_taken()

    # -- a fill --------------------------------------------------------------

    async def _carry_out(self, fill: FillRecord) -> None:
        order = await self._store.orders.order(fill.order_id)
        drug = self._formulary[fill.ndc]
        vial = vial_for(fill.quantity, drug.unit_volume_mm3)
        job = int(fill.job)
        status = await self.driver.status()
        if job in (status.job, status.last_job):
            # Another store's job ids overlap ours: never take that job's vial for this one.
            await self._refused(fill, DeviceError(
                f"job id {job} is the robot's current or last job, from another store",
                device=self.id, code="job id collision"))
            return
        if vial is None:
            await self._refused(fill, DeviceError(
                f"{fill.quantity} tablets need more than a 60-dram vial", device=self.id,
                code="no vial size"))
            return
        events = self.driver.events()
        try:
            try:
                await self.driver.start(job, fill.bin, fill.quantity, vial,
                                        CapType(cap_for(order.easy_open)))
            except DeviceError as exc:
                await self._refused(fill, exc)
                await self._ask_for_person_if_stopped()
                return
            log.info("vial started", robot=self.id, fill=fill.id, job=fill.job, vial_drams=vial,
                     cap=cap_for(order.easy_open))
            report = await self._follow_job(fill, events)
        finally:
            events.close()
        await self._judge_and_record(fill, report)

    async def _follow_job(self, fill: FillRecord, events: EventStream[FillerStatus]) -> VialReport:
        """Until the job ends or stops; progress to the listeners on the way."""
        job = int(fill.job)
        last_count = -1
        while True:
            try:
                status = await asyncio.wait_for(anext(events), POLL_S)
            except TimeoutError:
                report = await self.driver.job(job)
                if self._job_is_over(report):
                    return report
                continue
            except StopAsyncIteration:
                raise DriverError("link lost while filling", device=self.id) from None
            if status.job != job:
                continue
            if status.count != last_count and status.state is FillerState.FILLING:
                last_count = status.count
                self._floor.news(FillProgress(fill, status.count))
            if status.state in (FillerState.DONE, FillerState.FAULT, FillerState.SAFE,
                                FillerState.IDLE):
                report = await self.driver.job(job)
                if self._job_is_over(report):
                    return report

    async def _judge_and_record(self, fill: FillRecord, report: VialReport) -> None:
        """Judge and record the vial, then release the output bay (for a complete one)."""
        if report.stopped:
            stopped: FillOutcome | None = (FillOutcome.SAFE if report.state is FillerState.SAFE
                                           else _STOPPED_BY.get(report.fault, FillOutcome.ABORTED))
        else:
            stopped = _ENDED_AS[report.end] if report.end is not None else FillOutcome.ABORTED
        outcome, check, detail = judge_fill(
            stopped=stopped, quantity=fill.quantity, count=report.count,
            weight_mg=report.weight_mg, drug=self._formulary[fill.ndc],
            scale_noise_mg=self.config.scale_noise_mg)
        ended, action = await self._record(
            fill, FillResult(outcome, report.count, report.weight_mg, check, detail),
            problem_of(outcome))
        try:
            await self._correct_if_empty(fill, outcome)
            if (await self.driver.status()).vial_in_bay and not report.stopped:
                # The vial waits in the bay until a person takes it (its label scan, or
                # "taken"): only then is the robot told OUTPUT_TAKEN and may fill again.
                self._hold_output(ended, complete=outcome is FillOutcome.FILLED)
            await self._ask_for_person_if_stopped()
        finally:
            self._floor.fill_ended(ended, action)

    # -- after a lost link or a restart --------------------------------------

    async def _job_report(self, fill: FillRecord) -> VialReport:
        return await self.driver.job(int(fill.job))

    def _job_is_over(self, report: VialReport) -> bool:
        return report.finished or report.stopped

    async def _find_waiting_output(self) -> None:
        """The bay holds a recorded job's vial: it waits for a person, as before the link
        dropped (or the supervisor restarted)."""
        status = await self.driver.status()
        if status.vial_in_bay and status.state is FillerState.DONE and status.last_job:
            done = await self._store.orders.fill_by_job(str(status.last_job))
            if done is not None and done.state == "ended":
                self._hold_output(done, complete=done.outcome is FillOutcome.FILLED)

    async def vials_left(self) -> dict[int, int] | None:
        """Vials left per size (drams): what the driver's poller saw last, where it keeps
        that (no request of its own each alarm pass), else read from the robot."""
        known = getattr(self.driver, "last_status", None)
        status = known if isinstance(known, FillerStatus) else await self.driver.status()
        return dict(status.vials_left)

    async def _robot_is_busy(self) -> bool:
        return (await self.driver.status()).state in (FillerState.FILLING, FillerState.CAPPING)

    async def _ask_for_person_if_stopped(self) -> None:
        """Ask for a person when the robot stopped where only a person can clear it."""
        status = await self.driver.status()
        if status.state in _NEEDS_PERSON:
            self._needs_person(_NEEDS_PERSON[status.state])
        elif status.vial_in_bay and status.state is FillerState.DONE and self.output is None:
            self._needs_person("a vial no fill of this store left waits in the output bay: "
                               "take it")
