"""After the fill: labels, witness, verification, release — by the right people, in order."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.domain.orders import OrderState
from controller.domain.roles import Person, Role, WorkflowError
from controller.domain.workflow import Action, Dossier, Step, advance, filled
from tests.helpers import BOTH, PHARM, TECH

PHARM2 = Person("petra", frozenset({Role.PHARMACIST}))
ADMIN = Person("ada", frozenset({Role.ADMIN}))
PEOPLE = [TECH, PHARM, PHARM2, BOTH, ADMIN]


def at_filled(schedule: str | None = None) -> Dossier:
    return filled(Dossier(OrderState.DISPENSING, schedule))


def test_the_plain_path_label_verify_release() -> None:
    d = advance(at_filled(), Step(Action.LABEL, TECH))
    d = advance(d, Step(Action.VERIFY, PHARM))
    d = advance(d, Step(Action.RELEASE, PHARM))
    assert (d.state, d.verified_by, d.handled_by) == (OrderState.RELEASED, "phil",
                                                       frozenset({"tess"}))


def test_whoever_labelled_may_not_verify_even_a_pharmacist() -> None:
    d = advance(at_filled(), Step(Action.LABEL, BOTH))
    with pytest.raises(WorkflowError, match="bo filled, counted or labelled this vial"):
        advance(d, Step(Action.VERIFY, BOTH))
    assert advance(d, Step(Action.VERIFY, PHARM)).state is OrderState.VERIFIED


def test_roles_are_needed_and_named() -> None:
    with pytest.raises(WorkflowError, match="ada may not label: it needs the technician role"):
        advance(at_filled(), Step(Action.LABEL, ADMIN))
    d = advance(at_filled(), Step(Action.LABEL, TECH))
    with pytest.raises(WorkflowError, match="tess may not verify: it needs the pharmacist"):
        advance(d, Step(Action.VERIFY, TECH))


def test_a_rejection_needs_a_reason_and_starts_the_fill_over() -> None:
    d = advance(at_filled(), Step(Action.LABEL, TECH))
    with pytest.raises(WorkflowError, match="needs a reason"):
        advance(d, Step(Action.REJECT, PHARM, reason=" ", tablets="wasted"))
    with pytest.raises(WorkflowError, match="what became of the vial's tablets"):
        advance(d, Step(Action.REJECT, PHARM, reason="wrong cap"))
    again = advance(d, Step(Action.REJECT, PHARM, reason="wrong cap", tablets="returned"))
    assert again == Dossier(OrderState.QUEUED, None)
    gone = advance(d, Step(Action.REJECT, PHARM, reason="patient cancelled", requeue=False,
                           tablets="wasted"))
    assert gone.state is OrderState.CANCELLED


def test_schedule_two_needs_a_witnessed_count_before_release() -> None:
    d = advance(at_filled("II"), Step(Action.LABEL, TECH))
    d = advance(d, Step(Action.VERIFY, PHARM))
    with pytest.raises(WorkflowError, match="schedule II drug needs its second count"):
        advance(d, Step(Action.RELEASE, PHARM))
    with pytest.raises(WorkflowError, match="phil verified this vial and may not witness"):
        advance(d, Step(Action.WITNESS, PHARM))
    d = advance(d, Step(Action.WITNESS, PHARM2))
    assert advance(d, Step(Action.RELEASE, PHARM)).state is OrderState.RELEASED


def test_the_witness_never_verifies_either() -> None:
    d = advance(at_filled("II"), Step(Action.LABEL, TECH))
    d = advance(d, Step(Action.WITNESS, PHARM))
    with pytest.raises(WorkflowError, match="phil witnessed this vial's count"):
        advance(d, Step(Action.VERIFY, PHARM))
    assert advance(d, Step(Action.VERIFY, PHARM2)).state is OrderState.VERIFIED


@pytest.mark.parametrize("state", [OrderState.FILLED, OrderState.LABELED, OrderState.VERIFIED])
def test_only_a_pharmacist_cancels_an_order_with_a_filled_vial_saying_where_it_went(
        state: OrderState) -> None:
    d = Dossier(state, "II", labelled_by="tess")
    with pytest.raises(WorkflowError, match="tess may not cancel an order whose vial is"):
        advance(d, Step(Action.CANCEL, TECH, reason="patient moved", tablets="returned"))
    with pytest.raises(WorkflowError, match="what became of the vial's tablets"):
        advance(d, Step(Action.CANCEL, PHARM, reason="patient moved"))
    with pytest.raises(WorkflowError, match="bo filled, counted or labelled this vial"):
        advance(Dossier(state, None, labelled_by="bo"),
                Step(Action.CANCEL, BOTH, reason="patient moved", tablets="wasted"))
    done = advance(d, Step(Action.CANCEL, PHARM, reason="patient moved", tablets="returned"))
    assert done.state is OrderState.CANCELLED
    # Before any vial, a technician may still cancel (with a reason).
    assert advance(Dossier(OrderState.EXCEPTION, None), Step(
        Action.CANCEL, TECH, reason="patient moved")).state is OrderState.CANCELLED


# Someone with both roles twice as often: the one who could break the separation of duties.
STEPS = st.builds(Step, st.sampled_from(list(Action)), st.sampled_from([*PEOPLE, BOTH]),
                  st.sampled_from([None, "", "wrong count"]), st.booleans(),
                  st.sampled_from([None, "returned", "wasted", "kept"]))


@settings(max_examples=1000)
@given(st.sampled_from([None, "II", "IV"]), st.booleans(), st.lists(STEPS, max_size=20))
def test_no_sequence_releases_without_fill_label_verify_by_the_right_people(
        schedule: str | None, by_hand: bool, steps: list[Step]) -> None:
    # From a robot's fill, or from an exception a person may count by hand.
    dossier = Dossier(OrderState.EXCEPTION, schedule) if by_hand else at_filled(schedule)
    trail: list[tuple[Action, Person]] = []
    for step in steps:
        before = dossier
        try:
            dossier = advance(dossier, step)
        except WorkflowError:
            continue
        trail.append((step.action, step.person))
        if dossier.state is OrderState.CANCELLED and before.state in (
                OrderState.FILLED, OrderState.LABELED, OrderState.VERIFIED):
            # A filled vial left the workflow: only through a pharmacist who did not handle
            # it, and with its tablets accounted for.
            assert Role.PHARMACIST in step.person.roles
            assert step.person.name not in before.handled_by
            assert step.tablets in ("returned", "wasted")
            break
        if dossier.state is OrderState.QUEUED:
            # Rejected or retried: a robot fills it again; a fresh dossier as it would give.
            dossier, trail = filled(Dossier(OrderState.DISPENSING, schedule)), []
            by_hand = False
        if dossier.state is OrderState.RELEASED:
            actions = [a for a, _ in trail]
            counters = {p.name for a, p in trail if a is Action.HAND_COUNT}
            assert not by_hand or counters, "released from an exception nobody counted"
            label, verify = actions.index(Action.LABEL), actions.index(Action.VERIFY)
            assert label < verify < actions.index(Action.RELEASE)
            labeller, verifier = trail[label][1], trail[verify][1]
            assert Role.TECHNICIAN in labeller.roles and Role.PHARMACIST in verifier.roles
            assert verifier.name != labeller.name and verifier.name not in counters
            releasers = [p for a, p in trail if a is Action.RELEASE]
            assert all(Role.PHARMACIST in p.roles and p.name != labeller.name
                       and p.name not in counters for p in releasers)
            if schedule == "II":
                witnesses = [p for a, p in trail if a is Action.WITNESS]
                assert witnesses and all(w.name not in (labeller.name, verifier.name)
                                         and w.name not in counters for w in witnesses)
            break
