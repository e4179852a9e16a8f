"""Judging a finished count: the outcome a fill records and the words that explain it."""

from __future__ import annotations

from controller.domain.drugs import Drug
from controller.domain.orders import FillOutcome
from controller.domain.weight import WeightCheck, WeightVerdict, check_weight

_STOPPED_WORDS = {
    FillOutcome.JAM: "jammed", FillOutcome.RAN_EMPTY: "ran empty",
    FillOutcome.NO_VIAL: "no vial of that size", FillOutcome.DOOR_OPENED: "door opened",
    FillOutcome.CAP_FAULT: "cap fault", FillOutcome.SCALE_FAULT: "scale fault",
    FillOutcome.SAFE: "stopped safe (heartbeat lost or emergency stop)",
    FillOutcome.ABORTED: "aborted",
}


def judge_fill(
    *, stopped: FillOutcome | None, quantity: int, count: int, weight_mg: int, drug: Drug,
    scale_noise_mg: float,
) -> tuple[FillOutcome, WeightCheck | None, str]:
    """The outcome of a count, its weight check and a one-line reason.

    ``stopped`` is why the robot stopped early (jam, ran empty, aborted), or
    None when it reported the count complete.
    """
    if stopped is not None:
        what = _STOPPED_WORDS.get(stopped, "count stopped")
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
