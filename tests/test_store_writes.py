"""A store write waits for another process's write lock, and is not stopped for good by a
connection abandoned with its transaction open (controller/store/writes.py); a write
transaction cancelled again and again still ends, and leaves the store writable."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from controller.domain.orders import OrderState
from controller.store import Store
from tests.floors import ATORVASTATIN, order

WRITE = "UPDATE store_info SET value = value WHERE key = 'instance'"


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
