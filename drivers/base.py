"""The Protocols the controller sees, and the plain result types they return.

The controller never sees a vendor class: only these. A driver satisfies one
Protocol, opens and closes as an async context manager, and raises the types
in :mod:`drivers.errors`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Generic, Protocol, Self, TypeVar, runtime_checkable

import structlog

from drivers.labels import Layout

E = TypeVar("E")

log = structlog.get_logger(__name__)

EVENT_BACKLOG = 256
"""Events a stream keeps for a reader that has not read them; older ones are lost."""


class Backlog(asyncio.Queue[E | None], Generic[E]):
    """One reader's unread events, bounded: a reader that does not read loses the oldest."""

    def __init__(self, device: str, size: int = EVENT_BACKLOG) -> None:
        super().__init__(size)
        self.device = device
        self.lost = 0

    def offer(self, item: E | None) -> None:
        """Queue ``item`` (``None`` ends the stream), dropping the oldest when full."""
        if self.full():
            self.get_nowait()
            self.lost += 1
            if self.lost == 1:
                log.warning("event reader is not keeping up: oldest events are lost",
                            device=self.device, backlog=self.maxsize)
        self.put_nowait(item)


def deliver(listeners: set[Backlog[E]], item: E | None) -> None:
    """Give ``item`` to every listening stream (``None``: the link closed)."""
    for backlog in list(listeners):
        backlog.offer(item)


class EventStream(Generic[E]):
    """A device's events from the moment it was made until the link closes.

    It listens from creation (not from the first ``anext``), and waiting on it
    with a timeout loses nothing: ``await asyncio.wait_for(anext(stream), t)``
    is safe. ``close()`` stops listening. It keeps at most
    :data:`EVENT_BACKLOG` unread events, losing the oldest (logged once).
    """

    def __init__(self, listeners: set[Backlog[E]], device: str = "") -> None:
        self._queue: Backlog[E] = Backlog(device)
        self._listeners = listeners
        listeners.add(self._queue)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> E:
        item = await self._queue.get()
        if item is None:
            self.close()
            raise StopAsyncIteration
        return item

    def close(self) -> None:
        """Stop listening."""
        self._listeners.discard(self._queue)



class CountState(StrEnum):
    """A counter's state, in the controller's terms."""

    IDLE = "idle"
    COUNTING = "counting"
    DONE = "done"
    JAM = "jam"
    EMPTY = "empty"
    DOOR = "door"
    FAULT = "fault"


class JobOutcome(StrEnum):
    """How a counting job stands or ended."""

    COUNTING = "counting"
    DONE = "done"
    JAM = "jam"
    EMPTY = "empty"
    ABORTED = "aborted"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the device says it is."""

    vendor: str
    model: str
    serial: str
    firmware: str
    channels: int


@dataclass(frozen=True, slots=True)
class CounterStatus:
    """A counter's state now, and its current job (None when it has none)."""

    state: CountState
    job: str | None
    count: int


@dataclass(frozen=True, slots=True)
class JobReport:
    """A job's fate: its state, tablets counted and their net mass in mg."""

    job: str
    outcome: JobOutcome
    count: int
    weight_mg: int

    @property
    def finished(self) -> bool:
        """True once the device will count no more tablets for this job."""
        return self.outcome is not JobOutcome.COUNTING


@dataclass(frozen=True, slots=True)
class Calibration:
    """A counting channel's sensor calibration."""

    sensitivity: int
    gate_ms: int


@dataclass(frozen=True, slots=True)
class ScaleReading:
    """The scale now, in mg, and whether it has settled."""

    weight_mg: int
    stable: bool


@dataclass(frozen=True, slots=True)
class Progress:
    """Tablets counted so far in a running job."""

    job: str
    count: int


@dataclass(frozen=True, slots=True)
class JobEnded:
    """A job stopped: done, jammed, ran empty or was aborted."""

    report: JobReport


@dataclass(frozen=True, slots=True)
class DoorMoved:
    """The door opened or closed."""

    open: bool


@dataclass(frozen=True, slots=True)
class PoweredUp:
    """The device restarted."""

    firmware: str


CounterEvent = Progress | JobEnded | DoorMoved | PoweredUp


