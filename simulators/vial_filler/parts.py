"""The simulated filler's parts: its cells, the faults injected into it, the job in it."""

from __future__ import annotations

from dataclasses import dataclass, field

from drivers.vial_filler.protocol import Cap
from simulators.sensor import Tuning


@dataclass
class SimCell:
    """One cell: its drug's tablets, counting sensitivity and tablet mass."""

    number: int
    stock: int = 500
    sensitivity: int = 50
    """CAL_SENS, 1–100; 0 is not calibrated."""
    unit_mass_mg: float = 250.0
    """The tablets' true mean mass (CAL_UNIT is what the host told the device)."""
    spread_pct: float = 2.0
    cal_unit_dmg: int = 0
    """CAL_UNIT, in 0.1 mg, as the host wrote it (0 until then)."""
    ideal: Tuning | None = None
    """The sensitivity that suits this cell's tablets (default: the one it starts with);
    the further from it, the more the cell's counter miscounts."""

    def __post_init__(self) -> None:
        if self.ideal is None:
            self.ideal = Tuning(self.sensitivity or 50)


@dataclass
class FillerFaults:
    """Faults a test or a person injects; each is consumed when it fires."""

    jam_after: int | None = None
    """The running or next job jams once this many tablets fell."""
    cap_fault: bool = False
    """The next vial's cap does not go on."""
    scale_fault: bool = False
    """The next weighing fails."""
    miscount: int = 0
    """The next job's counter runs ahead (>0) or behind (<0) the true tablets."""
    log: list[str] = field(default_factory=list)
    """Every fault that fired, in order."""


@dataclass
class SimJob:
    """The job in the machine."""

    job: int
    cell: int
    quantity: int
    vial: int
    cap: Cap
    count: int = 0
    """What the counter counted (what the device reports)."""
    tablets: int = 0
    """What truly fell into the vial."""
    mass_mg: float = 0.0
