"""A recorded tablet-counter trace played back as the device, on a real socket.

``rxfill diag trace ROBOT --file F`` records what a driver sent and heard. Served here, that
trace answers a driver as the robot did at the site: each request the host sends is matched
with the next recorded request (the same verb and arguments; its SEQ is the host's own), and
answered with what the device sent after it then, in the same order: replies (their SEQ and
checksum remade for the host's), events, and garbage as it was. A recorded request the device
never answered is answered by silence again. So a fault seen at a site becomes a test here.

A request that is not the next one recorded gets no answer, and is kept in ``mismatches``:
the driver under test did something else than the one recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from drivers.tablet_counter import protocol as wire
from drivers.trace import RX, TX, Frame, unprintable


@dataclass
class Step:
    """A recorded request and what the device sent after it, until the next request."""

    verb: str
    args: tuple[str, ...]
    seq: int
    answers: list[bytes] = field(default_factory=list)

    def said(self) -> str:
        return " ".join((self.verb, *self.args))


def steps_of(frames: list[Frame]) -> tuple[list[bytes], list[Step]]:
    """What the device sent before the first request, and each request with its answers."""
    opening: list[bytes] = []
    steps: list[Step] = []
    for frame in frames:
        raw = unprintable(frame.text)
        if frame.direction == TX:
            request = wire.decode(raw)
            if not isinstance(request, wire.Request):
                raise ValueError(f"a recorded request that is not one: {frame.text}")
            steps.append(Step(request.verb, request.args, request.seq))
        elif frame.direction == RX:
            (steps[-1].answers if steps else opening).append(raw)
    return opening, steps


def read_trace(path: Path) -> list[Frame]:
    """A trace file: one frame a line, as ``Frame.to_json`` wrote it."""
    with path.open(encoding="utf-8") as lines:
        return [Frame.from_json(line) for line in lines if line.strip()]


class CounterReplay:
    """Plays ``frames`` back to one host on TCP (``socket://127.0.0.1:PORT``)."""

    def __init__(self, frames: list[Frame]) -> None:
        self.opening, self.steps = steps_of(frames)
        self.played = 0
        """How many recorded requests were matched and answered."""
        self.mismatches: list[str] = []
        self.url = ""
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def done(self) -> bool:
        """Every recorded request came, in order."""
        return self.played == len(self.steps)

    async def listen_tcp(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        self.url = f"socket://{host}:{port}"
        return self.url

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            for raw in self.opening:
                writer.write(raw)
            splitter = wire.FrameSplitter()
            while chunk := await reader.read(512):
                for line in splitter.feed(chunk):
                    for raw in self._answer(line):
                        writer.write(raw)
                    await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    def _answer(self, line: bytes) -> list[bytes]:
        try:
            request = wire.decode(line)
        except wire.FrameError as exc:
            self.mismatches.append(f"a frame the host should not send: {line!r} ({exc})")
            return []
        if not isinstance(request, wire.Request):
            return []
        if self.played == len(self.steps):
            self.mismatches.append(f"{request.verb} {' '.join(request.args)} after the trace "
                                   f"ended")
            return []
        step = self.steps[self.played]
        if (request.verb, request.args) != (step.verb, step.args):
            self.mismatches.append(f"the host sent {' '.join((request.verb, *request.args))}; "
                                   f"the trace has {step.said()} next")
            return []
        self.played += 1
        return [self._for_host(raw, step.seq, request.seq) for raw in step.answers]

    @staticmethod
    def _for_host(raw: bytes, recorded_seq: int, seq: int) -> bytes:
        """A recorded reply to the recorded SEQ, made out to the host's; anything else as is."""
        with contextlib.suppress(wire.FrameError):
            frame = wire.decode(raw)
            if isinstance(frame, wire.Reply) and frame.seq == recorded_seq:
                return wire.encode(wire.Reply(seq, frame.ok, frame.args))
        return raw

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            await self._server.wait_closed()
