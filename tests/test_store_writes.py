"""A store write waits for another process's write lock, and is not stopped for good by a
connection abandoned with its transaction open (controller/store/writes.py); a write
transaction cancelled again and again still ends, and leaves the store writable."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from controller.domain.orders import OrderState
from controller.store import Store
from controller.store.writes import TransactionLost
from tests.floors import ATORVASTATIN, order

WRITE = "UPDATE store_info SET value = value WHERE key = 'instance'"


async def _until(condition: Callable[[], bool]) -> None:
    """Let the other tasks run until ``condition`` holds (a step of theirs, not a time)."""
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110 - no event to wait on: the turns are internal
            await asyncio.sleep(0)


async def _queued(store: Store) -> int:
    record, _ = await store.orders.receive_order(order(ATORVASTATIN, 10))
    return record.id


def _holder(path: Path, hold: threading.Event, held: threading.Event) -> None:
    """Another process's write transaction: it holds the lock until told to let go."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute(WRITE)
    held.set()
    hold.wait()
    other.execute("COMMIT")
    other.close()


async def test_a_write_waits_for_another_writers_lock_longer_than_the_first_wait(
        store: Store, tmp_path: Path) -> None:
    order_id = await _queued(store)
    hold, held = threading.Event(), threading.Event()
    holder = threading.Thread(target=_holder, args=(tmp_path / "rx.sqlite", hold, held))
    holder.start()
    await asyncio.to_thread(held.wait)
    asyncio.get_running_loop().call_later(3.0, hold.set)  # past the first 2 s wait
    moved = await store.orders.move_order(order_id, OrderState.QUEUED)
    assert moved.state is OrderState.QUEUED and hold.is_set()
    await asyncio.to_thread(holder.join)


class _Abandoned:
    """A connection whose owner lost it with a write transaction open, in a reference cycle
    (as aiosqlite's, when its thread stops before the rollback queued for it)."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute(WRITE)
        self.me = self


async def test_a_connection_abandoned_with_its_lock_does_not_stop_the_store(
        store: Store, tmp_path: Path) -> None:
    order_id = await _queued(store)
    _Abandoned(tmp_path / "rx.sqlite")  # nothing refers to it but itself
    async with asyncio.timeout(10):
        moved = await store.orders.move_order(order_id, OrderState.QUEUED)
    assert moved.state is OrderState.QUEUED


async def test_a_write_cancelled_again_and_again_ends_and_leaves_the_store_writable(
        store: Store) -> None:
    ids = [await _queued(store) for _ in range(20)]

    async def move_all() -> None:
        for order_id in ids:
            await store.orders.move_order(order_id, OrderState.QUEUED)
    for _ in range(5):
        task = asyncio.create_task(move_all())
        await asyncio.sleep(0)
        for _ in range(3):  # as stop_tasks does, faster
            task.cancel()
            await asyncio.sleep(0.001)
        await asyncio.gather(task, return_exceptions=True)
    async with asyncio.timeout(10):
        for order_id in ids:
            record = await store.orders.order(order_id)
            if record.state is OrderState.RECEIVED:
                await store.orders.move_order(order_id, OrderState.QUEUED)
    states = {(await store.orders.order(order_id)).state for order_id in ids}
    assert states == {OrderState.QUEUED}


async def test_writers_waiting_together_commit_together_and_each_hears_back_once_stored(
        store: Store, tmp_path: Path) -> None:
    ids = [await _queued(store) for _ in range(30)]
    commits = 0
    raw = sqlite3.connect(tmp_path / "rx.sqlite")
    before = raw.execute("PRAGMA data_version").fetchone()[0]

    async def move(order_id: int) -> OrderState:
        nonlocal commits
        moved = await store.orders.move_order(order_id, OrderState.QUEUED)
        # heard back: another connection sees it stored already
        seen = raw.execute("SELECT state FROM orders WHERE id = ?", (order_id,)).fetchone()
        commits = raw.execute("PRAGMA data_version").fetchone()[0] - before
        assert seen == ("queued",)
        return moved.state
    states = await asyncio.gather(*(move(order_id) for order_id in ids))
    assert set(states) == {OrderState.QUEUED}
    assert 1 <= commits < len(ids)  # fewer commits (fsyncs) than writers
    raw.close()


async def test_a_writer_that_fails_in_a_group_loses_only_its_own_work(store: Store) -> None:
    ids = [await _queued(store) for _ in range(6)]
    await store.orders.move_order(ids[3], OrderState.QUEUED)  # QUEUED -> QUEUED is refused
    results = await asyncio.gather(
        *(store.orders.move_order(order_id, OrderState.QUEUED) for order_id in ids),
        return_exceptions=True)
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 1 and "queued" in str(refused[0])
    for order_id in ids:
        assert (await store.orders.order(order_id)).state is OrderState.QUEUED
    history = await store.orders.order_history(ids[3])
    assert [(f, t) for f, t, *_ in history] == [(None, "received"), ("received", "queued")]


async def test_a_transaction_sqlite_lost_fails_every_writer_of_its_group(store: Store) -> None:
    ids = [await _queued(store) for _ in range(4)]
    original = store.orders.move_order

    async def lose_it(order_id: int, target: OrderState) -> object:
        async with store.transaction() as conn:  # the whole transaction gone, as SQLite may
            await conn.exec_driver_sql("ROLLBACK")
            raise RuntimeError("disk I/O error")
    results = await asyncio.gather(
        original(ids[0], OrderState.QUEUED), original(ids[1], OrderState.QUEUED),
        lose_it(ids[2], OrderState.QUEUED), return_exceptions=True)
    assert isinstance(results[2], RuntimeError)
    assert all(isinstance(r, TransactionLost) for r in results[:2]), results
    for order_id in ids[:3]:
        assert (await store.orders.order(order_id)).state is OrderState.RECEIVED
    moved = await store.orders.move_order(ids[3], OrderState.QUEUED)  # the store goes on
    assert moved.state is OrderState.QUEUED


async def test_a_writer_that_changes_nothing_writes_nothing(store: Store,
                                                           tmp_path: Path) -> None:
    raw = sqlite3.connect(tmp_path / "rx.sqlite")
    before = raw.execute("PRAGMA data_version").fetchone()[0]
    # an alarm pass that finds nothing to change
    assert await store.alarms.change_alarms(lambda current, bins, down: []) == []
    assert raw.execute("PRAGMA data_version").fetchone()[0] == before
    raw.close()


async def test_a_writer_that_gives_up_waiting_does_not_leave_the_group_uncommitted(
        store: Store) -> None:
    ids = [await _queued(store) for _ in range(2)]
    go = asyncio.Event()
    writer = store._writer  # the order of turns is what is tested

    async def first() -> None:
        async with store.transaction() as conn:
            await conn.exec_driver_sql("UPDATE orders SET reason = 'held' WHERE id = ?",
                                       (ids[0],))
            await go.wait()  # holds its turn while the second writer comes
    held = asyncio.create_task(first())
    await _until(writer._lock.locked)
    second = asyncio.create_task(store.orders.move_order(ids[1], OrderState.QUEUED))
    await _until(lambda: writer._waiting > 0)
    go.set()  # the first ends its turn with the second waiting: it leaves the group open
    await _until(lambda: not writer._lock.locked())
    second.cancel()  # ... and the second gives up before its turn
    async with asyncio.timeout(10):
        await held
    await asyncio.gather(second, return_exceptions=True)
    assert (await store.orders.order(ids[0])).reason == "held"
    assert (await store.orders.order(ids[1])).state is OrderState.RECEIVED
