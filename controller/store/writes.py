"""Write transactions: committed in groups, one fsync for every caller waiting together, and
ended for certain: committed or rolled back and their connection closed, even when the task
running one is cancelled, again and again, as ``stop_tasks`` does.

Group commit (``Writer``): the first writer takes the database's write lock and begins a
transaction; each writer's work runs in it as a savepoint of its own, one writer at a time
(those already waiting join the same group); the group commits once its last writer is done,
and only then does each writer hear back, its work stored: "stored before anything acts" holds
for every one of them. A writer whose work fails is rolled back to its savepoint and the others
go on. Should SQLite lose the whole transaction instead, every writer of the group hears so,
and none acts on it.

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
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from controller.store.errors import StoreError
from controller.store.inline import InlineConnection

BUSY_S = 30.0
"""How long a write waits for another's (another process's) write lock in all."""
FIRST_WAIT_S = 2.0
"""How long it waits before it looks for an abandoned connection holding the lock."""


@asynccontextmanager
async def write_transaction(
        engine: AsyncEngine, lock: asyncio.Lock,
        committing: Callable[[], AbstractContextManager[None]] = nullcontext,
) -> AsyncIterator[AsyncConnection]:
    """One write transaction on ``engine``, one at a time in this process (``lock``); its
    commit runs inside ``committing``."""
    async with lock:
        conn = await engine.connect()
        try:
            await conn.begin()
            yield conn
        except BaseException:
            await to_the_end(_rollback(conn))
            raise
        with committing():
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


async def to_the_end(work: Awaitable[None]) -> None:
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


DISCARD = "rxfill.discard"
"""Set in a connection's ``info`` by ``discard``."""


def discard(conn: AsyncConnection) -> None:
    """Nothing this writer did is to be kept (it found nothing to change): its savepoint is
    rolled back, and a group of such writers commits nothing, so no disk write."""
    conn.info[DISCARD] = True


class TransactionLost(StoreError):
    """A group's transaction was lost before it committed: nothing of it was stored."""


class _Group:
    """One transaction, shared by the writers that come while it is open."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.members = 0
        self.kept = False
        """A writer's work is to be committed (not all discarded)."""
        self.stored: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.stored.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved


class Writer:
    """The write transactions of one process on ``engine``, committed in groups (see the
    module). ``lock_statement`` is a write that takes the database's write lock at once;
    ``prepare`` readies each writer's connection; every commit runs inside ``committing``.

    No task of its own: the writer that finds nobody waiting behind it when its turn ends
    commits the group, for everyone in it, before it returns.
    """

    def __init__(self, engine: AsyncEngine, lock_statement: sa.Executable,
                 prepare: Callable[[AsyncConnection], None],
                 committing: Callable[[], AbstractContextManager[None]] = nullcontext) -> None:
        self._engine = engine
        self._committing = committing
        self._lock_statement = lock_statement
        self._prepare = prepare
        self._lock = asyncio.Lock()
        self._waiting = 0
        """Writers waiting for their turn: they join the open group."""
        self._group: _Group | None = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One writer's transaction: it holds the write lock from its first statement, and
        returns once what it did is committed (or raises: then nothing of it is stored)."""
        await self._turn()
        try:
            group = self._group or await self._open()
        except BaseException:
            self._lock.release()
            raise
        group.members += 1
        savepoint = f"writer_{group.members}"
        try:
            await group.conn.exec_driver_sql(f"SAVEPOINT {savepoint}")
            self._prepare(group.conn)
            yield group.conn
        except BaseException:
            try:
                await self._undo(group, savepoint)
            finally:
                await self._end_turn(group)
            raise
        try:
            if group.conn.info.pop(DISCARD, False):
                await self._undo(group, savepoint)
            else:
                await self._keep(group, savepoint)
        finally:
            await self._end_turn(group)
        await to_the_end(group.stored)

    async def _turn(self) -> None:
        self._waiting += 1
        try:
            await self._lock.acquire()
        except BaseException:
            # Given up while waiting: the writer before may have left its group open for
            # this one; with nobody else to come, it is committed now.
            self._waiting -= 1
            if self._group is not None and self._waiting == 0:
                await to_the_end(self._end_orphan())
            raise
        self._waiting -= 1

    async def _end_orphan(self) -> None:
        async with self._lock:
            if self._group is not None and self._waiting == 0:
                await self._end(self._group)

    async def _end_turn(self, group: _Group) -> None:
        """Let the next writer in; should none be waiting, end the group first."""
        try:
            if self._waiting == 0 and self._group is group:
                await to_the_end(self._end(group))
        finally:
            self._lock.release()

    async def _open(self) -> _Group:
        conn = await self._engine.connect()
        try:
            await conn.begin()
            await take_write_lock(conn, self._lock_statement)
            driver = (await conn.get_raw_connection()).driver_connection
            if isinstance(driver, InlineConnection):
                driver.writing = True
        except BaseException:
            await to_the_end(_rollback(conn))
            raise
        group = self._group = _Group(conn)
        return group

    async def _keep(self, group: _Group, savepoint: str) -> None:
        try:
            await group.conn.exec_driver_sql(f"RELEASE {savepoint}")
        except BaseException as exc:
            await self._lose(group, exc)
            raise
        group.kept = True

    async def _undo(self, group: _Group, savepoint: str) -> None:
        """Roll back one writer's work; should the transaction itself be gone, the group's."""
        group.conn.info.pop(DISCARD, None)
        try:
            await group.conn.exec_driver_sql(f"ROLLBACK TO {savepoint}")
            await group.conn.exec_driver_sql(f"RELEASE {savepoint}")
        except BaseException as exc:
            await self._lose(group, exc)

    async def _lose(self, group: _Group, why: BaseException) -> None:
        if self._group is group:
            self._group = None
        if not group.stored.done():
            group.stored.set_exception(TransactionLost(
                f"the store's transaction was lost ({why!r}) before it committed: nothing "
                f"of this change was stored"))
        await to_the_end(_rollback(group.conn))

    async def _end(self, group: _Group) -> None:
        """Commit the group (roll it back when every writer discarded its work); every
        writer of it hears how that went."""
        if self._group is group:
            self._group = None
        if group.stored.done():
            return  # lost, and rolled back
        try:
            if group.kept:
                with self._committing():
                    await to_the_end(_commit(group.conn))
            else:
                await to_the_end(_rollback(group.conn))
        except BaseException as exc:
            group.stored.set_exception(exc if isinstance(exc, Exception) else TransactionLost(
                f"the store's commit was stopped ({exc!r}): nothing of this change was "
                f"stored"))
            raise
        group.stored.set_result(None)
