"""Noticing that another process (the CLI) committed to the store.

SQLite keeps a number that changes whenever another connection commits (``PRAGMA
data_version``): reading it is a few microseconds and takes no lock. When to read it: on
Linux, whenever a file in the store's folder is written (inotify: a commit is appended to the
``-wal`` file), so that a change is seen within a millisecond and an idle site spends nothing;
elsewhere, every ``period``.

The watch's own connection sees this process's commits as another's too; so the store tells
it when a commit of its own begins and ends (``ours``): a change seen before one of ours
began is another's, and the number is taken anew when ours has ended. Ours holds the
database's write lock from before it begins to its end, so no other process's commit falls
in between.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from controller.store.inotify import folder_watch

SETTLE_S = (0, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064)
"""After a write, the waits before each look while its commit settles (0.13 s in all)."""


class ChangeWatch:
    """Whether another process committed to the SQLite file at ``path`` since the last look."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout=0")
        self._seen = self._version()
        self._pending = False
        """Another's change, seen as one of ours began."""
        self._ours = 0
        """Commits of ours under way."""
        self._written = asyncio.Event()
        self._folder = folder_watch(path.parent)
        if self._folder is not None:
            asyncio.get_running_loop().add_reader(self._folder.fd, self._on_written)
        self.closed = False

    def _version(self) -> int | None:
        try:
            return int(self._db.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.OperationalError:
            return None  # busy for a moment: taken as a change

    def _on_written(self) -> None:
        assert self._folder is not None
        self._folder.drain()
        self._written.set()

    async def changes(self, period: float) -> None:
        """Until another process committed (or one may have: a look that failed)."""
        while True:
            if self._folder is None:
                await asyncio.sleep(period)
                if self.look():
                    return
                continue
            await self._written.wait()
            self._written.clear()
            # The file is written before the commit shows in the number (SQLite appends
            # the frames, syncs them, then marks them committed): look again as it settles.
            for settle in SETTLE_S:
                await asyncio.sleep(settle)
                if self.look():
                    return
                if self._written.is_set():
                    break  # written again: start over

    def look(self) -> bool:
        """Another process committed since the last look."""
        found, self._pending = self._pending, False
        if self._ours:
            return found  # ours is under way: what changes now is decided when it ends
        version = self._version()
        if version is None or version != self._seen:
            self._seen = version
            return True
        return found

    @contextmanager
    def ours(self) -> Iterator[None]:
        """A commit of this process, under way: not a change to report."""
        if not self._ours and (version := self._version()) != self._seen:
            self._pending, self._seen = True, version
        self._ours += 1
        try:
            yield
        finally:
            self._ours -= 1
            if not self._ours and not self.closed:
                self._seen = self._version()

    def close(self) -> None:
        """Close its connection and its folder watch."""
        self.closed = True
        if self._folder is not None:
            asyncio.get_running_loop().remove_reader(self._folder.fd)
            self._folder.close()
        self._db.close()
