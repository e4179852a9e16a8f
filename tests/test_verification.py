"""After the fill, in the store: label scanned onto the right vial, witnessed count, the
pharmacist's verification, rejection and release, each by the right person."""

from __future__ import annotations

import pytest

from controller.domain.orders import FillOutcome, OrderState
from controller.domain.workflow import Person, Role, WorkflowError
from controller.store import FillResult, Store
from controller.store.verification import fill_code, parse_fill_code
from tests.floors import ATORVASTATIN, order
from tests.test_stock import BIN

TECH = Person("tess", frozenset({Role.TECHNICIAN}))
PHARM = Person("phil", frozenset({Role.PHARMACIST}))
BOTH = Person("bo", frozenset({Role.TECHNICIAN, Role.PHARMACIST}))


async def filled_order(store: Store, quantity: int = 30) -> tuple[int, int]:
    """An order whose vial a robot filled: (order id, fill id)."""
    await store.ensure_bins([BIN])
    (bin_record,) = await store.bins()
    received = await store.receive_order(order(ATORVASTATIN, quantity))
    await store.move_order(received.id, OrderState.QUEUED)
    fill = await store.start_fill(received.id, bin_record.id)
    await store.finish_fill(fill.id, FillResult(FillOutcome.FILLED, quantity, None, None, "ok"))
    return received.id, fill.id


def test_label_codes_read_back() -> None:
    assert fill_code(123) == "F00000123" and parse_fill_code(" F00000123\r\n") == 123
    for bad in ("00000123", "F12a", "F\u0ed0\u0ed01"):
        with pytest.raises(WorkflowError, match="not an rxfill label"):
            parse_fill_code(bad)


async def test_the_whole_way_from_filled_to_released(store: Store) -> None:
    order_id, fill_id = await filled_order(store)
    with pytest.raises(WorkflowError, match="wrong label, nothing changed"):
        await store.label_scanned(order_id, fill_code(fill_id + 1), TECH, schedule=None)
    assert await store.label_scanned(order_id, fill_code(fill_id), TECH,
                                     schedule=None) is OrderState.LABELED
    with pytest.raises(WorkflowError, match="tess may not verify"):
        await store.verify_order(order_id, TECH, schedule=None)
    assert await store.verify_order(order_id, PHARM, schedule=None) is OrderState.VERIFIED
    assert await store.release_order(order_id, PHARM, "pickup bin B4",
                                     schedule=None) is OrderState.RELEASED
    history = [(to, who) for _f, to, who, _r in await store.order_history(order_id)]
    assert history[-3:] == [("labeled", "tess"), ("verified", "phil"), ("released", "phil")]
    actions = [(e.who, e.action) for e in await store.audit_trail()]
    assert ("phil", "order released") in actions and await store.verify_audit() == []


async def test_who_labelled_never_verifies(store: Store) -> None:
    order_id, fill_id = await filled_order(store)
    await store.label_scanned(order_id, fill_code(fill_id), BOTH, schedule=None)
    with pytest.raises(WorkflowError, match="bo filled, counted or labelled this vial"):
        await store.verify_order(order_id, BOTH, schedule=None)
    assert (await store.order(order_id)).state is OrderState.LABELED


async def test_a_rejected_vial_is_filled_again_by_new_hands(store: Store) -> None:
    order_id, fill_id = await filled_order(store)
    await store.label_scanned(order_id, fill_code(fill_id), BOTH, schedule=None)
    assert await store.reject_order(order_id, PHARM, "cap not child-resistant",
                                     fill_again=True, schedule=None) is OrderState.QUEUED
    (bin_record,) = await store.bins()
    again = await store.start_fill(order_id, bin_record.id)
    await store.finish_fill(again.id, FillResult(FillOutcome.FILLED, 30, None, None, "ok"))
    await store.label_scanned(order_id, fill_code(again.id), TECH, schedule=None)
    # bo labelled the rejected vial, not this one: bo may verify this one.
    assert await store.verify_order(order_id, BOTH, schedule=None) is OrderState.VERIFIED


async def test_schedule_two_is_released_only_after_a_witnessed_count(store: Store) -> None:
    order_id, fill_id = await filled_order(store, 20)
    await store.label_scanned(order_id, fill_code(fill_id), TECH, schedule="II")
    await store.verify_order(order_id, PHARM, schedule="II")
    with pytest.raises(WorkflowError, match="second count witnessed"):
        await store.release_order(order_id, PHARM, "pickup", schedule="II")
    with pytest.raises(WorkflowError, match=r"second count \(19\) disagrees"):
        await store.witness_count(order_id, 19, PHARM, schedule="II")
    with pytest.raises(WorkflowError, match="tess may not witness"):
        await store.witness_count(order_id, 20, TECH, schedule="II")
    await store.witness_count(order_id, 20, PHARM, schedule="II")
    assert await store.release_order(order_id, PHARM, "pickup",
                                     schedule="II") is OrderState.RELEASED
