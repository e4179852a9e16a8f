"""One supervisor per store: a lock on ``<store>.lock`` held for the supervisor's life.

Two supervisors on one store would each take the other's queued orders and
open fills for their own, and send them to the robots again. The operating
system releases the lock when the process ends, however it ends (SIGKILL
included), so a crashed supervisor never leaves a store locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path


class StoreInUse(RuntimeError):
    """Another process supervises this store."""


def lock_path(store: Path) -> Path:
    """The lock file beside ``store``."""
    return store.with_name(store.name + ".lock")


@contextlib.contextmanager
def supervising(store: Path) -> Iterator[None]:
    """Hold ``store``'s supervisor lock for the block; StoreInUse names the holder."""
    path = lock_path(store)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)  # a new store's folder, as Store.open
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreInUse(f"cannot lock store {store}: {path}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "unknown"
            raise StoreInUse(
                f"store {store} is in use by another supervisor ({holder}); two on one store "
                f"would fill the same orders twice: stop that one first, or give this one "
                f"another --store") from None
        os.ftruncate(fd, 0)
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:2]])
        os.pwrite(fd, f"process {os.getpid()}, {command}, since "
                      f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
