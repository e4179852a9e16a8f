"""A guided calibration at the robot: count a reference sample from the bin at trial settings,
weigh it, and let ``domain.tuning`` decide the next settings, until runs agree or never will.

The trial settings are on the device only while it counts the samples: whatever happens, the
bin's own calibration is written back before this returns. A proposal changes nothing until a
person with the maintenance role accepts it.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from controller.domain.drugs import Drug, Formulary
from controller.domain.roles import Person
from controller.domain.tuning import Decision, Plan, Run, Setting, decide
from controller.domain.vials import vial_for
from controller.store import Store
from controller.store.calibration import Calibration as BinCalibration
from controller.store.calibration import GuidedCalibration
from drivers.base import (
    Calibration,
    CountState,
    JobEnded,
    JobOutcome,
    TabletCounter,
    VialFiller,
)
from drivers.events import EventStream
from drivers.filler_types import CapType, CellCalibration, FillerState, VialEnd

ASK_AGAIN_S = 1.0
"""A running sample is asked after on each event from the robot, and at least this often."""


class TuningRefused(Exception):
    """A guided calibration cannot start or go on; the text says why and what to do."""


class SampleHands(Protocol):
    """The person at the robot (or, at a simulated one, the simulator's world)."""

    async def return_sample(self, channel: int) -> None:
        """Pour the counted sample (chute or vial) back into the channel's canister."""


@dataclass(frozen=True, slots=True)
class Tuned:
    """A guided calibration's runs, and its proposal (None with why when the runs never
    agreed)."""

    start: Setting
    runs: list[Run] = field(default_factory=list)
    decision: Decision | None = None


async def tune_channel(driver: TabletCounter | VialFiller, *, channel: int, unit_mass_mg: float,
                       unit_volume_mm3: float, plan: Plan, hands: SampleHands,
                       say: Callable[[Run, int], None], start_sensitivity: int | None = None,
                       start_gate_ms: int | None = None) -> Tuned:
    """Run a guided calibration of ``channel`` from its settings now, or from those given."""
    await _idle(driver)
    counter = isinstance(driver, TabletCounter)
    held = await driver.read_calibration(channel)
    own = Setting(held.sensitivity, held.gate_ms if isinstance(held, Calibration) else None)
    setting = Setting(start_sensitivity or own.sensitivity,
                      (start_gate_ms or own.gate_ms) if counter else None)
    if not setting.sensitivity or (counter and not setting.gate_ms):
        raise TuningRefused(f"channel {channel} holds no calibration to start from ({own}): "
                            f"say where to start (a sensitivity, and a counter's gate)")
    tuned = Tuned(setting)
    try:
        while True:
            await write_setting(driver, channel, setting, unit_mass_mg)
            counted, weight = await _count_sample(driver, channel, plan.sample, unit_volume_mm3,
                                                  hands)
            tuned.runs.append(Run(setting, counted, weight, unit_mass_mg))
            decision = decide(tuned.runs, plan)
            say(tuned.runs[-1], len(tuned.runs))
            if decision.next is None:
                return Tuned(tuned.start, tuned.runs, decision)
            setting = decision.next
    finally:
        if own.sensitivity and (own.gate_ms or not counter):
            await write_setting(driver, channel, own, unit_mass_mg)
        # A channel that held no calibration cannot be given "none" again (the ICDs take
        # 1-100): it keeps the last trial's until a site connects to the robot, which puts
        # the store's calibration of the bin on it first; with none, the store lets nothing
        # be counted from the bin.


async def ready_to_guide(store: Store, formulary: Formulary, robot: str, number: int,
                         plan: Plan) -> Drug:
    """The bin's drug, when a guided calibration may count samples of it now; TuningRefused
    says why not (the robot's scale failed its check, the bin holds too few)."""
    if why := await store.calibration.scale_failed_why(robot):
        raise TuningRefused(f"a guided calibration weighs its samples: {why}")
    held = await store.stock.bin(robot, number)
    if held.on_hand < plan.sample:
        raise TuningRefused(f"{robot}/{number} holds {held.on_hand} tablets; a run counts "
                            f"{plan.sample}: restock it or count a smaller sample")
    return formulary[held.ndc]


async def record_tuned(store: Store, robot: str, number: int, tuned: Tuned,
                       by: Person) -> GuidedCalibration:
    """A finished guided calibration's runs and proposal (or why none), as ``by``'s."""
    assert tuned.decision is not None
    proposal = tuned.decision.proposal
    return await store.calibration.record_guided(
        robot, number, [r.as_dict() for r in tuned.runs],
        proposal.as_dict() if proposal else None, tuned.decision.why, by=by)


async def accept_guided(store: Store, driver: TabletCounter | VialFiller, formulary: Formulary,
                        robot: str, number: int, guided: int, by: Person) -> BinCalibration:
    """Put a guided calibration's proposal on the robot (read back) and make it the bin's.
    Nothing is written for a proposal the store refuses (made for another drug, or since
    replaced); should the store refuse after all, the bin's own goes back on the robot."""
    made = await store.calibration.proposal_to_accept(robot, number, guided)
    assert made.proposal is not None
    unit_mass = formulary[made.ndc].unit_mass_mg
    await write_setting(driver, number, setting_of(made.proposal), unit_mass)
    try:
        return await store.calibration.accept_proposal(robot, number, guided, by=by)
    except BaseException:
        own = (await store.calibration.calibration_history(robot, number))[0]
        await write_setting(driver, number, setting_of(own.settings), unit_mass)
        raise


def setting_of(settings: Mapping[str, Any]) -> Setting:
    """A stored calibration's settings (``sensitivity``, a counter's ``gate_ms``)."""
    return Setting(int(settings["sensitivity"]), settings.get("gate_ms"))


async def write_setting(driver: TabletCounter | VialFiller, channel: int, setting: Setting,
                        unit_mass_mg: float) -> None:
    """Write ``setting`` to the channel (a cell: with the drug's unit mass); the driver reads
    it back."""
    if isinstance(driver, TabletCounter):
        if setting.gate_ms is None:
            raise TuningRefused("a counter's channel needs a gate")
        await driver.write_calibration(channel, Calibration(setting.sensitivity, setting.gate_ms))
    else:
        await driver.write_calibration(channel, CellCalibration(setting.sensitivity,
                                                                unit_mass_mg))


async def _idle(driver: TabletCounter | VialFiller) -> None:
    if isinstance(driver, TabletCounter):
        status = await driver.status()
        if status.state is not CountState.IDLE:
            raise TuningRefused(f"{driver.name} is {status.state} (job {status.job}): a channel "
                                f"is calibrated only when the robot is idle and its chute empty")
    else:
        filler = await driver.status()
        if filler.state is not FillerState.IDLE or filler.vial_in_bay:
            raise TuningRefused(f"{driver.name} is {filler.state}: a cell is calibrated only when "
                                f"the robot is idle and its output bay empty")


async def _count_sample(driver: TabletCounter | VialFiller, channel: int, sample: int,
                        unit_volume_mm3: float, hands: SampleHands) -> tuple[int, int]:
    """Count ``sample`` tablets out of the channel; its count and settled weight, with the
    tablets back in the canister."""
    if isinstance(driver, TabletCounter):
        job = f"CAL{secrets.randbelow(10**9):09d}"
        events = driver.events()
        try:
            await driver.count(job, channel, sample)
            report = await _until_finished(
                lambda: driver.job(job), events,
                lambda e: isinstance(e, JobEnded) and e.report.job == job)
        finally:
            events.close()
        if report.outcome is not JobOutcome.DONE:
            raise TuningRefused(f"the sample's count ended {report.outcome} at {report.count}: "
                                f"clear the robot, refill the canister, and calibrate again")
        await hands.return_sample(channel)
        await driver.take(job)
        return report.count, report.weight_mg
    vial = vial_for(sample, unit_volume_mm3)
    if vial is None:
        raise TuningRefused(f"no vial holds a sample of {sample} tablets: count fewer")
    number = 0x7F000000 + secrets.randbelow(0xFFFFFF)
    filler_events = driver.events()
    try:
        await driver.start(number, channel, sample, vial, CapType.EASY_OPEN)
        vial_report = await _until_finished(
            lambda: driver.job(number), filler_events,
            lambda s: s.last_job == number or s.state in (FillerState.FAULT, FillerState.SAFE))
    finally:
        filler_events.close()
    if vial_report.stopped:
        raise TuningRefused(f"the sample's vial stopped ({vial_report.fault or vial_report.state}"
                            f") at {vial_report.count}: reset the robot, take the vial out and "
                            f"pour it back into the cell, then calibrate again")
    if vial_report.end is not VialEnd.DONE:
        raise TuningRefused(f"the sample's vial ended {vial_report.end} at "
                            f"{vial_report.count}: reset the robot, refill the cell, and "
                            f"calibrate again")
    await hands.return_sample(channel)
    await driver.output_taken()
    return vial_report.count, vial_report.weight_mg


class _Report(Protocol):
    @property
    def finished(self) -> bool: ...

    @property
    def stopped(self) -> bool: ...


R = TypeVar("R", bound=_Report)
E = TypeVar("E")


async def _until_finished(ask: Callable[[], Awaitable[R]], events: EventStream[E],
                          over: Callable[[E], bool]) -> R:
    """The job's report once it finished or stopped for a person: asked again when an event
    says it may be ``over``, and at least every ASK_AGAIN_S."""
    while not ((report := await ask()).finished or report.stopped):
        try:
            async with asyncio.timeout(ASK_AGAIN_S):
                async for event in events:
                    if over(event):
                        break
                else:
                    raise TuningRefused("the link to the robot closed during the sample")
        except TimeoutError:
            continue
    return report
