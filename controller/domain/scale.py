"""A scale's calibration: what a reference mass must read as, and when a check passes.

A scale is tared empty, spanned on a reference mass, then checked on a second mass: the
check passes when it reads within its tolerance, three times the scale's noise or 0.2 %
of the mass, whichever is more (a noise of 1 mg on a 5 g mass: 10 mg).
"""

from __future__ import annotations

from dataclasses import dataclass

RELATIVE_TOLERANCE = 0.002
"""A check may be off by 0.2 % of its mass (OIML R76's class II, roughly, at these loads)."""
NOISE_SIGMAS = 3.0


class ScaleRefused(ValueError):
    """A calibration that cannot be done as asked; says why."""


@dataclass(frozen=True, slots=True)
class ScaleCheck:
    """One mass weighed against what it is."""

    mass_mg: int
    read_mg: int
    tolerance_mg: float

    @property
    def error_mg(self) -> int:
        """How far the reading is from the mass."""
        return self.read_mg - self.mass_mg

    @property
    def passed(self) -> bool:
        """The reading is within the tolerance."""
        return abs(self.error_mg) <= self.tolerance_mg


def tolerance_mg(mass_mg: int, noise_mg: float) -> float:
    """How far a reading of ``mass_mg`` may be off on a scale whose noise is ``noise_mg``."""
    return max(NOISE_SIGMAS * noise_mg, RELATIVE_TOLERANCE * mass_mg)


def check(mass_mg: int, read_mg: int, noise_mg: float) -> ScaleCheck:
    """Judge a reading of a known mass."""
    return ScaleCheck(mass_mg, read_mg, tolerance_mg(mass_mg, noise_mg))


def masses(reference_mg: int, check_mg: int | None) -> tuple[int, int]:
    """The reference and check masses (the check: half the reference unless given);
    ScaleRefused unless both are positive and differ."""
    second = check_mg if check_mg is not None else reference_mg // 2
    if reference_mg <= 0 or second <= 0:
        raise ScaleRefused(f"masses {reference_mg} mg and {second} mg: expected positive "
                           f"masses in mg")
    if second == reference_mg:
        raise ScaleRefused("the check mass must differ from the reference mass: a check "
                           "on the same mass proves nothing about the span")
    return reference_mg, second
