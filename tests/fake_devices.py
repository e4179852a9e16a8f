"""Devices that answer the drivers with whatever a test says: garbage, stale, foreign.

Real sockets, hand-made frames: the driver under test cannot tell these from a
robot whose firmware misbehaves. Each answers one host at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

from drivers.tablet_counter import protocol as wire

CounterAnswer = Callable[[wire.Request], list[bytes]]
"""The raw bytes to send back for one request (none: stay silent)."""

PduAnswer = Callable[[int, bytes], Awaitable[bytes | None]]
"""The PDU (function code first) to answer a unit's request PDU with; None: stay silent."""


def counter_reply(seq: int, *args: str, ok: bool = True) -> bytes:
    """A well-formed reply frame whose arguments may say anything an ARG can hold."""
    body = " ".join((f"{seq:02X}", "OK" if ok else "ER", *args))
    return f"<{body}*{wire.checksum(body.encode()):02X}\r\n".encode()


def counter_event(*tokens: str) -> bytes:
    """A well-formed event frame."""
    body = " ".join(tokens)
    return f"!{body}*{wire.checksum(body.encode()):02X}\r\n".encode()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def _serving(handle: Handler) -> AsyncIterator[int]:
    """A loopback TCP server running ``handle`` for each host; yields its port, and on the
    way out hangs up on every host and waits for each handler to end."""
    writers: list[asyncio.StreamWriter] = []
    serving: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        serving.add(asyncio.current_task())  # type: ignore[arg-type]
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await handle(reader, writer)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await asyncio.gather(*serving, return_exceptions=True)
        await server.wait_closed()


@contextlib.asynccontextmanager
async def scripted_counter(answer: CounterAnswer) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A counter on TCP answering through ``answer``; yields its url and a list to push bytes."""
    pushes: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        splitter = wire.FrameSplitter()
        while chunk := await reader.read(512):
            for line in splitter.feed(chunk):
                try:
                    frame = wire.decode(line)
                except wire.FrameError:
                    continue
                if isinstance(frame, wire.Request):
                    for out in [*pushes, *answer(frame)]:
                        writer.write(out)
                    pushes.clear()
                    await writer.drain()

    async with _serving(handle) as port:
        yield f"socket://127.0.0.1:{port}", pushes


@contextlib.asynccontextmanager
async def scripted_modbus(answer: PduAnswer) -> AsyncIterator[str]:
    """A Modbus TCP device answering each request PDU through ``answer``; yields its url."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            header = await reader.readexactly(7)
            tid, _protocol, length, unit = struct.unpack(">HHHB", header)
            pdu = await reader.readexactly(length - 1)
            out = await answer(unit, pdu)
            if out is not None:
                writer.write(struct.pack(">HHHB", tid, 0, len(out) + 1, unit) + out)
                await writer.drain()

    async with _serving(handle) as port:
        yield f"modbus-tcp://127.0.0.1:{port}"


class ModbusUpstream:
    """A raw Modbus TCP connection to a real device, for a fake that forwards and then lies."""

    def __init__(self, url: str) -> None:
        host, _, port = url.removeprefix("modbus-tcp://").rpartition(":")
        self.host, self.port = host, int(port)
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._tid = 0

    async def ask(self, unit: int, pdu: bytes) -> bytes:
        """Send ``pdu`` to ``unit``; the reply's PDU."""
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        self._tid = (self._tid + 1) & 0xFFFF
        writer.write(struct.pack(">HHHB", self._tid, 0, len(pdu) + 1, unit) + pdu)
        await writer.drain()
        _tid, _protocol, length, _unit = struct.unpack(">HHHB", await reader.readexactly(7))
        return await reader.readexactly(length - 1)

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


class Cable:
    """A TCP cable between a driver and a device that a test can cut and mend.

    Cut, it carries nothing either way and hangs up no one: a pulled network
    cable, which only a request that goes unanswered reveals. ``url`` is the
    device's url with the cable's own address.
    """

    def __init__(self, device_url: str) -> None:
        scheme, _, address = device_url.rpartition("://")
        host, _, port = address.rpartition(":")
        self._scheme, self._host, self._port = scheme, host, int(port)
        self.url = ""
        self.cut_now = False
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> Cable:
        self._server = await asyncio.start_server(self._connect, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"{self._scheme}://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def cut(self) -> None:
        self.cut_now = True

    def mend(self) -> None:
        """Carry bytes again; connections made while cut are hung up, as a switch would."""
        self.cut_now = False
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_now:
            self._writers.append(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self._host, self._port)
        except OSError:
            writer.close()
            return
        self._writers += [writer, up_writer]
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.get_running_loop().create_task(self._carry(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _carry(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await source.read(4096):
                if not self.cut_now:
                    sink.write(data)
                    await sink.drain()
        sink.close()
