"""Guided calibration of a counting channel (a filler's cell), as rules.

Count a reference sample of the bin's drug, weigh it, and take weight ÷ the drug's unit mass
as the tablets truly counted. A count behind them means the sensor misses tablets (raise its
sensitivity, shorten a counter's gate); ahead of them, that it sees some twice (lower it,
lengthen the gate). Adjust in proportion and count again, until ``agree`` runs in a row at
the same settings are each within tolerance: those settings are the proposal. Runs that
never settle propose nothing, and say why.
"""

from __future__ import annotations

from dataclasses import dataclass

SENSITIVITY = range(1, 101)
GATE_MS = range(1, 501)
STEPS_PER_PCT = 1.0
"""Sensitivity steps for each percent the count is off."""
GATE_SHARE = 0.5
"""The gate moves by this share of the count's error (10 % of misses: 5 % shorter)."""
LARGEST_STEP = 15


@dataclass(frozen=True, slots=True)
class Setting:
    """What a sensor is set to: a sensitivity and (a counter's) gate."""

    sensitivity: int
    gate_ms: int | None = None

    def __str__(self) -> str:
        gate = f", gate {self.gate_ms} ms" if self.gate_ms is not None else ""
        return f"sensitivity {self.sensitivity}{gate}"

    def as_dict(self) -> dict[str, int]:
        made = {"sensitivity": self.sensitivity}
        if self.gate_ms is not None:
            made["gate_ms"] = self.gate_ms
        return made


@dataclass(frozen=True, slots=True)
class Plan:
    """How a guided calibration runs."""

    sample: int = 100
    """Tablets counted in each run."""
    agree: int = 3
    """Runs in a row, at the same settings, each within tolerance."""
    most_runs: int = 12
    tolerance_pct: float = 1.0
    """How far a run's count may be from its weight (at least one tablet)."""

    def __post_init__(self) -> None:
        if not 10 <= self.sample <= 9999:
            raise ValueError(f"a reference sample is 10-9999 tablets, not {self.sample}")
        if not 2 <= self.agree <= self.most_runs:
            raise ValueError(f"runs that must agree: 2 to the most runs ({self.most_runs}), "
                             f"not {self.agree}")
        if not 0 < self.tolerance_pct <= 5:
            raise ValueError(f"tolerance: above 0 and at most 5 %, not {self.tolerance_pct}")

    @property
    def tolerance(self) -> int:
        """Tablets a run's count may be off by."""
        return max(1, int(self.sample * self.tolerance_pct / 100))


@dataclass(frozen=True, slots=True)
class Run:
    """One reference count: what the sensor counted and what the scale weighed."""

    setting: Setting
    counted: int
    weight_mg: int
    unit_mass_mg: float

    @property
    def weighed(self) -> int:
        """The tablets the scale says fell: weight ÷ unit mass."""
        return round(self.weight_mg / self.unit_mass_mg)

    @property
    def error(self) -> int:
        """Counted minus weighed: below zero the sensor missed tablets, above it saw some
        twice."""
        return self.counted - self.weighed

    @property
    def error_pct(self) -> float:
        return 100.0 * self.error / max(1, self.weighed)

    def as_dict(self) -> dict[str, object]:
        return {**self.setting.as_dict(), "counted": self.counted, "weight_mg": self.weight_mg,
                "weighed": self.weighed, "error": self.error}


@dataclass(frozen=True, slots=True)
class Decision:
    """After a run: count again at ``next`` (``None``: stop); ``proposal`` when the runs
    agreed; ``why`` when they never did."""

    next: Setting | None
    proposal: Setting | None = None
    why: str = ""


def within(run: Run, plan: Plan) -> bool:
    return abs(run.error) <= plan.tolerance


def agreeing(runs: list[Run], plan: Plan) -> int:
    """How many of the last runs, at the last run's settings, were each within tolerance."""
    streak = 0
    for run in reversed(runs):
        if run.setting != runs[-1].setting or not within(run, plan):
            break
        streak += 1
    return streak


def adjusted(run: Run, plan: Plan) -> Setting:
    """Settings for the next run: unchanged while within tolerance, else moved in proportion
    to the error, against it."""
    if within(run, plan):
        return run.setting
    pct = run.error_pct
    step = max(1, min(LARGEST_STEP, round(abs(pct) * STEPS_PER_PCT)))
    sensitivity = _clamp(run.setting.sensitivity + (step if pct < 0 else -step), SENSITIVITY)
    gate = run.setting.gate_ms
    if gate is not None:
        moved = gate * (1 + GATE_SHARE * pct / 100)
        gate = _clamp(round(moved) if round(moved) != gate else gate + (1 if pct > 0 else -1),
                      GATE_MS)
    return Setting(sensitivity, gate)


def decide(runs: list[Run], plan: Plan) -> Decision:
    """What the runs so far call for: another run, a proposal, or giving up (and why)."""
    if not runs:
        raise ValueError("decide after a run, not before")
    if agreeing(runs, plan) >= plan.agree:
        return Decision(None, proposal=runs[-1].setting)
    if len(runs) >= plan.most_runs:
        errors = ", ".join(f"{r.error:+d}" for r in runs[-plan.agree * 2:])
        return Decision(None, why=(
            f"no proposal: {len(runs)} runs and never {plan.agree} in a row within "
            f"±{plan.tolerance} tablets (last errors {errors}); the count is not steady: "
            "look for dust or broken tablets in the sample, a worn sensor, or a scale out of "
            "span, then calibrate again"))
    return Decision(adjusted(runs[-1], plan))


def _clamp(value: int, allowed: range) -> int:
    return max(allowed.start, min(allowed.stop - 1, value))
