"""A recorded vial-filler trace played back as the device, over Modbus TCP on a real socket.

A filler's driver polls and beats its heartbeat on its own clock, so the reads in a replay do
not come in the recorded order or number. What must come in order are the host's commands: the
trace is cut at each write (other than the heartbeat's), and between two writes each read is
answered with the next answer recorded there for the same registers, the last one again once
they run out: the device's state moves on as it did at the site, at the pace the host reads
it. A write must be the next one recorded (its heartbeat register aside); it is answered as it
was then, and the replay moves past it. A write that is not is answered with exception 4 and
kept in ``mismatches``.
"""

from __future__ import annotations

import asyncio
import re
import struct
from dataclasses import dataclass, field

from drivers.trace import RX, TX, Frame
from drivers.vial_filler.protocol import Holding

_SPAN = re.compile(r"(?P<table>hr|ir|di|co):(?P<first>\d+)-(?P<last>\d+)")
_READ_FC = {2: "di", 3: "hr", 4: "ir", 1: "co"}
DEVICE_FAILURE = 4


@dataclass
class Write:
    """A recorded write and the device's answer (None: it did not answer)."""

    address: int
    values: list[int]
    answer: int | None
    """0: written; else the exception code."""

    def matches(self, address: int, values: list[int]) -> bool:
        if (address, len(values)) != (self.address, len(self.values)):
            return False
        beat = Holding.HEARTBEAT - address
        return all(a == b for i, (a, b) in enumerate(zip(values, self.values, strict=True))
                   if i != beat)


@dataclass
class Segment:
    """The reads between two writes: each span's answers, in order."""

    reads: dict[str, list[list[int] | int | None]] = field(default_factory=dict)
    """Values read, an exception code, or None (no answer)."""


def _span(text: str) -> tuple[str, int, int]:
    found = _SPAN.search(text)
    if found is None:
        raise ValueError(f"not a register exchange: {text}")
    return found["table"], int(found["first"]), int(found["last"])


def _answer(text: str) -> list[int] | int | None:
    if " = " in text:
        return [int(v) for v in text.split(" = ", 1)[1].split()]
    if "exception" in text:
        return int(text.rsplit(" ", 1)[1])
    return None if ": " in text and "written" not in text else 0


def segments_of(frames: list[Frame]) -> tuple[list[Segment], list[Write]]:
    """The reads between the writes, and the writes (the heartbeat's left out)."""
    segments: list[Segment] = [Segment()]
    writes: list[Write] = []
    pending: Frame | None = None
    for frame in [*frames, None]:
        if pending is not None and (frame is None or frame.direction == TX):
            _record(pending, None, segments, writes)  # asked, and never answered
            pending = None
        if frame is None:
            break
        if frame.direction == TX:
            pending = frame
        elif frame.direction == RX and pending is not None:
            _record(pending, frame, segments, writes)
            pending = None
    return segments, writes


def _record(asked: Frame, said: Frame | None, segments: list[Segment],
            writes: list[Write]) -> None:
    table, first, last = _span(asked.text)
    answer = _answer(said.text) if said is not None else None
    if asked.text.startswith("write "):
        if (first, last) == (Holding.HEARTBEAT, Holding.HEARTBEAT):
            return
        values = [int(v) for v in asked.text.split(" = ", 1)[1].split(" (")[0].split()]
        writes.append(Write(first, values, answer if isinstance(answer, int) else None))
        segments.append(Segment())
    else:
        segments[-1].reads.setdefault(f"{table}:{first}-{last}", []).append(answer)


class FillerReplay:
    """Plays ``frames`` back to one host on Modbus TCP (``modbus-tcp://127.0.0.1:PORT``)."""

    def __init__(self, frames: list[Frame]) -> None:
        self.segments, self.writes = segments_of(frames)
        self.written = 0
        """How many recorded writes came, in order."""
        self.mismatches: list[str] = []
        self.url = ""
        self._taken: dict[str, int] = {}
        self._last: dict[str, list[int] | int | None] = {}
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def done(self) -> bool:
        return self.written == len(self.writes)

    async def listen_tcp(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        self.url = f"modbus-tcp://{host}:{port}"
        return self.url

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readexactly(7)
                tid, _, length, unit = struct.unpack(">HHHB", head)
                pdu = await reader.readexactly(length - 1)
                reply = self._reply(pdu)
                if reply is not None:
                    writer.write(struct.pack(">HHHB", tid, 0, len(reply) + 1, unit) + reply)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def _reply(self, pdu: bytes) -> bytes | None:
        fc = pdu[0]
        if fc in _READ_FC:
            address, count = struct.unpack(">HH", pdu[1:5])
            return self._read(fc, f"{_READ_FC[fc]}:{address}-{address + count - 1}", count)
        if fc == 6:
            address, value = struct.unpack(">HH", pdu[1:5])
            return self._write(fc, address, [value], pdu[1:5])
        if fc == 16:
            address, count = struct.unpack(">HH", pdu[1:5])
            values = list(struct.unpack(f">{count}H", pdu[6:6 + 2 * count]))
            return self._write(fc, address, values, pdu[1:5])
        return bytes([fc | 0x80, 1])

    def _read(self, fc: int, key: str, count: int) -> bytes | None:
        answers = self.segments[self.written].reads.get(key, [])
        taken = self._taken.get(key, 0)
        if taken < len(answers):
            self._taken[key] = taken + 1
            self._last[key] = answers[taken]
        if key not in self._last:
            self.mismatches.append(f"read {key}: never read in the trace so far")
            return bytes([fc | 0x80, DEVICE_FAILURE])
        answer = self._last[key]
        if answer is None:
            return None
        if isinstance(answer, int):
            return bytes([fc | 0x80, answer])
        values = answer[:count]
        if fc in (1, 2):
            packed = bytes(sum(bit << i for i, bit in enumerate(values[at:at + 8]))
                           for at in range(0, count, 8))
            return bytes([fc, len(packed)]) + packed
        return bytes([fc, 2 * count]) + struct.pack(f">{count}H", *values)

    def _write(self, fc: int, address: int, values: list[int], echo: bytes) -> bytes | None:
        if (address, len(values)) == (Holding.HEARTBEAT, 1):
            return bytes([fc]) + echo
        if self.written == len(self.writes) or not self.writes[self.written].matches(
                address, values):
            expected = (f"write hr:{self.writes[self.written].address} = "
                        f"{self.writes[self.written].values}" if not self.done
                        else "nothing more")
            self.mismatches.append(f"the host wrote hr:{address} = {values}; the trace has "
                                   f"{expected} next")
            return bytes([fc | 0x80, DEVICE_FAILURE])
        answer = self.writes[self.written].answer
        self.written += 1
        self._taken.clear()
        if answer is None:
            return None
        return bytes([fc]) + echo if answer == 0 else bytes([fc | 0x80, answer])