class OpensAsContext:
    """``async with driver:`` opens it and closes it, even when cancelled. For driver classes:
    they give ``open`` and ``close``."""

    async def open(self) -> None:
        """Open the link."""
        raise NotImplementedError

    async def close(self) -> None:
        """Close the link."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()


@runtime_checkable
class Device(Protocol):
    """What every driver is: a named link, opened and closed as an async context manager."""

    name: str

    async def open(self) -> None:
        """Open the link; NotConnectedError when the device cannot be reached."""
        ...

    async def close(self) -> None:
        """Close the link (and stop whatever runs in the background); safe to call twice."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    @property
    def connected(self) -> bool:
        """True while the link is open and has not dropped."""
        ...


@runtime_checkable
class TabletCounter(Device, Protocol):
    """A tablet-counting robot: channels of one drug each, a chute and a scale."""

    async def identify(self) -> Identity:
        """The device's vendor, model, serial, firmware and channel count."""
        ...

    async def status(self) -> CounterStatus:
        """The device's state now."""
        ...

    async def count(self, job: str, channel: int, quantity: int) -> None:
        """Start counting ``quantity`` tablets of ``channel`` as ``job`` (idempotent)."""
        ...

    async def job(self, job: str) -> JobReport:
        """The fate of ``job``, among the last jobs the device remembers."""
        ...

    async def abort(self) -> Progress | None:
        """Abort the count in progress; the job and its count, or None when none ran."""
        ...

    async def clear(self) -> None:
        """Tell the device the operator cleared a jam, refilled or closed the door."""
        ...

    async def take(self, job: str) -> None:
        """Tell the device the host took ``job``'s tablets from the chute."""
        ...

    async def read_calibration(self, channel: int) -> Calibration:
        """The calibration of ``channel``."""
        ...

    async def write_calibration(self, channel: int, calibration: Calibration) -> None:
        """Set the calibration of ``channel``."""
        ...

    async def weigh(self) -> ScaleReading:
        """The scale's reading now."""
        ...

    async def tare(self) -> None:
        """Zero the scale (the chute must be empty)."""
        ...

    async def span(self, mass_mg: int) -> None:
        """Span-calibrate the scale with a reference mass of ``mass_mg`` on it."""
        ...

    def events(self) -> EventStream[CounterEvent]:
        """Every event the device sends from now on, until the link closes."""
        ...


# -- the vial filler ------------------------------------------------------------


class FillerState(StrEnum):
    """A vial filler's state, in the controller's terms."""

    IDLE = "idle"
    FILLING = "filling"
    CAPPING = "capping"
    DONE = "done"
    """A vial waits in the output bay."""
    FAULT = "fault"
    SAFE = "safe"
    """Stopped for safety (heartbeat lost or emergency stop); the vial is not complete."""


class FillerFault(StrEnum):
    """Why a vial filler stopped a job."""

    JAM = "jam"
    CELL_EMPTY = "cell_empty"
    NO_VIAL = "no_vial"
    DOOR_OPEN = "door_open"
    CAP_FAULT = "cap_fault"
    SCALE_FAULT = "scale_fault"


class VialEnd(StrEnum):
    """How a finished vial job ended."""

    DONE = "done"
    JAM = "jam"
    CELL_EMPTY = "cell_empty"
    ABORTED = "aborted"
    NO_VIAL = "no_vial"
    CAP_FAULT = "cap_fault"
    SAFE = "safe"


class CapType(StrEnum):
    """The cap a vial gets."""

    CHILD_RESISTANT = "child_resistant"
    EASY_OPEN = "easy_open"


@dataclass(frozen=True, slots=True)
class FillerIdentity:
    """What a vial filler reports about itself."""

    firmware: str
    cells: int
    unit: int


@dataclass(frozen=True, slots=True)
class FillerStatus:
    """A vial filler's registers now, in the controller's terms."""

    state: FillerState
    job: int | None
    """The job in progress, or the last one (None before the first)."""
    count: int
    weight_mg: int
    fault: FillerFault | None
    last_job: int | None
    last_end: VialEnd
    last_count: int
    last_weight_mg: int
    jobs_done: int
    heartbeat_echo: int
    door_closed: bool
    vial_in_bay: bool
    estop: bool
    hopper_low: bool
    vials_left: dict[int, int]
    """Vials left per size in drams."""


