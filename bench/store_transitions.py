"""What an order's transition costs in the store, against raw sqlite3 commits on the same file
settings (WAL, synchronous=FULL: every commit fsync'd).

Ours: ``store.orders.move_order`` (RECEIVED → QUEUED) of orders received beforehand, each one
write transaction with its order event and its audit entry:
- one caller, one after another, against sqlite3 in a thread of its own, one UPDATE and one
  COMMIT a transition, on a file of its own with the same pragmas (alternating rounds; the
  figure is the ratio of their transitions a second);
- many callers at once (``CALLERS``), whose transactions commit in groups: transitions a
  second, and the 99th percentile of one caller's wait.

    make bench        (python -m bench.store_transitions for this one alone)
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

from bench.table import Figure, table
from controller.cli.common import DEMO_CONFIG
from controller.config import load_config
from controller.domain.orders import Order, OrderState, Patient
from controller.store import Store, sqlite_url

ROUNDS = 5
TRANSITIONS = 200
CALLERS = 50
NDC = "00093-7146-01"


def raw_round(path: Path, transitions: int) -> float:
    """Transitions per second of bare sqlite3: an UPDATE and an fsync'd COMMIT each."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, state TEXT)")
    db.executemany("INSERT INTO orders (state) VALUES (?)", [("received",)] * transitions)
    ids = [row[0] for row in db.execute(
        "SELECT id FROM orders ORDER BY id DESC LIMIT ?", (transitions,))]
    began = time.perf_counter()
    for order_id in ids:
        db.execute("BEGIN IMMEDIATE")
        db.execute("UPDATE orders SET state = 'queued' WHERE id = ?", (order_id,))
        db.execute("COMMIT")
    elapsed = time.perf_counter() - began
    db.close()
    return transitions / elapsed


async def received(store: Store, prefix: str, count: int) -> list[int]:
    """``count`` new orders (unmeasured), their ids."""
    ids = []
    for n in range(count):
        record, _ = await store.orders.receive_order(Order(
            f"{prefix}{n:06d}", Patient("P-1", "Bench Patient", date(1970, 1, 1)), NDC, 1))
        ids.append(record.id)
    return ids


async def store_round(store: Store, prefix: str, transitions: int) -> float:
    """Transitions per second through the store, one caller."""
    ids = await received(store, prefix, transitions)
    began = time.perf_counter()
    for order_id in ids:
        await store.orders.move_order(order_id, OrderState.QUEUED)
    return transitions / (time.perf_counter() - began)


async def grouped_round(store: Store, prefix: str,
                        transitions: int) -> tuple[float, list[float]]:
    """Transitions per second with ``CALLERS`` callers at once, and every call's wait (s)."""
    ids = await received(store, prefix, transitions)
    waits: list[float] = []

    async def caller(mine: list[int]) -> None:
        for order_id in mine:
            asked = time.perf_counter()
            await store.orders.move_order(order_id, OrderState.QUEUED)
            waits.append(time.perf_counter() - asked)
    began = time.perf_counter()
    await asyncio.gather(*(caller(ids[n::CALLERS]) for n in range(CALLERS)))
    return transitions / (time.perf_counter() - began), waits


async def figures(quick: bool = False) -> list[Figure]:
    """The store's rows of the table."""
    rounds, transitions = (2, 100) if quick else (ROUNDS, TRANSITIONS)
    settings = load_config(DEMO_CONFIG)
    with tempfile.TemporaryDirectory() as folder:
        store = await Store.open(sqlite_url(Path(folder) / "bench.sqlite"),
                                 formulary=settings.formulary)
        raw, ours, grouped, waits = [], [], [], []
        try:
            for round_ in range(rounds):
                raw.append(await asyncio.to_thread(raw_round, Path(folder) / "raw.sqlite",
                                                   transitions))
                ours.append(await store_round(store, f"S{round_}-", transitions))
                rate, round_waits = await grouped_round(store, f"G{round_}-", transitions * 5)
                grouped.append(rate)
                waits += round_waits
        finally:
            await store.close()
    r, o, g = statistics.median(raw), statistics.median(ours), statistics.median(grouped)
    p99 = statistics.quantiles(waits, n=100)[98] * 1e3
    return [
        Figure("store: transitions/s, one caller ÷ raw sqlite3 fsync'd commits/s", o / r, "",
               0.8, ours=f"{o:,.0f}/s move_order", baseline=f"{r:,.0f}/s UPDATE+COMMIT"),
        Figure(f"store: transitions/s, {CALLERS} callers (group commit)", g, "/s", 5000,
               ours=f"{g:,.0f}/s", baseline=f"one caller {o:,.0f}/s"),
        Figure(f"store: p99 wait of one of {CALLERS} callers", p99, "ms", 20, at_least=False,
               ours=f"{len(waits)} calls"),
    ]


if __name__ == "__main__":
    print(table(asyncio.run(figures())))
