"""The weight check: does the vial's net mass agree with the count?

Each tablet's mass varies around the drug's unit mass with a standard
deviation of ``spread_pct`` percent; the scale adds its own noise. The sum of
``n`` tablets then has a standard deviation of ``sqrt(n·(m·s)² + σ²)``. The
check accepts a weight within ``Z`` of those deviations of ``n × m``. When
that band is so wide that ``n − 1`` or ``n + 1`` tablets would also fall
inside it, the scale cannot tell them apart: the verdict says so, and a
person must count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

Z = 3.0
"""Half-width of the acceptance band, in standard deviations."""


class WeightVerdict(StrEnum):
    """What the weight says of the count."""

    AGREES = "agrees"
    DISAGREES = "disagrees"
    CANNOT_TELL = "cannot_tell"
    """The scale cannot tell n from n ± 1 for this drug and quantity."""


@dataclass(frozen=True, slots=True)
class WeightCheck:
    """The evidence a pharmacist sees: expected and measured mass, band, verdict."""

    count: int
    expected_mg: float
    measured_mg: float
    tolerance_mg: float
    verdict: WeightVerdict

    @property
    def implied_count(self) -> float:
        """The number of tablets the measured mass suggests."""
        return self.measured_mg / (self.expected_mg / self.count) if self.count else 0.0


def check_weight(
    *, count: int, measured_mg: float, unit_mass_mg: float, spread_pct: float,
    scale_noise_mg: float,
) -> WeightCheck:
    """Compare ``measured_mg`` with ``count`` × ``unit_mass_mg``.

    Every input must be a finite number, and all but the measured weight above 0 (a weight
    may be 0 mg): NaN compares false with everything, so a NaN anywhere would make every
    weight agree. ValueError says which input was wrong.
    """
    if count < 0:
        raise ValueError(f"count {count}: expected 0 tablets or more")
    for name, value in (("unit mass", unit_mass_mg), ("spread", spread_pct),
                        ("scale noise", scale_noise_mg)):
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} {value}: expected a finite number above 0")
    if not math.isfinite(measured_mg) or measured_mg < 0:
        raise ValueError(f"measured weight {measured_mg} mg: expected a finite weight of "
                         f"0 mg or more")
    expected = count * unit_mass_mg
    # hypot, not the square root of a sum of squares: no overflow however large the inputs.
    sigma = math.hypot(math.sqrt(count) * unit_mass_mg * spread_pct / 100, scale_noise_mg)
    tolerance = Z * sigma
    if abs(measured_mg - expected) > tolerance:
        verdict = WeightVerdict.DISAGREES
    elif tolerance >= unit_mass_mg / 2:
        verdict = WeightVerdict.CANNOT_TELL  # n - 1 and n + 1 would agree as well
    else:
        verdict = WeightVerdict.AGREES
    return WeightCheck(count, expected, measured_mg, tolerance, verdict)
