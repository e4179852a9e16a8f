"""What maintenance staff do at a running site: watch a robot's wire, live; see each bin's
calibration with the guided runs behind it and the robot's scale checks; run a guided
calibration of a bin on the site's own link to the robot, and accept its proposal. A robot is
calibrated here only while it is out of service: it takes no fill meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import structlog

from controller.config import Settings
from controller.domain.roles import Duty, Person, WorkflowError, require
from controller.domain.tuning import Plan, Run
from controller.pharmacy.refusals import NotFound
from controller.robots.supervisor import Supervisor
from controller.robots.tuning import (
    SampleHands,
    TuningRefused,
    accept_guided,
    ready_to_guide,
    record_tuned,
    tune_channel,
)
from controller.store import StoreError
from controller.store.calibration import Calibration, GuidedCalibration, ScaleCheck
from drivers.errors import DriverError
from drivers.tasks import stop_tasks
from drivers.trace import Frame, Tap

log = structlog.get_logger(__name__)

BACKLOG = 2000
"""Frames a slow reader may fall behind by before the oldest are dropped (and counted)."""


@dataclass(frozen=True, slots=True)
class BinCalibration:
    """One bin's calibration now, its earlier versions, and its guided runs."""

    robot: str
    bin: int
    ndc: str
    history: list[Calibration]
    guided: list[GuidedCalibration]


class CalibrationRefused(WorkflowError):
    """A calibration the site will not run or accept now; the text says why."""


class PersonsHands:
    """At a real robot: the person pours each sample back and says so on the console."""

    def __init__(self, running: GuidedRunning, changed: Callable[[], None]) -> None:
        self._running = running
        self._changed = changed
        self._poured = asyncio.Event()

    async def return_sample(self, channel: int) -> None:
        self._running.waiting = True
        self._changed()
        await self._poured.wait()
        self._poured.clear()
        self._running.waiting = False

    def poured(self) -> None:
        self._poured.set()


@dataclass
class GuidedRunning:
    """A guided calibration the site runs: its runs so far, and how it ended."""

    robot: str
    bin: int
    who: str
    runs: list[Run] = field(default_factory=list)
    waiting: bool = False
    """For the person to pour the last sample back (a real robot)."""
    made: GuidedCalibration | None = None
    error: str | None = None
    hands: PersonsHands | None = None
    task: asyncio.Task[None] | None = None

    @property
    def over(self) -> bool:
        return self.made is not None or self.error is not None


