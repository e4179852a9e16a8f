"""Linux's inotify, through libc: a file descriptor that becomes readable when a file in a
folder is written. With it a site hears of another process's commit (SQLite appends it to the
``-wal`` file) the moment it happens, and costs nothing while nobody writes.

Only what ``ChangeWatch`` needs: one folder, modifications and creations, drained on each
wake. ``folder_watch`` returns None where there is no inotify (another system, a libc without
it, the watch limit reached): the caller falls back to looking now and then.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
from pathlib import Path

IN_MODIFY = 0x00000002
IN_CREATE = 0x00000100
IN_MOVED_TO = 0x00000080


class FolderWatch:
    """A readable file descriptor whenever a file in the folder was written or created."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def drain(self) -> None:
        """Read the pending events (what they say does not matter: something was written)."""
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while os.read(self.fd, 65536):
                pass

    def close(self) -> None:
        """Stop watching."""
        os.close(self.fd)


def folder_watch(folder: Path) -> FolderWatch | None:
    """Watch ``folder`` for written files; None where inotify is not to be had."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        init, add = libc.inotify_init1, libc.inotify_add_watch
    except (OSError, AttributeError):
        return None
    fd = init(os.O_NONBLOCK | os.O_CLOEXEC)
    if fd < 0:
        return None
    if add(fd, os.fsencode(folder), IN_MODIFY | IN_CREATE | IN_MOVED_TO) < 0:
        os.close(fd)
        return None
    return FolderWatch(fd)
