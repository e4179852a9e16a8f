"""The tablet counter's serial line: frames in, replies and events out, at wire speed.

Listens on a pty (the host opens the printed path) or on TCP (the host opens
``socket://host:port``). Every frame out waits its wire time at the
configured baud, one after another, so a reply and an event never overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from types import TracebackType
from typing import Self

import structlog

from drivers.tablet_counter import protocol as wire
from simulators.clock import MachineClock
from simulators.pacing import Pacer
from simulators.ports import Port, PtyPort, StreamPort
from simulators.tablet_counter.device import TabletCounterDevice
from simulators.tablet_counter.parts import SimChannel

log = structlog.get_logger(__name__)

REPLY_LATENCY_S = (0.005, 0.040)
"""The real machine answers in 5-40 ms (machine time)."""


class CounterSimulator:
    """A simulated tablet counter listening on a pty or a TCP port.

    ``time_scale`` speeds up every machine duration (counting, settling,
    progress, reply latency); the wire time of each byte at ``baud`` stays real.
    """

    def __init__(
        self,
        *,
        channels: int | list[SimChannel] = 8,
        seed: int = 0,
        time_scale: float = 1.0,
        baud: int = wire.DEFAULT_BAUD,
        scale_noise_mg: float = 1.0,
    ) -> None:
        if baud not in wire.BAUD_RATES:
            raise ValueError(f"baud {baud} is not one of {wire.BAUD_RATES}")
        self.baud = baud
        self.clock = MachineClock(time_scale)
        self.device = TabletCounterDevice(channels=channels, seed=seed, clock=self.clock,
                                          scale_noise_mg=scale_noise_mg)
        self.device.emit = self._emit
        self.url = ""
        self.received: list[bytes] = []
        """Every request frame received, in order (for tests)."""
        self._latency = random.Random(f"{seed}-link")
        self._pacer: Pacer | None = None
        self._port: Port | None = None
        self._pty: PtyPort | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle ---------------------------------------------------------

    async def listen_pty(self) -> str:
        """Open a pty pair and serve on it; returns the path the host opens."""
        self._pty = PtyPort()
        self._port = self._pty
        self._pacer = Pacer()
        self._spawn(self._serve(self._pty), "serve-pty")
        self.url = self._pty.path
        return self.url

    async def listen_tcp(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on TCP, one host at a time; returns ``socket://host:port``."""
        self._server = await asyncio.start_server(self._accept, host, port)
        bound = self._server.sockets[0].getsockname()
        self._pacer = Pacer()
        self.url = f"socket://{bound[0]}:{bound[1]}"
        return self.url

    async def close(self) -> None:
        """Stop serving and close every port."""
        self.device.stop()
        if self._server is not None:
            self._server.close()
        if self._port is not None:
            self._port.close()
        if self._pacer is not None:
            self._pacer.cancel()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- faults on the link ------------------------------------------------

    def drop_replies(self, n: int = 1) -> None:
        """The next ``n`` replies are never sent (the device still acts)."""
        self.device.faults.drop_replies += n

    def garble_replies(self, n: int = 1) -> None:
        """The next ``n`` replies go out with a wrong checksum."""
        self.device.faults.garble_replies += n

    def power_cycle(self, off_s: float = 0.5) -> None:
        """Cut the device's power for ``off_s`` machine seconds, in the background."""
        self._spawn(self.device.power_cycle(off_s), "power-cycle")

    def cut_link(self) -> None:
        """Hang up on the host (TCP); the device keeps working."""
        if self._port is not None and self._port is not self._pty:
            self._port.close()
            self._port = None
            if self._pacer is not None:
                self._pacer.cancel()  # what was on its way went with the link

    # -- the line ----------------------------------------------------------

    def _spawn(self, coro: object, name: str) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro, name=name)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._port is not None:
            self._port.close()  # a serial line has one host: the newest wins
        port = StreamPort(reader, writer)
        self._port = port
        try:
            await self._serve(port)
        finally:
            port.close()
            if self._port is port:
                self._port = None

    async def _serve(self, port: Port) -> None:
        splitter = wire.FrameSplitter()
        while data := await port.read():
            arrived = self._line.now()  # a pty passes a frame at once: it began now
            for line in splitter.feed(data):
                try:
                    frame = wire.decode(line)
                except wire.FrameError:
                    continue  # the device drops what is not a frame, silently
                if isinstance(frame, wire.Request):
                    self.received.append(line)
                    self._answer(frame, arrived + wire.wire_time(len(line), self.baud))

    @property
    def _line(self) -> Pacer:
        if self._pacer is None:
            raise RuntimeError("the simulator is not listening")
        return self._pacer

    def _answer(self, request: wire.Request, received: float) -> None:
        """Act on a request that was whole at ``received``; its reply goes out once the
        device's latency has passed and the line is free, after the reply's own wire time."""
        reply = self.device.handle(request)
        if reply is None:
            return
        latency = self._latency.uniform(*REPLY_LATENCY_S) / self.clock.time_scale
        faults = self.device.faults
        if faults.drop_replies > 0:
            faults.drop_replies -= 1
            faults.log.append(f"dropped reply to {request.seq:02X} {request.verb}")
            return
        frame = wire.encode(reply)
        if faults.garble_replies > 0:
            faults.garble_replies -= 1
            faults.log.append(f"garbled reply to {request.seq:02X} {request.verb}")
            bad = (int(frame[-4:-2], 16) ^ 0x5A) & 0xFF
            frame = frame[:-4] + f"{bad:02X}".encode() + wire.TERMINATOR
        self._send(frame, received + latency)

    def _emit(self, event: wire.Event) -> None:
        if self._pacer is not None:
            self._send(wire.encode(event), self._pacer.now())

    def _send(self, frame: bytes, ready: float) -> None:
        """Put ``frame`` on the line once it is ``ready`` and the line is free."""
        deadline = self._line.after_line(ready, wire.wire_time(len(frame), self.baud))
        self._line.at(deadline, lambda: self._port.write(frame) if self._port else None)
