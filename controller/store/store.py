"""The store, in the pharmacy's terms: one database and its repositories (``store.orders``,
``store.stock``, ``store.alarms``…), each a plain class over the database's transactions.

One SQLite file (WAL, synchronous=FULL) by default; any SQLAlchemy async URL
works the same. SQL lives in this package and nowhere else. Every change is one
transaction, committed before the caller acts on it, with its audit entry.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from controller.clock import Clock
from controller.domain.audit import AuditKey
from controller.domain.drugs import Formulary
from controller.store.alarm_records import AlarmRecords
from controller.store.audit_records import KEY as AUDIT_KEY
from controller.store.audit_records import AuditRecords
from controller.store.calibration import CalibrationRecords
from controller.store.errors import StoreError
from controller.store.handwork import HandworkRecords
from controller.store.inline import connector
from controller.store.orders import JOB_SPACE, OrderRecords
from controller.store.outbox import Announcer
from controller.store.people import PeopleRecords
from controller.store.revisions import (
    MIGRATIONS,
    Revision,
    StoreNeedsUpgrade,
    StoreUnusable,
    backup,
    check_file,
    revision_of,
    revision_of_file,
)
from controller.store.schema import store_info
from controller.store.stock import StockRecords
from controller.store.verification import VerificationRecords
from controller.store.vials import VialRecords
from controller.store.watch import ChangeWatch
from controller.store.writes import BUSY_S, FIRST_WAIT_S, Writer


def sqlite_url(path: Path) -> str:
    """The async SQLAlchemy URL of a SQLite file."""
    return f"sqlite+aiosqlite:///{path}"


class Store:
    """The pharmacy's records: one database, and one repository per aggregate
    (``orders`` and their fills, ``vials`` set aside, ``handwork`` done by people, ``stock``,
    ``alarms`` and the outbox, ``audit``, ``people``, ``verification``). Open with
    :meth:`open`; close with :meth:`close`.

    With ``topics`` set, changes that the MQTT ICD announces put their
    messages in the outbox in the same transaction. With ``formulary`` it takes
    orders, recording each drug's schedule as the formulary has it.
    """

    def __init__(self, engine: AsyncEngine, clock: Clock, instance: str, job_base: int,
                 receipts: AsyncEngine | None = None, *,
                 audit_key: AuditKey | None = None, formulary: Formulary | None = None) -> None:
        self.engine = engine
        self.audit_key = audit_key
        """Anchors every audit entry written through this store (None: unanchored)."""
        self.receipts = receipts or engine
        """Where the broker's acknowledgements are written (see ``open``)."""
        self.clock = clock
        self._writer = Writer(engine, sa.update(store_info).where(
            store_info.c.key == "instance").values(value=store_info.c.value), self._prepare,
            self.own_commit)
        """Every write transaction of this process, committed in groups."""
        self._watches: set[ChangeWatch] = set()
        self.receipts_lock = asyncio.Lock()
        """Held by every write of the broker's receipts in this process."""
        self.instance = instance
        """A short id of this store, part of every job id so that no two stores collide."""
        self.job_base = job_base
        """A random offset of this store's numeric job ids, for the same reason."""
        self.topics: Announcer | None = None
        """Words announced changes as outbox messages (None: nothing is announced)."""
        self.formulary = formulary
        """The drugs, for the schedule an order records at intake."""
        self.upgraded: tuple[str | None, str] | None = None
        """(from, to) when opening upgraded the store's schema."""
        self.backup: Path | None = None
        """The copy kept before that upgrade."""
        self.path: Path | None = None
        """The SQLite file (None: another database)."""
        self.orders = OrderRecords(self)
        self.vials = VialRecords(self)
        self.handwork = HandworkRecords(self)
        self.stock = StockRecords(self)
        self.calibration = CalibrationRecords(self)
        self.alarms = AlarmRecords(self)
        self.audit = AuditRecords(self)
        self.people = PeopleRecords(self)
        self.verification = VerificationRecords(self)

    @classmethod
    async def open(cls, url: str, *, clock: Clock | None = None,
                   audit_key: AuditKey | None = None,
                   formulary: Formulary | None = None, upgrade: bool = True) -> Store:
        """Open the store at ``url`` (creating a new one); its audit entries are anchored with
        ``audit_key``; it takes orders of ``formulary``'s drugs.

        An older store is upgraded to this program's schema only with ``upgrade``, after a
        backup copy (``upgraded``, ``backup`` say so); otherwise StoreNeedsUpgrade. A file
        that cannot be a store is StoreUnusable, naming it; nothing is written then.
        """
        path, engine, receipts, revision = await _engines(url, upgrade)
        sqlite = url.startswith("sqlite")
        saved = backup(path, revision) if revision.behind and path is not None else None
        async with engine.connect() as conn:
            if sqlite:
                # SQLite changes a table's schema by copying it; with foreign keys enforced,
                # dropping the old copy of a table others refer to fails on any store that
                # holds records. SQLite's own procedure: keys off (outside any transaction),
                # migrate, check every key, keys on again.
                await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            try:
                await _open(conn)
                if sqlite and (broken := (await conn.exec_driver_sql(
                        "PRAGMA foreign_key_check")).all()):
                    raise StoreError(f"after migrating, the store's records refer to records "
                                     f"that are not there ({broken[:3]}); nothing was changed")
                await conn.commit()
            finally:
                await conn.rollback()  # what did not commit above
                if sqlite:
                    await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                    await conn.commit()
            instance = await conn.scalar(
                sa.select(store_info.c.value).where(store_info.c.key == "instance"))
            job_base = await conn.scalar(
                sa.select(store_info.c.value).where(store_info.c.key == "job_base"))
        store = cls(engine, clock or Clock(), str(instance), int(str(job_base)), receipts,
                    audit_key=audit_key, formulary=formulary)
        store.path = path
        if revision.behind:
            store.upgraded = (revision.current, revision.head)
            store.backup = saved
        return store

    async def close(self) -> None:
        """Close every connection."""
        await self.engine.dispose()
        await self.receipts.dispose()

    def change_watch(self) -> ChangeWatch | None:
        """A way to notice other processes' commits cheaply (SQLite only; else None)."""
        if self.path is None:
            return None
        watch = ChangeWatch(self.path)
        self._watches.add(watch)
        return watch

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction. It holds the database's write lock from its start, so that
        what it reads stays true until it commits, even against another process (the CLI);
        it returns once committed (with others waiting at the same time: ``Writer``)."""
        async with self._writer.transaction() as conn:
            yield conn

    @contextmanager
    def own_commit(self) -> Iterator[None]:
        """A commit of this process (a group of writes, a receipt), under way: its change
        watches are not to report it as another process's."""
        self._watches = {watch for watch in self._watches if not watch.closed}
        with ExitStack() as stack:
            for watch in self._watches:
                stack.enter_context(watch.ours())
            yield

    def _prepare(self, conn: AsyncConnection) -> None:
        conn.info[AUDIT_KEY] = self.audit_key

    # -- inside a transaction --------------------------------------------------


