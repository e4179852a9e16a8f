"""The byte pipes a simulator listens on: a pty pair, or a TCP socket.

A pty ignores baud, so whoever writes to one waits each frame's wire time
itself; these classes only move bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from typing import Protocol


class Port(Protocol):
    """One connected byte stream."""

    async def read(self) -> bytes:
        """The next bytes received; b"" when the peer has gone."""
        ...

    def write(self, data: bytes) -> None:
        """Send ``data`` (dropped if nobody is listening, as on a real line)."""
        ...

    def close(self) -> None:
        """Hang up."""
        ...


class PtyPort:
    """The simulator's end of a pty pair; the host opens :attr:`path`.

    The simulator keeps the other end open too, so that a host that closes and
    reopens the port finds the same device there.
    """

    def __init__(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        tty.setraw(self._master)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self._data: asyncio.Queue[bytes] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._master, self._on_readable)
        self._closed = False

    def _on_readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data:
            self._data.put_nowait(data)

    async def read(self) -> bytes:
        """The next bytes the host wrote."""
        if self._closed:
            return b""
        return await self._data.get()

    def write(self, data: bytes) -> None:
        """Write to the host; bytes that do not fit are lost, as on a line nobody reads."""
        if self._closed:
            return
        with contextlib.suppress(BlockingIOError, InterruptedError, OSError):
            os.write(self._master, data)

    def close(self) -> None:
        """Close both ends."""
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._master)
        self._data.put_nowait(b"")
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class StreamPort:
    """A TCP connection accepted by the simulator."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self) -> bytes:
        """The next bytes the host sent; b"" once it hung up."""
        try:
            return await self._reader.read(4096)
        except (ConnectionError, OSError):
            return b""

    def write(self, data: bytes) -> None:
        """Send to the host; lost if it has gone."""
        if not self._writer.is_closing():
            self._writer.write(data)

    def close(self) -> None:
        """Hang up."""
        self._writer.close()