@dataclass(frozen=True, slots=True)
class VialReport:
    """A vial job's fate.

    ``end`` is None while the job is not finished: it is filling, capping, or
    stopped in FAULT (``fault`` says why) or SAFE, waiting for a reset.
    """

    job: int
    state: FillerState
    fault: FillerFault | None
    end: VialEnd | None
    count: int
    weight_mg: int

    @property
    def finished(self) -> bool:
        """True once the device has ended the job (LAST_JOB names it)."""
        return self.end is not None

    @property
    def stopped(self) -> bool:
        """True when the job stopped in FAULT or SAFE and waits for RESET_FAULT."""
        return self.end is None and self.state in (FillerState.FAULT, FillerState.SAFE)


@dataclass(frozen=True, slots=True)
class CellCalibration:
    """A cell's counting sensitivity (1–100; 0 not calibrated) and expected tablet mass."""

    sensitivity: int
    unit_mass_mg: float


@runtime_checkable
class VialFiller(Device, Protocol):
    """A vial-filling robot: cells of one drug each, vial hoppers, a scale and a capper.

    Open, it polls the robot's state and writes its heartbeat in the background.
    """

    async def identify(self) -> FillerIdentity:
        """Firmware, cell count and unit id."""
        ...

    async def status(self) -> FillerStatus:
        """Every register now (read fresh, not the poller's copy)."""
        ...

    async def start(self, job: int, cell: int, quantity: int, vial_drams: int,
                    cap: CapType) -> None:
        """Fill a vial as ``job``; returns at once if the device already has that job."""
        ...

    async def job(self, job: int) -> VialReport:
        """The fate of ``job``, the job in progress or the last one; UnknownJob otherwise."""
        ...

    async def abort(self) -> None:
        """Abort the job in progress (its partial vial goes to the output bay)."""
        ...

    async def reset_fault(self) -> None:
        """After a person's fix: end the stopped job and return to idle."""
        ...

    async def output_taken(self) -> None:
        """The vial was taken from the output bay."""
        ...

    async def read_calibration(self, cell: int) -> CellCalibration:
        """The calibration of ``cell``."""
        ...

    async def write_calibration(self, cell: int, calibration: CellCalibration) -> None:
        """Set the calibration of ``cell`` (read back to verify)."""
        ...

    async def tare(self) -> None:
        """Zero the scale."""
        ...

    async def span(self, mass_mg: int) -> None:
        """Span-calibrate the scale with a reference mass of ``mass_mg`` on it."""
        ...

    def events(self) -> EventStream[FillerStatus]:
        """Every change the poller sees, from now until the link closes."""
        ...


# -- label printers ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    """What a label printer says of itself (ZPL ``~HS``)."""

    paper_out: bool
    paused: bool
    head_open: bool
    ribbon_out: bool
    formats_waiting: int
    """Label formats received but not printed yet."""
    buffer_full: bool

    @property
    def ready(self) -> bool:
        """Nothing stops it printing."""
        return not (self.paper_out or self.paused or self.head_open or self.ribbon_out
                    or self.buffer_full)

    @property
    def problem(self) -> str | None:
        """What stops it, in words, or None."""
        words = [word for flag, word in ((self.paper_out, "out of labels"),
                                         (self.head_open, "print head open"),
                                         (self.ribbon_out, "out of ribbon"),
                                         (self.paused, "paused"),
                                         (self.buffer_full, "receive buffer full")) if flag]
        return ", ".join(words) or None


@runtime_checkable
class LabelPrinter(Device, Protocol):
    """A thermal label printer: it is handed a label's layout and prints it in its language."""

    async def status(self) -> PrinterStatus:
        """The printer's state now."""
        ...

    def render(self, layout: Layout) -> str:
        """``layout`` in the printer's own language, as :meth:`print_label` sends it."""
        ...

    async def print_label(self, layout: Layout) -> None:
        """Print ``layout``. PrinterNotReady, with the reason, when the printer cannot print
        it now; then nothing was sent."""
        ...
