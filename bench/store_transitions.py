"""What an order's transition costs in the store, against raw sqlite3 commits on the same file
settings (WAL, synchronous=FULL: every commit fsync'd).

Ours: ``store.orders.move_order`` (RECEIVED → QUEUED) of orders received beforehand, one
caller, one after another: each is one write transaction with its audit entry and its outbox
message. The baseline: sqlite3 in this thread, one UPDATE and one COMMIT a transition, on a
file of its own with the same pragmas. Alternating rounds; the figure is the ratio of their
transitions per second (issue 16's goal: at least 0.8).

    make bench
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

from controller.cli.common import DEMO_CONFIG
from controller.config import load_config
from controller.domain.orders import Order, OrderState, Patient
from controller.store import Store, sqlite_url

ROUNDS = 5
TRANSITIONS = 200
NDC = "00093-7146-01"


def raw_round(path: Path) -> float:
    """Transitions per second of bare sqlite3: an UPDATE and an fsync'd COMMIT each."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, state TEXT)")
    db.executemany("INSERT INTO orders (state) VALUES (?)", [("received",)] * TRANSITIONS)
    ids = [row[0] for row in db.execute(
        "SELECT id FROM orders ORDER BY id DESC LIMIT ?", (TRANSITIONS,))]
    began = time.perf_counter()
    for order_id in ids:
        db.execute("BEGIN IMMEDIATE")
        db.execute("UPDATE orders SET state = 'queued' WHERE id = ?", (order_id,))
        db.execute("COMMIT")
    elapsed = time.perf_counter() - began
    db.close()
    return TRANSITIONS / elapsed


async def store_round(store: Store, start: int) -> float:
    """Transitions per second through the store (orders received first, unmeasured)."""
    ids = []
    for n in range(start, start + TRANSITIONS):
        record, _ = await store.orders.receive_order(Order(
            f"RX{n:07d}", Patient("P-1", "Bench Patient", date(1970, 1, 1)), NDC, 1))
        ids.append(record.id)
    began = time.perf_counter()
    for order_id in ids:
        await store.orders.move_order(order_id, OrderState.QUEUED)
    return TRANSITIONS / (time.perf_counter() - began)


async def main() -> None:
    settings = load_config(DEMO_CONFIG)
    with tempfile.TemporaryDirectory() as folder:
        store = await Store.open(sqlite_url(Path(folder) / "bench.sqlite"),
                                 formulary=settings.formulary)
        raw, ours = [], []
        try:
            for round_ in range(ROUNDS):
                raw.append(await asyncio.to_thread(raw_round, Path(folder) / "raw.sqlite"))
                ours.append(await store_round(store, 1 + round_ * TRANSITIONS))
        finally:
            await store.close()
    r, o = statistics.median(raw), statistics.median(ours)
    print(f"store transitions: {TRANSITIONS} orders RECEIVED -> QUEUED a round, {ROUNDS} "
          f"alternating rounds, SQLite WAL, synchronous=FULL")
    print(f"  raw sqlite3, UPDATE + COMMIT   {r:8.1f} transitions/s (median)")
    print(f"  store.orders.move_order        {o:8.1f} transitions/s (median)")
    print(f"  ratio ours/raw = {o / r:.2f}   (issue 16's goal: >= 0.8)")


if __name__ == "__main__":
    asyncio.run(main())
