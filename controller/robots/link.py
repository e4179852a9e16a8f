"""A robot's link and the people at it: connecting (and again, with backoff, when the link is
lost), asking an idle robot how it is, a robot that stops for a person, and what waits in its
output. :class:`controller.robots.worker.RobotWorker` carries out fills on top of it.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from controller.backoff import Backoff
from controller.clock import Clock, wait_set
from controller.config import Robot
from controller.domain.drugs import Formulary
from controller.robots.notices import (
    Floor,
    OutputTaken,
    OutputWaiting,
    RobotCleared,
    RobotNeedsAttention,
)
from controller.robots.output import Output, OutputBay
from controller.store import FillRecord, Store
from drivers import errors
from drivers.tasks import cancelled

log = structlog.get_logger(__name__)

BUSY_POLL_S = 0.2
"""How often to look whether a robot that refused as busy has finished."""

PROBE_S = 1.0
"""How often an idle worker asks its robot how it is: a link lost while nothing was asked
of the robot is seen within seconds (the README's 5), not at the next order."""


@dataclass(frozen=True, slots=True)
class Dispense:
    """An order routed to a bin of this robot, waiting its turn."""

    order_id: int
    bin_id: int
    estimate_s: float
    """How long the robot will take for it, for routing's finish-time estimate."""


class RobotLink(ABC):
    """One robot's link, its person and its output, for the worker that fills on it."""

    def __init__(
        self, *, robot: Robot, driver: Any, store: Store, formulary: Formulary,
        floor: Floor, clock: Clock, backoff: Backoff,
    ) -> None:
        self.id = robot.id
        self.config = robot
        self.driver = driver
        self.queue: asyncio.Queue[Dispense] = asyncio.Queue()
        self.online = False
        self.busy_s = 0.0
        """The estimate of the fill running now (0 when idle)."""
        self.attention: str | None = None
        self.offline_since: datetime | None = None
        """When the link was lost (None while it is up)."""
        self.offline_reason: str | None = None
        self.job: str | None = None
        """The job the robot is working on, as far as the supervisor knows."""
        self.bay = OutputBay(robot.id, clock)
        """What waits in the robot's output for a person (the robot takes no job meanwhile)."""
        self.known = False
        """True once the worker has reconciled with the robot since start: until then its
        state (a fault, an output) is not known, only whether it answers."""
        self._queued_s = 0.0
        self._store = store
        self._formulary = formulary
        self._floor = floor
        self._clock = clock
        self._backoff = backoff
        self._person = asyncio.Event()
        """Set when a person cleared the robot or took its output."""
        self._link_failed: BaseException | None = None
        """A link error a person's request met while the worker waited for them."""
        self._arrived = asyncio.Event()
        """Set when a fill is queued."""
        self.calibrating: str | None = None
        """What is calibrated on the robot now (trial settings on it: no fill starts)."""
        self._calibrated = asyncio.Event()

    @property
    def output(self) -> Output | None:
        """What the robot's output holds for a person, if anything."""
        return self.bay.held

    @property
    def ready(self) -> bool:
        """Connected, and waiting for no person (a fault to clear, an output to take)."""
        return self.online and self.attention is None and self.output is None

    async def connect(self) -> None:
        """Open the link and check the robot is the one configured; the driver's error if not."""
        await self.driver.open()
        try:
            facts = await self._identify_and_check_bins()
        except BaseException:
            await self._close()
            raise
        self.online = True
        log.info("robot connected", robot=self.id, **facts)

    @abstractmethod
    async def _identify_and_check_bins(self) -> dict[str, object]:
        """Check the robot has the configured bins; what it says of itself, for the log."""

    def _require_bins(self, robot_has: int, word: str) -> None:
        """NotConnectedError when the configuration names bins beyond the robot's ``robot_has``."""
        missing = [c.channel for c in self.config.channels if c.channel > robot_has]
        if missing:
            raise errors.NotConnectedError(f"robot has {robot_has} {word}s; the configuration "
                                           f"names {word}(s) {missing}", device=self.id)

    @abstractmethod
    async def _tell_robot_cleared(self) -> None:
        """Tell the robot a person fixed what stopped it."""

    @abstractmethod
    async def _tell_output_taken(self, output: Output) -> None:
        """Tell the robot a person took its output (DN, OUTPUT_TAKEN)."""

    @abstractmethod
    async def _robot_is_busy(self) -> bool:
        """True while the robot is working on a job (ours or anyone's)."""

    @property
    def state(self) -> str:
        """One word for screens and the robot's MQTT message."""
        if not self.online:
            return "offline"
        if self.attention is not None:
            return "stopped"
        if self.job is not None or self.busy_s:
            return "working"
        return "output_waiting" if self.output is not None else "idle"

    async def vials_left(self) -> dict[int, int] | None:
        """Vials left in each hopper (vial fillers), or None where the robot has none."""
        return None

    async def clear(self, who: str) -> None:
        """``who`` fixed what stopped the robot, and took what its output held: tell it and
        take work again."""
        await self._tell_robot_cleared()
        self.attention = None
        if self.output is not None:
            await self.take_output(self.output.fill_id, who)
        self._person.set()
        log.info("robot cleared", robot=self.id)
        self._floor.news(RobotCleared(self.id))

    def waiting_output(self, fill_id: int | None = None) -> Output:
        """What the output holds (fill ``fill_id``'s, if named), or OutputError saying what
        it holds instead."""
        return self.bay.waiting(fill_id)

    async def take_output(self, fill_id: int, who: str) -> Output:
        """A person took fill ``fill_id``'s vial or tablets from the output: tell the robot,
        which may then start its next job. OutputError when that is not what it holds."""
        output = self.waiting_output(fill_id)
        try:
            await self._tell_output_taken(output)
        except errors.DeviceError:
            raise
        except (errors.DriverError, OSError) as exc:
            # The link is gone: the worker, waiting for this very person, reconnects now (and
            # finds the output still held); the person takes it again once it answers.
            self._link_failed = exc
            self._person.set()
            raise
        self.bay.taken()
        self._person.set()
        log.info("output taken", robot=self.id, fill=fill_id)
        self._floor.news(OutputTaken(self.id, fill_id, who))
        return output

    def _hold_output(self, fill: FillRecord, *, complete: bool) -> None:
        """The robot holds ``fill``'s vial or tablets until a person takes them."""
        if self.bay.hold(fill, complete):
            self._floor.news(OutputWaiting(self.id, fill.id, fill.order_id))

    def unreachable(self, error: BaseException) -> None:
        """The robot could not be reached at start: offline, said once; ``run`` keeps trying."""
        self.online = False
        self.offline_since, self.offline_reason = self._clock.now(), str(error)
        log.error("robot not connected; will keep trying", robot=self.id, error=str(error))
        self._floor.offline(self.id, str(error))

    async def run(self) -> None:
        """Work until cancelled, reconnecting with backoff when the link drops.

        Nothing the worker meets stops the site: a link error takes the robot
        offline until it answers again; anything unexpected (a bug, a store
        error) is logged, stops this robot for a person (``robot_fault``), and
        the other robots go on.
        """
        lost: str | None = self.offline_reason
        if lost is not None:
            await self._clock.sleep(self._backoff.next_delay())
        stopped = False  # a person must look before anything more is sent (a refusal, a bug)
        try:
            while True:
                try:
                    if not self.online:
                        await self.connect()
                    if lost is not None:
                        log.info("robot link recovered", robot=self.id)
                        self.offline_since = self.offline_reason = None
                        self._floor.online(self.id)
                    lost = None
                    self._backoff.reset()
                    if stopped:
                        await self._wait_for_person()
                        stopped = False
                    await self._work()
                except errors.DeviceError as exc:
                    # The robot refused something the supervisor thought safe: a person looks
                    # before anything else is sent.
                    log.error("robot refused a request", robot=self.id, error=str(exc))
                    self._needs_person(f"unexpected refusal: {exc.args[0]}")
                    stopped = True
                    continue
                except (errors.DriverError, OSError) as exc:
                    if cancelled():  # a library swallowed our cancellation: stop as asked
                        raise asyncio.CancelledError from exc
                    await self._close()
                    if lost is None:
                        lost = str(exc)
                        self.offline_since, self.offline_reason = self._clock.now(), lost
                        log.warning("robot link lost", robot=self.id, error=lost)
                        self._floor.offline(self.id, lost)
                except Exception as exc:
                    if cancelled():
                        raise asyncio.CancelledError from exc
                    # Not the robot's fault as far as we know: keep it, and the site, up, but
                    # send nothing more to it until a person has looked.
                    log.exception("robot worker failed; robot stopped for a person",
                                  robot=self.id)
                    self._needs_person(f"internal error: {type(exc).__name__}: {exc}")
                    stopped = True
                    continue
                await self._clock.sleep(self._backoff.next_delay())
        finally:
            await self._close()

    async def _close(self) -> None:
        self.online = False
        with contextlib.suppress(Exception):
            await self.driver.close()

    async def _wait_for_person(self) -> None:
        """Return at once unless the robot waits for a person (a fault to clear, an output to
        take); then, once they did."""
        while self.attention is not None or self.output is not None:
            self._person.clear()
            await self._probing(self._person)
            if self._link_failed is not None:
                failed, self._link_failed = self._link_failed, None
                raise failed

    async def _probing(self, event: asyncio.Event) -> None:
        """Wait until ``event`` is set, asking the robot how it is every PROBE_S meanwhile:
        the driver's error when the link is gone."""
        while not await wait_set(event, PROBE_S):
            await self._robot_is_busy()

    @contextlib.contextmanager
    def calibration(self, what: str) -> Iterator[None]:
        """While held, the robot starts no fill: a calibration has trial settings on it,
        whatever anyone says of its service meanwhile."""
        if self.calibrating is not None:
            raise RuntimeError(f"{self.id} is already calibrating {self.calibrating}")
        self.calibrating = what
        self._calibrated.clear()
        try:
            yield
        finally:
            self.calibrating = None
            self._calibrated.set()

    async def _until_calibrated(self) -> None:
        """Return once no calibration holds the robot."""
        while self.calibrating is not None:
            await self._probing(self._calibrated)

    def _needs_person(self, reason: str) -> None:
        if self.attention is not None:
            return
        self.attention = reason
        log.warning("robot needs attention", robot=self.id, reason=reason)
        self._floor.news(RobotNeedsAttention(self.id, reason))

    async def _until_not_busy(self) -> None:
        """Wait (polling) until the robot has finished whatever job it is on."""
        while await self._robot_is_busy():
            await self._clock.sleep(BUSY_POLL_S)

    @abstractmethod
    async def _work(self) -> None:
        """Reconcile with the robot, then carry out fills until the link fails."""
