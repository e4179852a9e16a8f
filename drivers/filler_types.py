"""What a vial filler's driver returns: its states, faults and reports, in the controller's
terms (the :class:`drivers.base.VialFiller` Protocol's result types)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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
