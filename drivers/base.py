"""The Protocols the controller sees, and the plain result types they return.

The controller never sees a vendor class: only these (the filler's result types are in
:mod:`drivers.filler_types`, event streams in :mod:`drivers.events`). A driver satisfies one
Protocol, opens and closes as an async context manager, and raises the types
in :mod:`drivers.errors`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

from drivers.events import EventStream
from drivers.filler_types import (
    CapType,
    CellCalibration,
    FillerIdentity,
    FillerStatus,
    VialReport,
)
from drivers.labels import Layout


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

    @property
    def stopped(self) -> bool:
        """Never: a counter's job that stops (jam, empty) is finished, its outcome says how."""
        return False


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


@runtime_checkable
class RegisterAccess(Protocol):
    """A device with registers a maintenance person may read and write by number (a Modbus
    vial filler's). Optional: a device that has none does not claim it."""

    name: str

    async def read_registers(self, table: str, start: int, count: int) -> list[int]:
        """``count`` registers from ``start`` of ``table``: ``hr`` holding, ``ir`` input."""

    async def write_register(self, address: int, value: int) -> None:
        """Write one holding register, then read it back (ProtocolError if it differs). The
        command register is never written this way: commands have their own calls."""
