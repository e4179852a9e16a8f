"""The store, on a real SQLite file."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.domain.orders import FillOutcome, Order, OrderState, Patient
from controller.domain.roles import WorkflowError
from controller.store import BinSpec, FillResult, Store, StoreError, sqlite_url
from tests.helpers import open_store, tech

ORDER = Order("RX5550001", Patient("P-1", "Test Patient", date(1970, 5, 4)), "00093-7146-01", 30)
_RX = itertools.count(5550002)


def another() -> Order:
    """ORDER, as a prescription of its own."""
    return replace(ORDER, rx_number=f"RX{next(_RX)}")
BIN = BinSpec("tc1", 1, "00093-7146-01", "LOT1", date(2027, 1, 1), 400, 100, 600)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(sqlite_url(tmp_path / "rx.sqlite"))
    try:
        yield opened
    finally:
        await opened.close()


async def test_store_file_uses_wal_and_full_sync(tmp_path: Path) -> None:
    store = await open_store(sqlite_url(tmp_path / "rx.sqlite"))
    await store.stock.ensure_bins([BIN])
    await store.close()
    with sqlite3.connect(tmp_path / "rx.sqlite") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"orders", "fills", "bins", "bin_movements", "alembic_version"} <= tables


async def test_a_fill_takes_its_count_off_the_bin_and_fills_the_order(store: Store) -> None:
    await store.stock.ensure_bins([BIN])
    (bin_record,) = await store.stock.bins()
    order, _ = await store.orders.receive_order(ORDER)
    await store.orders.move_order(order.id, OrderState.QUEUED)
    fill = await store.orders.start_fill(order.id, bin_record.id)
    assert fill.job == f"{store.instance}-{fill.id}" and len(fill.job) <= 16
    assert (await store.orders.order(order.id)).state is OrderState.DISPENSING
    assert await store.orders.open_fills("tc1") == [fill]
    result = FillResult(FillOutcome.FILLED, 30, 4650, None, "counted 30")
    ended = await store.orders.finish_fill(fill.id, result)
    assert (ended.outcome, ended.counted, ended.state) == (FillOutcome.FILLED, 30, "ended")
    assert (await store.stock.bins())[0].on_hand == 370
    assert await store.orders.open_fills() == []
    history = await store.orders.order_history(order.id)
    assert [h[1] for h in history] == ["received", "queued", "dispensing", "filled"]


async def test_a_fill_cannot_end_twice(store: Store) -> None:
    await store.stock.ensure_bins([BIN])
    order, _ = await store.orders.receive_order(ORDER)
    await store.orders.move_order(order.id, OrderState.QUEUED)
    fill = await store.orders.start_fill(order.id, (await store.stock.bins())[0].id)
    result = FillResult(FillOutcome.JAM, 12, 1800, None, "jammed")
    await store.orders.finish_fill(fill.id, result)
    with pytest.raises(StoreError, match="already ended"):
        await store.orders.finish_fill(fill.id, result)
    assert (await store.stock.bins())[0].on_hand == 388
    assert (await store.orders.order(order.id)).state is OrderState.EXCEPTION


async def test_an_illegal_transition_changes_nothing(store: Store) -> None:
    order, _ = await store.orders.receive_order(ORDER)
    with pytest.raises(WorkflowError, match="received cannot move to filled"):
        await store.orders.move_order(order.id, OrderState.FILLED)
    assert (await store.orders.order(order.id)).state is OrderState.RECEIVED
    assert len(await store.orders.order_history(order.id)) == 1


async def test_bins_keep_their_recorded_count_across_reopen(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "rx.sqlite")
    store = await open_store(url)
    await store.stock.ensure_bins([BIN])
    order, _ = await store.orders.receive_order(ORDER)
    await store.orders.move_order(order.id, OrderState.QUEUED)
    fill = await store.orders.start_fill(order.id, (await store.stock.bins())[0].id)
    instance = store.instance
    await store.close()
    store = await open_store(url)
    try:
        await store.stock.ensure_bins([BIN])
        assert store.instance == instance
        assert (await store.stock.bins())[0].on_hand == 400
        assert [f.id for f in await store.orders.open_fills()] == [fill.id]
    finally:
        await store.close()


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=8))
def test_bin_count_is_the_sum_of_its_movements(tmp_path_factory: pytest.TempPathFactory,
                                               counts: list[int]) -> None:
    import asyncio

    async def run() -> None:
        store = await open_store(sqlite_url(tmp_path_factory.mktemp("p") / "rx.sqlite"))
        try:
            await store.stock.ensure_bins([BIN])
            bin_id = (await store.stock.bins())[0].id
            for counted in counts:
                order, _ = await store.orders.receive_order(another())
                await store.orders.move_order(order.id, OrderState.QUEUED)
                fill = await store.orders.start_fill(order.id, bin_id)
                await store.orders.finish_fill(
                    fill.id, FillResult(FillOutcome.FILLED, counted, None, None, ""))
            movements = await store.stock.movements(bin_id)
            assert (await store.stock.bins())[0].on_hand == sum(m.quantity for m in movements)
            assert (await store.stock.bins())[0].on_hand == 400 - sum(counts)
        finally:
            await store.close()

    asyncio.run(run())


async def test_a_fill_never_starts_from_a_bin_of_another_drug(store: Store) -> None:
    other = BinSpec("tc1", 2, "68180-0513-01", "LOT2", date(2027, 1, 1), 100, 10, 200)
    await store.stock.ensure_bins([BIN, other])
    order, _ = await store.orders.receive_order(ORDER)
    await store.orders.move_order(order.id, OrderState.QUEUED)
    wrong = next(b for b in await store.stock.bins() if b.bin == 2)
    with pytest.raises(StoreError, match="holds NDC 68180-0513-01, not the order's 00093-7146-01"):
        await store.orders.start_fill(order.id, wrong.id)
    assert await store.orders.fills() == []
    assert (await store.orders.order(order.id)).state is OrderState.QUEUED


async def test_a_store_made_by_the_first_migration_is_upgraded_in_place(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig
    from sqlalchemy import create_engine

    from controller.store.revisions import MIGRATIONS

    path = tmp_path / "old.sqlite"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.exec_driver_sql(
            "INSERT INTO orders (rx_number, patient_id, patient_name, patient_birth_date, ndc, "
            "quantity, state, received_at, updated_at) VALUES ('RX1', 'P', 'N', '1970-01-01', "
            "'00093-7146-01', 10, 'queued', '2026-01-01 00:00:00', '2026-01-01 00:00:00')")
    engine.dispose()
    store = await open_store(sqlite_url(path))
    try:
        (old,) = await store.orders.orders()
        assert old.easy_open is False and old.state is OrderState.QUEUED
        assert await store.vials.set_aside_vials() == []
    finally:
        await store.close()


async def test_numeric_job_ids_are_offset_by_the_store_and_never_zero(store: Store) -> None:
    await store.stock.ensure_bins([BIN])
    (bin_,) = await store.stock.bins()
    jobs = []
    for n in range(3):
        order, _ = await store.orders.receive_order(another())
        await store.orders.move_order(order.id, OrderState.QUEUED)
        fill = await store.orders.start_fill(order.id, bin_.id, numeric_job=n != 1)
        jobs.append(fill.job)
    assert jobs[1] == f"{store.instance}-2"
    first, third = int(jobs[0]), int(jobs[2])
    assert 1 <= first <= 0xFFFF_FFFF and 1 <= third <= 0xFFFF_FFFF
    assert (third - first) % 0xFFFF_FFFF == 2
    assert first == store.job_base % 0xFFFF_FFFF + 1


async def test_a_partial_vial_is_set_aside_and_disposed_of_once(store: Store) -> None:
    await store.stock.ensure_bins([BIN])
    (bin_,) = await store.stock.bins()
    order, _ = await store.orders.receive_order(ORDER)
    await store.orders.move_order(order.id, OrderState.QUEUED)
    fill = await store.orders.start_fill(order.id, bin_.id)
    await store.orders.finish_fill(fill.id, FillResult(FillOutcome.JAM, 12, 1800, None, "jammed"),
                                   then=OrderState.QUEUED)
    assert (await store.orders.order(order.id)).state is OrderState.QUEUED
    (vial,) = await store.vials.set_aside_vials(pending_only=True)
    assert (vial.count, vial.bin_id) == (12, bin_.id)
    wasted = await store.vials.dispose_vial(vial.id, "wasted", by=tech("tech-2"))
    assert (wasted.disposition, wasted.disposed_by) == ("wasted", "tech-2")
    assert await store.vials.set_aside_vials(pending_only=True) == []
    with pytest.raises(StoreError, match="already wasted by tech-2"):
        await store.vials.dispose_vial(vial.id, "returned", by=tech("tech-3"))
    (after,) = await store.stock.bins()
    assert after.on_hand == 400 - 12  # wasted tablets stay off the bin


async def test_a_store_holding_records_migrates_to_this_schema(tmp_path: Path) -> None:
    # Found while adding migration 0009: SQLite changes a table by copying it, and with
    # foreign keys enforced dropping the old orders table failed on any store that held an
    # order with a fill (0007 had the same flaw). A store from revision 0006, with records:
    from alembic import command
    from alembic.config import Config as AlembicConfig

    from controller.store.revisions import MIGRATIONS
    path = tmp_path / "old.sqlite"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, "0006")
    engine.dispose()
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA foreign_keys=ON")
        raw.executescript("""
            INSERT INTO bins VALUES (1, 'tc1', 1, '00093-7146-01', 'L1', '2030-01-01', 50, 900);
            INSERT INTO orders (id, rx_number, patient_id, patient_name, patient_birth_date,
                ndc, quantity, state, received_at, updated_at, easy_open)
                VALUES (1, 'RX1', 'P1', 'Pat', '1960-01-02', '00093-7146-01', 30, 'labeled',
                '2026-11-01 10:00:00.000000', '2026-11-01 10:00:00.000000', 0);
            INSERT INTO order_events (order_id, from_state, to_state, who, at) VALUES
                (1, NULL, 'received', 'supervisor', '2026-11-01 10:00:00.000000'),
                (1, 'filled', 'labeled', 'tess', '2026-11-01 10:05:00.000000');
            INSERT INTO fills (id, order_id, bin_id, job, quantity, state, outcome, counted,
                started_at) VALUES (1, 1, 1, 'J-1', 30, 'ended', 'filled', 30,
                '2026-11-01 10:01:00.000000');
        """)
    store = await open_store(sqlite_url(path))
    try:
        order = await store.orders.order(1)
        (fill,) = await store.orders.fills(1)
        assert (order.state, order.schedule, order.fill_number) == (OrderState.LABELED, "?", None)
        assert fill.labelled_by == "tess"
        # The store's connections enforce foreign keys again once migrated.
        with pytest.raises(sa.exc.IntegrityError, match="FOREIGN KEY"):
            async with store.engine.begin() as conn:
                await conn.exec_driver_sql(
                    "INSERT INTO order_events (order_id, to_state, who, at) "
                    "VALUES (999, 'queued', 'x', '2026-11-01 10:00:00.000000')")
    finally:
        await store.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
