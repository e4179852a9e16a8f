"""One tablet counter as the supervisor drives it: its link, its queue and its fills.

Every fill is recorded before the robot is told to count, and its outcome is
recorded before its tablets leave the chute, which they do only when a person
takes them (the robot then hears ``DN``). After a lost link or a restart,
the fills still open in the store are reconciled with the robot (``JB``)
before anything new is sent, so no vial is counted twice.
"""

from __future__ import annotations

import asyncio

import structlog

from controller.domain.fills import judge_fill, problem_of
from controller.domain.orders import FillOutcome
from controller.robots.notices import FillProgress
from controller.robots.output import Output
from controller.robots.worker import RobotWorker
from controller.store import FillRecord, FillResult
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
from drivers.errors import DeviceError, DriverError, UnknownJob
from drivers.events import EventStream

log = structlog.get_logger(__name__)

POLL_S = 1.0
"""Seconds without an event during a count before asking the robot (``JB``) directly."""
TABLETS_PER_SECOND = 12.0
OVERHEAD_S = 1.0
"""Per fill: the command, the scale settling, the chute emptying."""

_STOPPED = {
    JobOutcome.DONE: None,
    JobOutcome.JAM: FillOutcome.JAM,
    JobOutcome.EMPTY: FillOutcome.RAN_EMPTY,
    JobOutcome.ABORTED: FillOutcome.ABORTED,
}
_NEEDS_PERSON = {
    CountState.JAM: "jammed: clear the jam",
    CountState.EMPTY: "a channel ran empty: refill it",
    CountState.DOOR: "door open: close it",
    CountState.FAULT: "robot fault",
}


class CounterRobot(RobotWorker[JobReport]):
    """The supervisor's hands on one tablet counter."""

    driver: TabletCounter

    def estimate_s(self, quantity: int) -> float:
        """Seconds to count ``quantity`` at the counter's rate."""
        return OVERHEAD_S + quantity / TABLETS_PER_SECOND

    async def _identify_and_check_bins(self) -> dict[str, object]:
        identity = await self.driver.identify()
        self._require_bins(identity.channels, "channel")
        await self._compare_calibration()
        return {"vendor": identity.vendor, "model": identity.model, "serial": identity.serial,
                "firmware": identity.firmware}

    async def _compare_calibration(self) -> None:
        """Put the store's calibration of each bin (the one made for the drug it holds) on
        the robot where the robot holds another (once a connection)."""
        for channel in self.config.channels:
            history = await self._store.calibration.calibration_history(self.id, channel.channel)
            if not history:
                continue  # never calibrated: start_fill refuses the bin, and says why
            wanted = history[0].settings
            held = await self.driver.read_calibration(channel.channel)
            if "gate_ms" not in wanted:
                log.error("the store's calibration of a counter's channel has no gate",
                          robot=self.id, channel=channel.channel, version=history[0].id)
                continue
            if (held.sensitivity, held.gate_ms) != (wanted["sensitivity"], wanted["gate_ms"]):
                await self.driver.write_calibration(channel.channel, Calibration(
                    int(wanted["sensitivity"]), int(wanted["gate_ms"])))
                log.warning("calibration differed from the store's: written to the robot",
                            robot=self.id, channel=channel.channel, version=history[0].id,
                            robot_sensitivity=held.sensitivity, robot_gate_ms=held.gate_ms,
                            sensitivity=wanted["sensitivity"], gate_ms=wanted["gate_ms"])

    async def _job_report(self, fill: FillRecord) -> JobReport:
        return await self.driver.job(fill.job)

    def _job_is_over(self, report: JobReport) -> bool:
        return report.finished

    async def _find_waiting_output(self) -> None:
        """The chute holds a recorded job's tablets: they wait for a person, as before the
        link dropped (or the supervisor restarted)."""
        status = await self.driver.status()
        if status.job is not None and status.state is not CountState.COUNTING:
            done = await self._store.orders.fill_by_job(status.job)
            if done is not None and done.state == "ended" and status.count:
                self._hold_output(done, complete=done.outcome is FillOutcome.FILLED)
            elif done is not None and done.state == "ended":
                await self.driver.take(status.job)  # an empty chute: nothing for a person

    async def _tell_output_taken(self, output: Output) -> None:
        await self.driver.take(output.job)

    async def _tell_robot_cleared(self) -> None:
        await self.driver.clear()

    async def _carry_out(self, fill: FillRecord) -> None:
        await self._count(fill)

    async def _count(self, fill: FillRecord) -> None:
        try:
            known = await self.driver.job(fill.job)
        except UnknownJob:
            known = None
        if known is not None:
            # Another store's job ids overlap ours (a copied store): a CT of a job the robot
            # knows starts nothing, and that job's tablets would be taken for this fill's.
            await self._refused(fill, DeviceError(
                f"job id {fill.job} is already known to the robot ({known.outcome}, "
                f"{known.count} counted), from another store", device=self.id,
                code="job id collision"))
            return
        events = self.driver.events()
        try:
            try:
                await self.driver.count(fill.job, fill.bin, fill.quantity)
            except DeviceError as exc:
                try:
                    await self._ask_for_person_if_stopped()
                finally:
                    await self._refused(fill, exc)
                return
            report = await self._follow_job(fill, events)
        finally:
            events.close()
        await self._judge_and_record(fill, report)

    async def _follow_job(self, fill: FillRecord, events: EventStream[CounterEvent]) -> JobReport:
        while True:
            try:
                event = await asyncio.wait_for(anext(events), POLL_S)
            except TimeoutError:
                report = await self.driver.job(fill.job)
                if report.finished:
                    return report
                continue
            except StopAsyncIteration:
                raise DriverError("link closed while counting", device=self.id) from None
            if isinstance(event, JobEnded) and event.report.job == fill.job:
                return event.report
            if isinstance(event, Progress) and event.job == fill.job:
                self._floor.news(FillProgress(fill, event.count))

    async def _judge_and_record(self, fill: FillRecord, report: JobReport) -> None:
        drug = self._formulary[fill.ndc]
        outcome, check, detail = judge_fill(
            stopped=_STOPPED[report.outcome], quantity=fill.quantity, count=report.count,
            weight_mg=report.weight_mg, drug=drug, scale_noise_mg=self.config.scale_noise_mg)
        ended, action = await self._record(
            fill, FillResult(outcome, report.count, report.weight_mg, check, detail),
            problem_of(outcome))
        try:
            await self._correct_if_empty(fill, outcome)
            if report.count:
                # The tablets wait in the chute until a person takes them (their label scan,
                # or "taken"): only then is the robot told DN and may count again.
                self._hold_output(ended, complete=outcome is FillOutcome.FILLED)
            else:
                await self.driver.take(fill.job)  # nothing fell into the chute
            await self._ask_for_person_if_stopped()
        finally:
            # The outcome is recorded: announce it even when the link drops from here on.
            self._floor.fill_ended(ended, action)

    async def _robot_is_busy(self) -> bool:
        return (await self.driver.status()).state is CountState.COUNTING

    async def _ask_for_person_if_stopped(self) -> None:
        """Ask for a person when the robot stopped in a state only a person can clear."""
        status = await self.driver.status()
        if status.state in _NEEDS_PERSON:
            self._needs_person(_NEEDS_PERSON[status.state])
