"""After the fill, in the store: label scanned onto the right vial, witnessed count, the
pharmacist's verification, rejection and release, each by the right person."""

from __future__ import annotations

from dataclasses import replace

import pytest

from controller.domain.orders import FillOutcome, OrderState
from controller.domain.roles import Person, Role, WorkflowError
from controller.domain.weight import WeightCheck, check_weight
from controller.store import FillResult, Store
from controller.store.records import fill_code
from controller.store.verification import parse_fill_code
from tests.floors import ATORVASTATIN, order
from tests.helpers import BOTH, PHARM, TECH, tech
from tests.sites import OXYCODONE
from tests.test_stock import BIN

PAM = Person("pam", frozenset({Role.PHARMACIST}))


async def robot_fill(store: Store, quantity: int, result: FillResult,
                     ndc: str = ATORVASTATIN) -> tuple[int, int, int]:
    """An order a robot filled from a bin of ``ndc`` (BIN's drug and stock), ending as
    ``result``: (order id, fill id, bin id)."""
    await store.stock.ensure_bins([replace(BIN, bin=2, ndc=ndc) if ndc != BIN.ndc else BIN])
    bin_record = next(b for b in await store.stock.bins() if b.ndc == ndc)
    received, _ = await store.orders.receive_order(order(ndc, quantity))
    await store.orders.move_order(received.id, OrderState.QUEUED)
    fill = await store.orders.start_fill(received.id, bin_record.id)
    await store.orders.finish_fill(fill.id, result)
    return received.id, fill.id, bin_record.id


async def filled_order(store: Store, quantity: int = 30,
                       ndc: str = ATORVASTATIN) -> tuple[int, int]:
    """An order whose vial a robot filled: (order id, fill id)."""
    order_id, fill_id, _ = await robot_fill(
        store, quantity, FillResult(FillOutcome.FILLED, quantity, None, None, "ok"), ndc)
    return order_id, fill_id


def test_label_codes_read_back() -> None:
    assert fill_code(123) == "F00000123" and parse_fill_code(" F00000123\r\n") == 123
    for bad in ("00000123", "F12a", "F\u0ed0\u0ed01"):
        with pytest.raises(WorkflowError, match="not an rxfill label"):
            parse_fill_code(bad)


async def test_the_whole_way_from_filled_to_released(store: Store) -> None:
    order_id, fill_id = await filled_order(store)
    with pytest.raises(WorkflowError, match="wrong label, nothing changed"):
        await store.verification.label_scanned(order_id, fill_code(fill_id + 1), TECH)
    assert await store.verification.label_scanned(order_id, fill_code(fill_id),
                                                  TECH) is OrderState.LABELED
    with pytest.raises(WorkflowError, match="tess may not verify"):
        await store.verification.verify_vial(fill_id, TECH)
    assert await store.verification.verify_vial(fill_id, PHARM) is OrderState.VERIFIED
    with pytest.raises(WorkflowError, match="expected pickup or shipping"):
        await store.verification.release_vial(fill_id, PHARM, "pickup bin B4")
    with pytest.raises(WorkflowError, match="order 1 is for pickup"):
        await store.verification.release_vial(fill_id, PHARM, "shipping", carrier="UPS",
                                               tracking="1Z999")
    assert await store.verification.release_vial(fill_id, PHARM, "pickup") is OrderState.RELEASED
    release = await store.verification.release(order_id)
    assert release is not None and (release.destination, release.fill_id,
                                    release.who) == ("pickup", fill_id, "phil")
    history = [(to, who) for _f, to, who, _r in await store.orders.order_history(order_id)]
    assert history[-3:] == [("labeled", "tess"), ("verified", "phil"), ("released", "phil")]
    actions = [(e.who, e.action) for e in await store.audit.audit_trail()]
    assert ("phil", "order released") in actions and await store.audit.verify_audit() == []


async def test_who_labelled_never_verifies(store: Store) -> None:
    order_id, fill_id = await filled_order(store)
    await store.verification.label_scanned(order_id, fill_code(fill_id), BOTH)
    with pytest.raises(WorkflowError, match="bo filled, counted or labelled this vial"):
        await store.verification.verify_vial(fill_id, BOTH)
    assert (await store.orders.order(order_id)).state is OrderState.LABELED


