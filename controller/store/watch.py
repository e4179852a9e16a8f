"""Noticing that another process (the CLI) committed to the store.

SQLite keeps a number that changes whenever another connection commits (``PRAGMA
data_version``): reading it is a few microseconds and takes no lock, so a site can look many
times a second at no cost worth counting, and check its alarms and wake its publisher as soon
as the CLI changed a bin or put an alarm in the outbox, instead of on its next tick.

The watch's own connection sees this process's commits as another's too; so the store tells
it of each of its own as it ends (``ours``), and the watch takes the number anew. A commit of
another process in the instant between ours and that is taken for ours: its alarms wait for
the next tick, as every change did before.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


class ChangeWatch:
    """Whether another process committed to the SQLite file at ``path`` since the last look."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout=0")
        self._seen = self._version()
        self.closed = False

    def _version(self) -> int | None:
        try:
            return int(self._db.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.OperationalError:
            return None  # busy for a moment

    def look(self) -> bool:
        """Another process committed since the last look (or it could not tell)."""
        version = self._version()
        if version is not None and version == self._seen:
            return False
        self._seen = version
        return True

    def ours(self) -> None:
        """This process just committed: not a change to report."""
        self._seen = self._version()

    def close(self) -> None:
        """Close its connection."""
        self.closed = True
        self._db.close()
