"""Stock: restocking by scan, lots first-expired-first-out, corrections, unloads, recalls."""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.domain.gs1 import bottle_code, parse_bottle
from controller.domain.orders import FillOutcome, OrderState
from controller.domain.stock import (
    BinStock,
    LotMixing,
    RestockPolicy,
    RestockRefused,
    check_restock,
    take,
)
from controller.domain.stock import Lot as StockLot
from controller.store import BinSpec, FillResult, Store, StoreError, sqlite_url
from tests.floors import ATORVASTATIN, LISINOPRIL, order
from tests.helpers import open_store, tech

TODAY = date(2026, 11, 23)
BIN = BinSpec("tc1", 1, ATORVASTATIN, "OLD1", date(2027, 3, 31), 100, 80, 600)
FEFO = RestockPolicy(expiring_days=30, mixing=LotMixing.FEFO)


def bottle(lot: str, expiry: date, serial: str = "S1", ndc: str = ATORVASTATIN) -> str:
    return bottle_code(ndc, lot, expiry, serial)


async def restock(store: Store, raw: str, quantity: int, *, partial: bool = False,
                  policy: RestockPolicy = FEFO, ndc: str = ATORVASTATIN) -> None:
    await store.stock.restock("tc1", 1, parse_bottle(raw), ndc, quantity=quantity, by=tech("tech"),
                              policy=policy, today=TODAY, partial=partial)


async def fill(store: Store, bin_id: int, counted: int, quantity: int = 30) -> int:
    record, _ = await store.orders.receive_order(order(ATORVASTATIN, quantity))
    await store.orders.move_order(record.id, OrderState.QUEUED)
    started = await store.orders.start_fill(record.id, bin_id)
    outcome = FillOutcome.FILLED if counted == quantity else FillOutcome.JAM
    await store.orders.finish_fill(started.id, FillResult(outcome, counted, None, None, "test"))
    return started.id


# -- the rules ------------------------------------------------------------------------------

def stock(*lots: StockLot) -> BinStock:
    return BinStock("tc1", 1, ATORVASTATIN, 600, lots)


@pytest.mark.parametrize(("raw", "ndc", "says"), [
    (bottle("N1", date(2027, 6, 30)), LISINOPRIL, "holds NDC 68180-0513-01, but bin 1 of tc1"),
    (bottle("N1", date(2026, 11, 1)), ATORVASTATIN, "lot N1 expired on 2026-11-01"),
    (bottle("N1", date(2026, 12, 10)), ATORVASTATIN, "expires on 2026-12-10, within 30 days"),
])
def test_a_wrong_expired_or_nearly_expired_bottle_is_refused(raw: str, ndc: str,
                                                             says: str) -> None:
    with pytest.raises(RestockRefused) as caught:
        check_restock(stock(), parse_bottle(raw), ndc, 100, today=TODAY, policy=FEFO)
    assert says in str(caught.value)


def test_a_bottle_that_does_not_fit_asks_for_the_count_poured() -> None:
    with pytest.raises(RestockRefused, match=re.escape("do not fit (at most 100): pour part")):
        check_restock(stock(StockLot("A", date(2027, 5, 1), 500)),
                      parse_bottle(bottle("A", date(2027, 5, 1))), ATORVASTATIN, 101,
                      today=TODAY, policy=FEFO)


def test_mixing_lots_is_refused_when_configured_so() -> None:
    policy = RestockPolicy(mixing=LotMixing.REFUSE)
    with pytest.raises(RestockRefused, match="still holds 20 of lot OLD1"):
        check_restock(stock(StockLot("OLD1", date(2027, 3, 31), 20)),
                      parse_bottle(bottle("NEW1", date(2027, 9, 30))), ATORVASTATIN, 100,
                      today=TODAY, policy=policy)
    # An empty bin takes the new lot; the same lot tops up.
    check_restock(stock(), parse_bottle(bottle("NEW1", date(2027, 9, 30))), ATORVASTATIN, 100,
                  today=TODAY, policy=policy)
    check_restock(stock(StockLot("OLD1", date(2027, 3, 31), 20)),
                  parse_bottle(bottle("OLD1", date(2027, 3, 31))), ATORVASTATIN, 100,
                  today=TODAY, policy=policy)


