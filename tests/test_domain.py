"""Pure rules: NDCs, the formulary, the weight check, order transitions."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.domain.drugs import FormularyError, parse_formulary
from controller.domain.fills import OUTCOMES, PARTIAL_OUTCOMES, problem_of
from controller.domain.ndc import NdcError, parse_ndc
from controller.domain.orders import (
    TRANSITIONS,
    FillOutcome,
    Order,
    OrderState,
    Patient,
    TransitionError,
    check_transition,
    order_problems,
)
from controller.domain.recovery import rule_for
from controller.domain.weight import WeightVerdict, check_weight
from tests.helpers import FORMULARY


@pytest.mark.parametrize("text", ["00093-7146-01", "00093714601", " 00093-7146-01 "])
def test_ndc_is_normalised_to_dashed_5_4_2(text: str) -> None:
    assert parse_ndc(text) == "00093-7146-01"


@pytest.mark.parametrize(
    "text", ["0093-7146-01", "00093-714-601", "0009371460", "abcde-fghi-jk", ""]
)
def test_ndc_of_another_shape_is_refused(text: str) -> None:
    with pytest.raises(NdcError, match="5-4-2"):
        parse_ndc(text)


@given(st.text(max_size=20))
def test_parse_ndc_raises_only_ndc_error(text: str) -> None:
    try:
        value = parse_ndc(text)
    except NdcError:
        return
    assert len(value) == 13 and value[5] == value[10] == "-"


def test_sample_formulary_has_tall_man_names_and_descriptions() -> None:
    formulary = parse_formulary(FORMULARY.read_text())
    glipizide = formulary["00378-0215-01"]
    assert glipizide.display_name == "glipiZIDE 5 mg tablet"
    assert glipizide.description == "white round, imprint GZ-5"
    assert formulary["00406-0552-01"].dea_schedule == "II"
    assert "AVOID_GRAPEFRUIT" in formulary["00093-7146-01"].auxiliary_labels


def test_formulary_with_a_missing_column_is_refused() -> None:
    with pytest.raises(FormularyError, match=r"lacks column.*imprint"):
        parse_formulary("ndc,generic_name\n00093-7146-01,x\n")


def test_formulary_with_a_bad_schedule_is_refused() -> None:
    text = FORMULARY.read_text().replace(",II,oxyCODONE", ",VI,oxyCODONE")
    with pytest.raises(FormularyError, match="dea_schedule: 'VI'"):
        parse_formulary(text)


def test_weight_of_the_right_count_agrees() -> None:
    result = check_weight(count=30, measured_mg=30 * 155 + 20, unit_mass_mg=155, spread_pct=1.8,
                          scale_noise_mg=1.0)
    assert result.verdict is WeightVerdict.AGREES
    assert result.implied_count == pytest.approx(30.13, abs=0.01)


@pytest.mark.parametrize("off_by", [-1, 1])
def test_weight_one_tablet_off_disagrees(off_by: int) -> None:
    result = check_weight(count=30, measured_mg=(30 + off_by) * 155, unit_mass_mg=155,
                          spread_pct=1.8, scale_noise_mg=1.0)
    assert result.verdict is WeightVerdict.DISAGREES


def test_weight_that_cannot_tell_n_from_n_plus_one_says_so() -> None:
    result = check_weight(count=90, measured_mg=90 * 130, unit_mass_mg=130, spread_pct=2.5,
                          scale_noise_mg=1.0)
    assert result.verdict is WeightVerdict.CANNOT_TELL
    assert result.tolerance_mg >= 65


def test_a_grossly_wrong_weight_disagrees_even_where_n_is_uncertain() -> None:
    result = check_weight(count=90, measured_mg=45 * 130, unit_mass_mg=130, spread_pct=2.5,
                          scale_noise_mg=1.0)
    assert result.verdict is WeightVerdict.DISAGREES


@given(st.integers(1, 500), st.floats(50, 1000), st.floats(0.5, 5), st.floats(0.01, 5))
def test_exact_weight_never_disagrees(count: int, mass: float, spread: float, noise: float) -> None:
    result = check_weight(count=count, measured_mg=count * mass, unit_mass_mg=mass,
                          spread_pct=spread, scale_noise_mg=noise)
    assert result.verdict is not WeightVerdict.DISAGREES


def test_order_for_an_unknown_ndc_has_a_problem() -> None:
    formulary = parse_formulary(FORMULARY.read_text())
    order = Order("RX1", Patient("P1", "A B", date(1970, 1, 1)), "99999-9999-99", 10)
    assert order_problems(order, formulary) == ["NDC 99999-9999-99 is not in the formulary"]


def test_a_filled_order_only_moves_on_to_its_label_or_is_cancelled() -> None:
    with pytest.raises(TransitionError,
                       match="filled cannot move to queued; allowed: cancelled, labeled"):
        check_transition(OrderState.FILLED, OrderState.QUEUED)
    with pytest.raises(TransitionError, match="released cannot move to cancelled"):
        check_transition(OrderState.RELEASED, OrderState.CANCELLED)


@given(st.lists(st.sampled_from(list(OrderState)), max_size=12))
def test_no_path_reaches_filled_but_from_a_robot_or_an_exception(
        path: list[OrderState]) -> None:
    # From an exception only by a person's hand count (workflow.py decides who may, and
    # the store checks the count's weight): tests/test_workflow.py.
    state = OrderState.RECEIVED
    visited = [state]
    for target in path:
        if target in TRANSITIONS[state]:
            check_transition(state, target)
            state = target
            visited.append(state)
    if OrderState.FILLED in visited:
        assert visited[visited.index(OrderState.FILLED) - 1] in (OrderState.DISPENSING,
                                                                 OrderState.EXCEPTION)


def test_backoff_grows_with_jitter_up_to_its_cap_and_resets() -> None:
    import random

    from controller.backoff import Backoff

    backoff = Backoff(base=0.2, cap=2.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(8)]
    ceilings = [min(2.0, 0.2 * 2**n) for n in range(8)]
    assert all(0.1 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert max(delays[4:]) > 0.4  # it grew
    assert len(set(delays)) == len(delays)  # jittered
    backoff.reset()
    assert backoff.next_delay() <= 0.2


def test_vial_size_is_the_smallest_that_holds_the_tablets_with_headroom() -> None:
    from controller.domain.vials import cap_for, vial_for

    assert vial_for(30, 128) == 6        # 8 000 mm³ needed, 2.2 drams: the smallest vial
    assert vial_for(90, 480) == 30       # 90 000 mm³, 24.3 drams: not 20, so 30
    assert vial_for(300, 470) is None    # 293 750 mm³, 79.5 drams: more than 60
    assert cap_for(False) == "child_resistant" and cap_for(True) == "easy_open"


def test_the_recovery_table_covers_every_problem_once() -> None:
    from controller.domain.recovery import RULES, Problem, rules_markdown

    table = rules_markdown().splitlines()
    assert set(RULES) == set(Problem)
    assert len(table) == 2 + len(Problem)
    assert all(any(f"| {p} |" in line for line in table) for p in Problem)


def test_a_weight_that_is_not_a_number_never_agrees() -> None:
    from controller.domain.weight import check_weight
    for measured in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ValueError, match="expected a finite weight"):
            check_weight(count=30, measured_mg=measured, unit_mass_mg=155, spread_pct=1.8,
                         scale_noise_mg=5)


def test_every_fill_outcome_is_in_the_one_outcome_table() -> None:
    assert set(OUTCOMES) == set(FillOutcome)
    stopped = {FillOutcome.JAM, FillOutcome.RAN_EMPTY, FillOutcome.NO_VIAL,
               FillOutcome.DOOR_OPENED, FillOutcome.CAP_FAULT, FillOutcome.SCALE_FAULT,
               FillOutcome.SAFE, FillOutcome.ABORTED}
    assert stopped == PARTIAL_OUTCOMES
    # Each problem the recovery table knows for an outcome has a rule; partial outcomes stop
    # a count, and say how.
    for outcome, facts in OUTCOMES.items():
        if facts.problem is not None:
            assert rule_for(facts.problem) is not None, outcome
        assert (facts.words is not None) == facts.partial, outcome
    assert problem_of(FillOutcome.FILLED) is None