class Maintenance:
    """A running site's robots, for a person with the maintenance role."""

    def __init__(self, settings: Settings, supervisor: Supervisor) -> None:
        self._settings = settings
        self._supervisor = supervisor
        self.running: dict[str, GuidedRunning] = {}
        """Each robot's guided calibration, running or the last one's end."""
        self.sample_hands: Callable[[str], SampleHands | None] = lambda robot: None
        """Hands that pour samples back at a simulated robot (None: a person's, at a real
        one); the site sets it where it runs simulators."""
        self.changed: Callable[[], None] = lambda: None
        """Told when a guided calibration moves (the console's feed)."""

    def tap(self, robot: str, by: Person) -> Tap:
        """The robot's wire (maintenance only); NotFound for a robot the site has not, or
        whose driver does not trace."""
        require(by, Duty.TRACE)
        worker = self._supervisor.robots.get(robot)
        if worker is None:
            raise NotFound(f"no robot {robot!r}; the site has "
                           f"{', '.join(self._supervisor.robots)}")
        tap = getattr(worker.driver, "trace", None)
        if not isinstance(tap, Tap):
            raise NotFound(f"{robot}'s driver ({type(worker.driver).__name__}) keeps no trace")
        return tap

    @contextlib.asynccontextmanager
    async def watch(self, robot: str, by: Person) -> AsyncIterator[asyncio.Queue[Frame]]:
        """The robot's frames from now, in a queue, until the block ends."""
        frames: asyncio.Queue[Frame] = asyncio.Queue(BACKLOG)

        def put(frame: Frame) -> None:
            if frames.full():
                frames.get_nowait()
            frames.put_nowait(frame)
        stop = self.tap(robot, by).listen(put)
        try:
            yield frames
        finally:
            stop()

    async def calibrations(self, robot: str) -> tuple[list[BinCalibration], list[ScaleCheck]]:
        """Each of the robot's bins with its calibrations and guided runs, and its scale
        checks, newest first."""
        store = self._supervisor.store
        made = []
        for held in await store.stock.bins():
            if held.robot != robot:
                continue
            made.append(BinCalibration(
                robot, held.bin, held.ndc,
                await store.calibration.calibration_history(robot, held.bin),
                await store.calibration.guided_calibrations(robot, held.bin)))
        return made, await store.calibration.scale_checks(robot)

    async def _calibrating(self, robot: str, by: Person) -> None:
        """CalibrationRefused unless ``by`` may calibrate and ``robot`` is out of service."""
        require(by, Duty.CALIBRATE)
        if robot not in self._supervisor.robots:
            raise NotFound(f"no robot {robot!r}")
        if robot not in await self._supervisor.store.alarms.out_of_service():
            raise CalibrationRefused(f"{robot} is in service: take it out of service first "
                                     f"(it takes no fill while it is calibrated)")
        now = self.running.get(robot)
        if now is not None and not now.over:
            raise CalibrationRefused(f"a guided calibration of {robot}/{now.bin} runs "
                                     f"({now.who}): let it end first")

    async def start_guided(self, robot: str, number: int, by: Person, *, plan: Plan,
                           start_sensitivity: int | None = None,
                           start_gate_ms: int | None = None) -> GuidedRunning:
        """Start a guided calibration of ``robot``/``number`` on the site's link; it runs on
        its own, and records its runs (and proposal) as ``by``'s when it ends."""
        await self._calibrating(robot, by)
        try:
            drug = await ready_to_guide(self._supervisor.store, self._settings.formulary, robot,
                                        number, plan)
        except TuningRefused as exc:
            raise CalibrationRefused(str(exc)) from None
        running = GuidedRunning(robot, number, by.name)
        hands = self.sample_hands(robot)
        if hands is None:
            running.hands = PersonsHands(running, self.changed)
            hands = running.hands

        def ran(run: Run, _: int) -> None:
            running.runs.append(run)
            self.changed()

        worker = self._supervisor.robots[robot]

        async def work() -> None:
            try:
                with worker.calibration(f"{robot}/{number}"):
                    tuned = await tune_channel(
                        worker.driver, channel=number, unit_mass_mg=drug.unit_mass_mg,
                        unit_volume_mm3=drug.unit_volume_mm3, plan=plan, hands=hands,
                        say=ran, start_sensitivity=start_sensitivity,
                        start_gate_ms=start_gate_ms)
                running.made = await record_tuned(self._supervisor.store, robot, number, tuned,
                                                  by)
            except (TuningRefused, DriverError, StoreError) as exc:
                running.error = str(exc)
                log.warning("guided calibration stopped", robot=robot, bin=number,
                            error=str(exc))
            except Exception as exc:  # a bug: said on the page, not left "counting" forever
                running.error = f"{type(exc).__name__}: {exc}"
                log.exception("guided calibration failed", robot=robot, bin=number)
            finally:
                self.changed()
        self.running[robot] = running
        running.task = asyncio.get_running_loop().create_task(
            work(), name=f"{robot}-guided-calibration")
        self.changed()
        return running

    def poured(self, robot: str, by: Person) -> None:
        """The person poured the last sample back into its canister."""
        require(by, Duty.CALIBRATE)
        running = self.running.get(robot)
        if running is None or running.hands is None or not running.waiting:
            raise CalibrationRefused(f"no sample of {robot} waits to be poured back")
        running.hands.poured()

    async def accept(self, robot: str, number: int, guided: int, by: Person) -> Calibration:
        """``robots.tuning.accept_guided`` on the site's link, the robot held meanwhile."""
        await self._calibrating(robot, by)
        worker = self._supervisor.robots[robot]
        with worker.calibration(f"{robot}/{number}"):
            try:
                return await accept_guided(self._supervisor.store, worker.driver,
                                           self._settings.formulary, robot, number, guided, by)
            except TuningRefused as exc:
                raise CalibrationRefused(str(exc)) from None

    async def close(self) -> None:
        """Stop a guided calibration still running (the site stops); its channel gets its
        own calibration back on the way out."""
        await stop_tasks([r.task for r in self.running.values() if r.task is not None])

