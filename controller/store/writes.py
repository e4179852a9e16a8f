"""A write transaction that ends for certain: committed or rolled back and its connection
closed, even when the task running it is cancelled, again and again, as ``stop_tasks`` does.

A transaction cut off in its rollback keeps SQLite's write lock until its connection is
collected, and every later write waits for it (30 s) and fails: a site stopping a robot's
worker in the middle of a record would have left the store unwritable.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


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
