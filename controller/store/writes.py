"""A write transaction that ends for certain: committed or rolled back and its connection
closed, even when the task running it is cancelled, again and again, as ``stop_tasks`` does.

A transaction cut off in its rollback keeps SQLite's write lock until its connection is
collected, and every later write waits for it (30 s) and fails: a site stopping a robot's
worker in the middle of a record would have left the store unwritable. One way remains that
this code cannot close: when a cancellation interrupts a statement, SQLAlchemy invalidates the
connection, and a second one during its close stops aiosqlite's thread before the rollback it
queued runs. That sqlite3 connection is then held only in a reference cycle, its transaction
open, until the garbage collector finds it. So a write that finds the database locked for
``FIRST_WAIT_S`` collects such connections and waits again, for the rest of ``BUSY_S``.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

BUSY_S = 30.0
"""How long a write waits for another's (another process's) write lock in all."""
FIRST_WAIT_S = 2.0
"""How long it waits before it looks for an abandoned connection holding the lock."""


@asynccontextmanager
async def write_transaction(engine: AsyncEngine,
                            lock: asyncio.Lock) -> AsyncIterator[AsyncConnection]:
    """One write transaction on ``engine``, one at a time in this process (``lock``)."""
    async with lock:
        conn = await engine.connect()
        try:
            await conn.begin()
            yield conn
        except BaseException:
            await to_the_end(_rollback(conn))
            raise
        await to_the_end(_commit(conn))


async def _commit(conn: AsyncConnection) -> None:
    try:
        await conn.commit()
    except BaseException:
        await conn.rollback()
        raise
    finally:
        await conn.close()


async def _rollback(conn: AsyncConnection) -> None:
    try:
        await conn.rollback()
    finally:
        await conn.close()


async def to_the_end(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` to its end even if this task is cancelled meanwhile; then raise its
    error, or the cancellation that came while it ran."""
    task = asyncio.ensure_future(work)
    interrupted = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():
                raise
            interrupted = True
    task.result()
    if interrupted:
        raise asyncio.CancelledError


async def take_write_lock(conn: AsyncConnection, statement: sa.Executable) -> None:
    """Run ``statement`` (a write) to take the database's write lock now; should it stay
    locked for ``FIRST_WAIT_S``, collect abandoned connections and wait up to ``BUSY_S``."""
    try:
        await conn.execute(statement)
        return
    except sa.exc.OperationalError as exc:
        if "locked" not in str(exc.orig):
            raise
    gc.collect()  # an abandoned connection's open transaction (the module's docstring)
    await conn.exec_driver_sql(f"PRAGMA busy_timeout={int((BUSY_S - FIRST_WAIT_S) * 1000)}")
    try:
        await conn.execute(statement)
    finally:
        await conn.exec_driver_sql(f"PRAGMA busy_timeout={int(FIRST_WAIT_S * 1000)}")
