"""Whether a file can be a store, which schema revision it holds, and the backup an upgrade
makes first.

A store file that is not SQLite, is a directory or read-only, or carries a
schema this program does not know is refused in one line naming the file and
what is wrong, before anything is written. An older store is upgraded only
when asked (``rxfill store upgrade``, or ``rxfill run``, which says so), after
a backup copy.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from controller.store.errors import StoreError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_HEADER = b"SQLite format 3\x00"


class StoreUnusable(StoreError):
    """The file cannot be opened as this program's store; the message says why."""


class StoreNeedsUpgrade(StoreUnusable):
    """An older store: ``rxfill store upgrade`` brings it to this program's schema."""


@dataclass(frozen=True, slots=True)
class Revision:
    """Where a store's schema stands against this program's."""

    current: str | None
    """None: a new, empty store."""
    head: str

    @property
    def behind(self) -> bool:
        return self.current is not None and self.current != self.head


def script() -> ScriptDirectory:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config)


def check_file(path: Path) -> None:
    """StoreUnusable when ``path`` cannot be a writable SQLite store (a missing file can: it
    is created)."""
    if path.is_dir():
        raise StoreUnusable(f"{path}: is a directory; expected the SQLite file rxfill keeps")
    folder = path.parent if path.parent != Path("") else Path(".")
    if not path.exists():
        if folder.exists() and not os.access(folder, os.W_OK):
            raise StoreUnusable(f"{path}: cannot be created: the folder {folder} is read-only")
        return
    with path.open("rb") as file:
        header = file.read(len(SQLITE_HEADER))
    if header and header != SQLITE_HEADER:
        raise StoreUnusable(f"{path}: is not an SQLite database (it starts {header[:8]!r}); "
                            f"expected the SQLite file rxfill keeps")
    if not os.access(path, os.W_OK):
        raise StoreUnusable(f"{path}: is read-only; rxfill writes to its store (orders, the "
                            f"audit trail): expected a file it may write")
    if not os.access(folder, os.W_OK):
        raise StoreUnusable(f"{path}: its folder {folder} is read-only; SQLite keeps its "
                            f"journal beside the store: expected a folder rxfill may write")


def revision_of(connection: sa.Connection, where: str) -> Revision:
    """The store's revision; StoreUnusable when it is not an rxfill store, or a newer one."""
    scripts = script()
    head = scripts.get_current_head()
    assert head is not None
    current = MigrationContext.configure(connection).get_current_revision()
    if current is None:
        tables = sa.inspect(connection).get_table_names()
        if tables:
            raise StoreUnusable(f"{where}: is a database but not an rxfill store (it holds "
                                f"{', '.join(sorted(tables)[:5])}); expected rxfill's store")
        return Revision(None, head)
    try:
        scripts.get_revision(current)
    except CommandError:
        raise StoreUnusable(
            f"{where}: holds schema revision {current}, which this rxfill does not know "
            f"(a newer rxfill wrote it; this one is at {head}): use that rxfill, or a "
            f"backup; nothing was changed") from None
    return Revision(current, head)


def revision_of_file(path: Path) -> Revision:
    """The revision of the SQLite store ``path``, read without writing a byte (opening it as
    the store does would turn its journal to WAL first)."""
    if not path.exists() or path.stat().st_size == 0:
        return Revision(None, script().get_current_head() or "")
    engine = sa.create_engine("sqlite://", creator=lambda: sqlite3.connect(
        f"file:{path}?mode=ro", uri=True))
    try:
        with engine.connect() as connection:
            return revision_of(connection, str(path))
    except sa.exc.DatabaseError as exc:
        raise StoreUnusable(f"{path}: cannot be read as a store: {exc.orig}; expected the "
                            f"SQLite file rxfill keeps") from None
    finally:
        engine.dispose()


def backup(path: Path, revision: Revision) -> Path:
    """A consistent copy of the SQLite store ``path`` beside it, named for its revision and
    the time; its path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.backup-{revision.current}-{stamp}")
    source = sqlite3.connect(path)
    try:
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
        finally:
            copy.close()
    finally:
        source.close()
    return target