def test_one_lot_under_two_expiry_dates_is_refused() -> None:
    with pytest.raises(RestockRefused, match="loaded with expiry 2027-03-31"):
        check_restock(stock(StockLot("OLD1", date(2027, 3, 31), 20)),
                      parse_bottle(bottle("OLD1", date(2027, 4, 30))), ATORVASTATIN, 10,
                      today=TODAY, policy=FEFO)


def test_tablets_leave_first_expired_first_out() -> None:
    later, sooner = StockLot("B", date(2027, 9, 1), 50), StockLot("A", date(2027, 4, 1), 30)
    assert take((later, sooner), 40) == [(sooner, 30), (later, 10)]
    assert take((later, sooner), 20) == [(sooner, 20)]
    # The record was short: the surplus goes on the last lot, to be corrected.
    assert take((later, sooner), 90) == [(sooner, 30), (later, 60)]


# -- in the store -----------------------------------------------------------------------------

async def test_a_restock_adds_the_bottle_and_announces_nothing_without_topics(
        store: Store) -> None:
    await store.stock.ensure_bins([BIN])
    await restock(store, bottle("OLD1", date(2027, 3, 31)), 200)
    (record,) = await store.stock.bins()
    assert (record.on_hand, record.lot) == (300, "OLD1")
    last = (await store.stock.movements(record.id))[-1]
    assert (last.kind, last.quantity, last.who, last.serial) == ("restock", 200, "tech", "S1")
    assert await store.alarms.outbox() == []


async def test_a_full_bottle_goes_in_once_a_partial_one_in_parts(store: Store) -> None:
    await store.stock.ensure_bins([BIN])
    raw = bottle("OLD1", date(2027, 3, 31), serial="BOTTLE7")
    await restock(store, raw, 100)
    with pytest.raises(StoreError, match="serial BOTTLE7 of lot OLD1 was restocked on"):
        await restock(store, raw, 100)
    await restock(store, raw, 40, partial=True)
    assert (await store.stock.bins())[0].on_hand == 240


async def test_a_new_lot_is_dispensed_after_the_older_one(store: Store) -> None:
    await store.stock.ensure_bins([BIN])
    (record,) = await store.stock.bins()
    await restock(store, bottle("NEW1", date(2027, 9, 30)), 100)
    (record,) = await store.stock.bins()
    assert [(lot.lot, lot.on_hand) for lot in record.lots] == [("OLD1", 100), ("NEW1", 100)]
    await fill(store, record.id, 30, 30)
    await fill(store, record.id, 90, 90)
    (record,) = await store.stock.bins()
    assert [(lot.lot, lot.on_hand) for lot in record.lots] == [("NEW1", 80)]
    assert (record.lot, record.expiry) == ("NEW1", date(2027, 9, 30))


async def test_a_recall_finds_every_vial_that_may_hold_the_lot(store: Store) -> None:
    await store.stock.ensure_bins([BIN])
    (record,) = await store.stock.bins()
    only_old = await fill(store, record.id, 30)
    await restock(store, bottle("NEW1", date(2027, 9, 30)), 100)
    both = await fill(store, record.id, 90, 90)  # 70 of OLD1, 20 of NEW1
    only_new = await fill(store, record.id, 30)
    recalled = {v.fill_id: v for v in await store.stock.recall("NEW1")}
    assert set(recalled) == {both, only_new}
    assert (recalled[both].quantity, recalled[both].mixed) == (20, True)
    assert (recalled[only_new].quantity, recalled[only_new].mixed) == (30, False)
    old = {v.fill_id: v.quantity for v in await store.stock.recall("OLD1")}
    assert old == {only_old: 30, both: 70}
    assert await store.stock.recall("NOSUCH") == []


