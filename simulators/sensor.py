"""A counting sensor as a real one behaves, well tuned or not.

A beam-break sensor counts a tablet when its shadow is deep enough (the sensitivity) for long
enough (a counter's gate). Each drug's tablets have settings that suit them (``Tuning``); near
them the sensor counts every tablet once. The two settings act together, as one threshold:

- too demanding (sensitivity too low, gate too long): a tablet's shadow does not trip it, and
  the tablet is *missed*;
- too eager (sensitivity too high, gate too short): chips, dust and a tumbling tablet's two
  edges trip it, and a tablet is *seen twice*.

The further the threshold is from the tablets' ideal, the more it errs. A device that counts
to a quantity stops at its count, so misses put more tablets in the chute than it says and
doubles put fewer: the scale is the check, as the ICDs say.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

BAND = 4.0
"""How far (in sensitivity steps) the threshold may be from the ideal before it errs."""
ERROR_PER_STEP = 0.008
"""The chance per tablet of an error, for each step beyond the band."""
STEPS_PER_GATE_PCT = 0.2
"""A gate 10 % too long demands as much as a sensitivity 2 steps too low."""
MOST = 0.45
"""However badly tuned, the sensor still sees most tablets once."""


@dataclass(frozen=True, slots=True)
class Tuning:
    """The settings that suit a drug's tablets in this sensor."""

    sensitivity: int
    gate_ms: int | None = None
    """A counter's gate; a filler's cell has none."""


@dataclass(frozen=True, slots=True)
class ErrorRates:
    """The chance, per tablet, that it is missed or seen twice."""

    miss: float
    double: float


def error_rates(ideal: Tuning, sensitivity: int, gate_ms: int | None = None) -> ErrorRates:
    """How a sensor set to ``sensitivity`` (and ``gate_ms``) errs on tablets that suit
    ``ideal``."""
    eager = float(sensitivity - ideal.sensitivity)
    if ideal.gate_ms and gate_ms:
        eager -= STEPS_PER_GATE_PCT * 100.0 * (gate_ms - ideal.gate_ms) / ideal.gate_ms
    miss = ERROR_PER_STEP * max(0.0, -eager - BAND)
    double = ERROR_PER_STEP * max(0.0, eager - BAND)
    return ErrorRates(min(MOST, miss), min(MOST, double))


def counts_for_one(rates: ErrorRates, rng: random.Random) -> int:
    """What the sensor counts for one tablet falling past it: 0, 1 or 2."""
    draw = rng.random()
    if draw < rates.miss:
        return 0
    if draw < rates.miss + rates.double:
        return 2
    return 1