async def test_a_rejected_vial_is_filled_again_by_new_hands(store: Store) -> None:
    order_id, fill_id = await filled_order(store)
    await store.verification.label_scanned(order_id, fill_code(fill_id), BOTH)
    (before,) = await store.stock.bins()
    with pytest.raises(WorkflowError, match="returned or wasted"):
        await store.verification.reject_vial(fill_id, PHARM, "cap", fill_again=True, tablets="kept")
    rejected = await store.verification.reject_vial(fill_id, PHARM, "cap not child-resistant",
                                                    fill_again=True, tablets="returned")
    assert rejected is OrderState.QUEUED
    (bin_record,) = await store.stock.bins()
    assert bin_record.on_hand == before.on_hand + 30  # the rejected vial's tablets are back
    (vial,) = await store.vials.set_aside_vials()
    assert (vial.fill_id, vial.disposition, vial.disposed_by) == (fill_id, "returned", "phil")
    again = await store.orders.start_fill(order_id, bin_record.id)
    await store.orders.finish_fill(again.id, FillResult(FillOutcome.FILLED, 30, None, None, "ok"))
    await store.verification.label_scanned(order_id, fill_code(again.id), TECH)
    # bo labelled the rejected vial, not this one: bo may verify this one.
    assert await store.verification.verify_vial(again.id, BOTH) is OrderState.VERIFIED


async def test_schedule_two_is_released_only_after_a_witnessed_count(store: Store) -> None:
    order_id, fill_id = await filled_order(store, 20, OXYCODONE)
    assert (await store.orders.order(order_id)).schedule == "II"  # recorded at intake
    await store.verification.label_scanned(order_id, fill_code(fill_id), TECH)
    await store.verification.verify_vial(fill_id, PHARM)
    with pytest.raises(WorkflowError, match="second count witnessed"):
        await store.verification.release_vial(fill_id, PHARM, "pickup")
    with pytest.raises(WorkflowError, match=r"second count \(19\) disagrees"):
        await store.verification.witness_count(fill_id, 19, PAM)
    with pytest.raises(WorkflowError, match="tess may not witness"):
        await store.verification.witness_count(fill_id, 20, TECH)
    with pytest.raises(WorkflowError, match="phil verified this vial and may not witness"):
        await store.verification.witness_count(fill_id, 20, PHARM)
    await store.verification.witness_count(fill_id, 20, PAM)
    assert await store.verification.release_vial(fill_id, PHARM, "pickup") is OrderState.RELEASED


async def test_a_rejected_vial_wasted_stays_off_the_bin_and_the_order_is_cancelled(
        store: Store) -> None:
    order_id, fill_id = await filled_order(store)
    await store.verification.label_scanned(order_id, fill_code(fill_id), TECH)
    (before,) = await store.stock.bins()
    cancelled = await store.verification.reject_vial(fill_id, PHARM, "dropped on the floor",
                                                     fill_again=False, tablets="wasted")
    assert cancelled is OrderState.CANCELLED
    (after,) = await store.stock.bins()
    assert after.on_hand == before.on_hand
    assert sum(m.quantity for m in await store.stock.movements(after.id)) == after.on_hand


async def exception_order(store: Store, quantity: int = 30) -> tuple[int, int]:
    """An order a robot jammed on: (order id, bin id)."""
    order_id, _, bin_id = await robot_fill(
        store, quantity, FillResult(FillOutcome.JAM, 7, None, None, "jam"))
    assert (await store.orders.order(order_id)).state is OrderState.EXCEPTION
    return order_id, bin_id


def weighed(count: int, measured_mg: float) -> WeightCheck:
    return check_weight(count=count, measured_mg=measured_mg, unit_mass_mg=155,
                        spread_pct=1.8, scale_noise_mg=5)


async def test_a_hand_count_must_agree_with_its_weight_and_its_counter_never_verifies(
        store: Store) -> None:
    order_id, bin_id = await exception_order(store)
    (before,) = await store.stock.bins()
    with pytest.raises(WorkflowError, match="count again"):
        await store.handwork.hand_fill(order_id, bin_id, 30, weighed(30, 29 * 155), TECH)
    with pytest.raises(WorkflowError, match="the order asks for 30; 29 were counted"):
        await store.handwork.hand_fill(order_id, bin_id, 29, weighed(29, 29 * 155), TECH)
    with pytest.raises(WorkflowError, match="may not hand_count"):
        await store.handwork.hand_fill(order_id, bin_id, 30, weighed(30, 30 * 155),
                                       Person("al", frozenset({Role.ADMIN})))
    assert (await store.stock.bin(before.robot, before.bin)).on_hand == before.on_hand
    assert await store.handwork.hand_fill(order_id, bin_id, 30, weighed(30, 30 * 155 + 20),
                                          BOTH) is OrderState.FILLED
    assert (await store.stock.bin(before.robot, before.bin)).on_hand == before.on_hand - 30
    hand = (await store.orders.fills(order_id))[-1]
    assert (hand.counted_by, hand.counted, hand.outcome) == ("bo", 30, FillOutcome.FILLED)
    await store.verification.label_scanned(order_id, fill_code(hand.id), TECH)
    with pytest.raises(WorkflowError, match="bo filled, counted or labelled"):
        await store.verification.verify_vial(hand.id, BOTH)
    assert await store.verification.verify_vial(hand.id, PHARM) is OrderState.VERIFIED