async def _engines(url: str, upgrade: bool) -> tuple[
        Path | None, AsyncEngine, AsyncEngine, Revision]:
    """The store's file (SQLite), its engine, the engine that writes the broker's receipts,
    and its schema revision, read before anything is written."""
    if not url.startswith("sqlite"):
        engine = create_async_engine(url)
        try:
            return None, engine, engine, _may_open(await _revision(engine, url), upgrade, url)
        except BaseException:
            await engine.dispose()
            raise
    path = Path(url.split("///", 1)[1])
    check_file(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnusable(f"{path}: cannot create its folder: {exc.strerror}") from None
    # Read before the engine opens it: its first connection turns the file to WAL.
    revision = _may_open(revision_of_file(path), upgrade, str(path))
    # Its connections run a write transaction's statements without a trip to their thread
    # (controller/store/inline.py).
    engine = create_async_engine(url, async_creator=connector(str(path), timeout=FIRST_WAIT_S))
    sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    # A message leaving the outbox once the broker acknowledged it needs no fsync of its own:
    # in WAL mode a commit survives the process dying; only a power cut could undo it, and
    # then the message is sent once more. One fsync per message would cap the outbox at a
    # couple of hundred messages a second.
    receipts = create_async_engine(url, connect_args={"timeout": BUSY_S})
    sa.event.listen(receipts.sync_engine, "connect", _sqlite_receipt_pragmas)
    return path, engine, receipts, revision


def _may_open(revision: Revision, upgrade: bool, where: str) -> Revision:
    """``revision``, unless it is older than this program's and no upgrade was asked for."""
    if revision.behind and not upgrade:
        raise StoreNeedsUpgrade(
            f"{where}: holds schema revision {revision.current}, older than this rxfill's "
            f"{revision.head}: run 'rxfill store upgrade --store {where}' (it keeps a "
            f"backup copy first); nothing was changed")
    return revision


async def _revision(engine: AsyncEngine, where: str) -> Revision:
    """The store's schema revision, read before anything is written."""
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(revision_of, where)
    except sa.exc.DatabaseError as exc:
        raise StoreUnusable(f"{where}: cannot be read as a store: {exc.orig}; expected the "
                            f"SQLite file rxfill keeps") from None


async def _open(conn: AsyncConnection) -> None:
    """Migrate the store to this code's schema; give it its instance id and job base once."""
    await conn.run_sync(_migrate)
    first = {"instance": secrets.token_hex(2).upper(),
             "job_base": str(secrets.randbelow(JOB_SPACE))}
    for key, value in first.items():
        if await conn.scalar(sa.select(store_info.c.value).where(store_info.c.key == key)
                             ) is None:
            await conn.execute(sa.insert(store_info).values(key=key, value=value))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_receipt_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _migrate(connection: sa.Connection) -> None:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
