"""The simulated counter's parts: its channels, the jobs it remembers, the faults injected
into it."""

from __future__ import annotations

from dataclasses import dataclass, field

from drivers.tablet_counter.protocol import JobState
from simulators.sensor import Tuning


@dataclass
class SimChannel:
    """One canister: its drug's tablets, sensor calibration and tablet mass."""

    number: int
    stock: int = 500
    sensitivity: int = 50
    gate_ms: int = 40
    unit_mass_mg: float = 250.0
    spread_pct: float = 2.0
    ideal: Tuning | None = None
    """The settings that suit this channel's tablets (default: those it starts with, a
    machine tuned for its drug); the further from them, the more the sensor miscounts."""

    def __post_init__(self) -> None:
        if self.ideal is None:
            self.ideal = (Tuning(self.sensitivity, self.gate_ms) if self.sensitivity
                          else Tuning(50, 40))


@dataclass
class SimJob:
    """A job the device remembers."""

    job: str
    channel: int
    quantity: int
    state: JobState = JobState.COUNTING
    count: int = 0
    """What the sensor counted (what the device reports)."""
    tablets: int = 0
    """What truly fell into the chute."""
    mass_mg: float = 0.0
    weight_mg: int = 0


@dataclass
class Faults:
    """Faults a test or a person injects; each is consumed when it fires."""

    jam_after: int | None = None
    """The next or running job jams once this many tablets fell."""
    miscount: int = 0
    """The next job's sensor count runs ahead (>0) or behind (<0) the true tablets."""
    drop_replies: int = 0
    garble_replies: int = 0
    log: list[str] = field(default_factory=list)
    """Every fault that fired, in order."""