async def test_an_exception_is_retried_or_cancelled_with_a_reason(store: Store) -> None:
    order_id, _ = await exception_order(store)
    assert await store.handwork.retry_order(order_id, TECH) is OrderState.QUEUED
    with pytest.raises(WorkflowError, match="cannot retry"):
        await store.handwork.retry_order(order_id, TECH)
    with pytest.raises(WorkflowError, match="needs a reason"):
        await store.handwork.cancel_order(order_id, TECH, " ")
    cancelled = await store.handwork.cancel_order(order_id, TECH,
                                                  "patient called: no longer wanted")
    assert cancelled is OrderState.CANCELLED
    assert (await store.orders.order(order_id)).reason == "patient called: no longer wanted"


async def test_labels_and_reprints_are_counted(store: Store) -> None:
    _, fill_id = await filled_order(store)
    first = await store.verification.label_sent(fill_id, who="supervisor", printer="lp1",
                                                outcome="printed",
                                                reason=None)
    refused = await store.verification.label_sent(fill_id, who="tess", printer="lp1",
                                                  outcome="refused",
                                                  reason="paper out")
    again = await store.verification.label_sent(fill_id, who="tess", printer="lp1",
                                                outcome="printed",
                                                reason="smudged")
    assert (first.copy, refused.copy, again.copy) == (1, 2, 2)
    assert [label.outcome for label in await store.verification.labels_for(fill_id)] == [
        "printed", "refused", "printed"]
    assert [e.action for e in await store.audit.audit_trail()][-3:] == [
        "label printed", "label refused", "label reprinted"]


async def unconfirmed_vial(store: Store, outcome: FillOutcome) -> tuple[int, int]:
    """An order whose robot counted 30 into a vial the scale could not confirm."""
    order_id, fill_id, _ = await robot_fill(
        store, 30, FillResult(outcome, 30, 4340, None, "weight off"))
    return order_id, fill_id


@pytest.mark.parametrize("found", [28, 30, 32, 0])
async def test_a_vial_the_scale_could_not_confirm_is_recounted_not_filled_anew(
        store: Store, found: int) -> None:
    order_id, robot_fill = await unconfirmed_vial(store, FillOutcome.WEIGHT_OFF)
    (before,) = await store.stock.bins()  # the robot's 30 are off the record already
    with pytest.raises(WorkflowError, match="count the tablets in it"):
        await store.handwork.hand_fill(order_id, None, 30, weighed(30, 30 * 155), TECH)
    assert await store.handwork.hand_fill(order_id, None, 30, weighed(30, 30 * 155), TECH,
                                          found=found) is OrderState.FILLED
    (after,) = await store.stock.bins()
    # The robot had physically taken `found`; the person topped up or put back the rest:
    # 30 in all left the bin, and its record says so.
    assert after.on_hand == before.on_hand
    moves = await store.stock.movements(after.id)
    assert sum(m.quantity for m in moves) == after.on_hand
    assert sum(m.quantity for m in moves if m.fill_id == robot_fill) == 0
    hand = (await store.orders.fills(order_id))[-1]
    assert sum(m.quantity for m in moves if m.fill_id == hand.id) == -30
    assert await store.orders.fill_lots(hand.id) == [(BIN.lot, BIN.expiry)]


async def test_no_recount_without_a_vial(store: Store) -> None:
    order_id, bin_id = await exception_order(store)
    with pytest.raises(WorkflowError, match="left no vial to recount"):
        await store.handwork.hand_fill(order_id, bin_id, 30, weighed(30, 30 * 155), TECH, found=30)


async def test_an_unconfirmed_vial_left_behind_by_a_retry_waits_to_be_returned_or_wasted(
        store: Store) -> None:
    order_id, robot_fill = await unconfirmed_vial(store, FillOutcome.COUNT_BY_HAND)
    assert await store.vials.set_aside_vials() == []
    await store.handwork.retry_order(order_id, TECH)
    (vial,) = await store.vials.set_aside_vials(pending_only=True)
    assert (vial.fill_id, vial.count, vial.disposition) == (robot_fill, 30, None)
    (before,) = await store.stock.bins()
    await store.vials.dispose_vial(vial.id, "returned", by=tech("tess"))
    assert (await store.stock.bin(before.robot, before.bin)).on_hand == before.on_hand + 30
    # Sent back to exception (nothing could fill it), then counted by hand: the vial set
    # aside is no longer the order's, so the count comes from the bin.
    await store.orders.move_order(order_id, OrderState.EXCEPTION, reason="no robot free")
    with pytest.raises(WorkflowError, match="left no vial to recount"):
        await store.handwork.hand_fill(order_id, None, 30, weighed(30, 30 * 155), TECH, found=30)
    await store.handwork.hand_fill(order_id, before.id, 30, weighed(30, 30 * 155), TECH)
    assert (await store.stock.bin(before.robot, before.bin)).on_hand == before.on_hand