async def test_a_correction_and_an_unload_are_movements_with_who_and_why(store: Store) -> None:
    await store.stock.ensure_bins([BIN])
    (record,) = await store.stock.bins()
    corrected = await store.stock.correct_bin(record.id, 93, by=tech("tech"),
                                              reason="counted by hand")
    assert corrected.on_hand == 93
    emptied = await store.stock.unload_bin(record.id, by=tech("tech"), reason="lot change")
    assert emptied.on_hand == 0 and emptied.lot == "OLD1"
    kinds = [(m.kind, m.quantity, m.reason) for m in await store.stock.movements(record.id)]
    assert kinds[-2:] == [("correction", -7, "counted by hand"), ("unload", -93, "lot change")]
    with pytest.raises(ValueError, match="needs a reason"):
        await store.stock.correct_bin(record.id, 5, by=tech("tech"), reason=" ")


async def test_a_returned_partial_vial_goes_back_to_the_lots_it_came_from(store: Store) -> None:
    await store.stock.ensure_bins([BIN])
    (record,) = await store.stock.bins()
    await restock(store, bottle("NEW1", date(2027, 9, 30)), 100)
    fill_id = await fill(store, record.id, 110, 150)  # a jam: 100 OLD1 + 10 NEW1 set aside
    (vial,) = await store.vials.set_aside_vials(pending_only=True)
    assert vial.fill_id == fill_id
    await store.vials.dispose_vial(vial.id, "returned", by=tech("tech"))
    (record,) = await store.stock.bins()
    assert sorted((lot.lot, lot.on_hand) for lot in record.lots) == [("NEW1", 100),
                                                                      ("OLD1", 100)]


OPERATIONS = st.lists(st.one_of(
    st.tuples(st.just("fill"), st.integers(0, 150)),
    st.tuples(st.just("restock"), st.integers(1, 200)),
    st.tuples(st.just("correct"), st.integers(0, 600)),
    st.tuples(st.just("unload"), st.just(0)),
    st.tuples(st.just("return"), st.just(0)),
), max_size=10)


@settings(max_examples=25, deadline=None)
@given(OPERATIONS)
def test_the_bin_count_always_equals_the_sum_of_its_movements(
        tmp_path_factory: pytest.TempPathFactory, operations: list[tuple[str, int]]) -> None:
    async def run() -> None:
        store = await open_store(sqlite_url(tmp_path_factory.mktemp("p") / "rx.sqlite"))
        try:
            await store.stock.ensure_bins([BIN])
            (record,) = await store.stock.bins()
            for number, (operation, n) in enumerate(operations):
                if operation == "fill":
                    await fill(store, record.id, n, max(n, 1))
                elif operation == "restock":
                    lot = f"L{number % 3}"
                    expiry = date(2027, 4 + number % 3, 1)
                    # It may not fit, or the lot's date may disagree: then nothing moves.
                    with contextlib.suppress(RestockRefused, StoreError):
                        await restock(store, bottle(lot, expiry, f"S{number}"), n)
                elif operation == "correct":
                    await store.stock.correct_bin(record.id, n, by=tech("tech"), reason="counted")
                elif operation == "unload":
                    await store.stock.unload_bin(record.id, by=tech("tech"), reason="unload")
                else:
                    for vial in await store.vials.set_aside_vials(pending_only=True):
                        await store.vials.dispose_vial(vial.id, "returned", by=tech("tech"))
                (record,) = await store.stock.bins()
                movements = await store.stock.movements(record.id)
                assert record.on_hand == sum(m.quantity for m in movements)
                by_lot: dict[str, int] = {}
                for m in movements:
                    by_lot[m.lot] = by_lot.get(m.lot, 0) + m.quantity
                assert {lot.lot: lot.on_hand for lot in record.lots if lot.on_hand} == {
                    lot: n for lot, n in by_lot.items() if n}
        finally:
            await store.close()

    asyncio.run(run())
