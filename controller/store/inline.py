"""A SQLite connection whose write transactions cost two trips to its thread, not one a
statement.

aiosqlite runs every call in its connection's own thread and wakes the event loop with the
answer: about 0.6 ms a trip here, against microseconds for the statement itself, and one
order's transition is ten of them. Two things only can keep a caller waiting: taking the
database's write lock (another process may hold it; SQLite then waits for it) and COMMIT (the
fsync). So those go to the thread as before, and once a transaction holds the write lock
(``writing``, set by the store's writer) every statement of it runs at once, in the event
loop's thread, until its COMMIT or ROLLBACK. Reads outside a write transaction still go to the
thread: a long report must not stall the robots' pollers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import aiosqlite


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection that runs a write transaction's statements in the caller's
    thread once it holds the write lock (see the module)."""

    writing = False
    """This connection holds the database's write lock in an open transaction."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        conn = self._connection
        if conn is not None and fn == conn.rollback and not conn.in_transaction:
            return fn(*args, **kwargs)  # nothing to roll back (the pool's reset): no trip
        if not self.writing or conn is None or not self._running:
            return await super()._execute(fn, *args, **kwargs)  # type: ignore[no-untyped-call]
        if fn == conn.commit or fn == conn.close:
            try:
                return await super()._execute(  # type: ignore[no-untyped-call]
                    fn, *args, **kwargs)  # the fsync: in the thread
            finally:
                self.writing = False
        if fn == conn.rollback:
            self.writing = False
        return fn(*args, **kwargs)


def connector(path: str, **kwargs: Any) -> Callable[[], Awaitable[InlineConnection]]:
    """The ``async_creator`` of an engine of InlineConnections to the SQLite file ``path``,
    with sqlite3.connect's ``kwargs``."""
    async def connect() -> InlineConnection:
        connection = InlineConnection(partial(sqlite3.connect, path, check_same_thread=False,
                                              **kwargs), 64)
        connection._thread.daemon = True  # as SQLAlchemy's own aiosqlite dialect does
        await connection
        return connection
    return connect
