"""Judging a finished count: the outcome a fill records and the words that explain it."""

from __future__ import annotations

from dataclasses import dataclass

from controller.domain.drugs import Drug
from controller.domain.orders import FillOutcome
from controller.domain.recovery import Problem
from controller.domain.weight import WeightCheck, WeightVerdict, check_weight


@dataclass(frozen=True, slots=True)
class OutcomeFacts:
    """What one outcome of a fill means."""

    problem: Problem | None
    """Its name in the recovery table (``domain/recovery.py``); None when nothing went wrong,
    or when the robot refused (the refusal's error names the problem then)."""
    words: str | None = None
    """How a count that stopped this way is told (None: the robot did not stop it)."""
    partial: bool = False
    """It leaves a vial or a chute of tablets that is not the order's: set aside."""


OUTCOMES: dict[FillOutcome, OutcomeFacts] = {
    FillOutcome.FILLED: OutcomeFacts(None),
    FillOutcome.WEIGHT_OFF: OutcomeFacts(Problem.WEIGHT_OFF),
    FillOutcome.COUNT_BY_HAND: OutcomeFacts(Problem.COUNT_BY_HAND),
    FillOutcome.JAM: OutcomeFacts(Problem.JAM, "jammed", partial=True),
    FillOutcome.RAN_EMPTY: OutcomeFacts(Problem.RAN_EMPTY, "ran empty", partial=True),
    FillOutcome.NO_VIAL: OutcomeFacts(Problem.NO_VIAL, "no vial of that size", partial=True),
    FillOutcome.DOOR_OPENED: OutcomeFacts(Problem.DOOR_OPENED, "door opened", partial=True),
    FillOutcome.CAP_FAULT: OutcomeFacts(Problem.CAP_FAULT, "cap fault", partial=True),
    FillOutcome.SCALE_FAULT: OutcomeFacts(Problem.SCALE_FAULT, "scale fault", partial=True),
    FillOutcome.SAFE: OutcomeFacts(Problem.SAFE, "stopped safe (heartbeat lost or emergency "
                                                 "stop)", partial=True),
    FillOutcome.ABORTED: OutcomeFacts(Problem.ABORTED, "aborted", partial=True),
    FillOutcome.REFUSED: OutcomeFacts(None),
}
"""Every outcome of a fill, in one table: its problem, its words, whether it leaves tablets
to set aside."""

PARTIAL_OUTCOMES = frozenset(o for o, facts in OUTCOMES.items() if facts.partial)
"""Outcomes that leave a vial (or a chute) of tablets that is not the order's: set aside."""


def problem_of(outcome: FillOutcome) -> Problem | None:
    """The recovery table's name for ``outcome`` (None when nothing went wrong)."""
    return OUTCOMES[outcome].problem


def judge_fill(
    *, stopped: FillOutcome | None, quantity: int, count: int, weight_mg: int, drug: Drug,
    scale_noise_mg: float,
) -> tuple[FillOutcome, WeightCheck | None, str]:
    """The outcome of a count, its weight check and a one-line reason.

    ``stopped`` is why the robot stopped early (jam, ran empty, aborted), or
    None when it reported the count complete.
    """
    if stopped is not None:
        what = OUTCOMES[stopped].words or "count stopped"
        return stopped, None, f"{what} after {count} of {quantity}; set the partial vial aside"
    if count != quantity:
        return (FillOutcome.COUNT_BY_HAND, None,
                f"robot reported the count done with {count} of {quantity}; count by hand")
    check = check_weight(count=count, measured_mg=weight_mg, unit_mass_mg=drug.unit_mass_mg,
                         spread_pct=drug.unit_mass_spread_pct, scale_noise_mg=scale_noise_mg)
    band = f"{weight_mg} mg against {check.expected_mg:.0f} ± {check.tolerance_mg:.0f} mg"
    if check.verdict is WeightVerdict.AGREES:
        return FillOutcome.FILLED, check, f"counted {count}; {band}: weight agrees"
    if check.verdict is WeightVerdict.CANNOT_TELL:
        return (FillOutcome.COUNT_BY_HAND, check,
                f"counted {count}; {band}: the scale cannot tell {count - 1}, {count} and "
                f"{count + 1} apart; count by hand")
    return (FillOutcome.WEIGHT_OFF, check,
            f"counted {count} but {band} (about {check.implied_count:.1f} tablets): "
            f"weight disagrees; count by hand")
