"""What a driver says on the wire and hears back, for a person to read: each frame (serial) or
register read and write (Modbus), timestamped, as it happens.

A driver holds a :class:`Tap`. Nobody listening costs one attribute test per frame; a
listener (``rxfill diag trace``, the console's Maintenance page, a recorder) gets every
:class:`Frame` from then on. A trace saved as JSON lines replays against a driver in a test
(:mod:`simulators.replay`), so a fault seen at a site becomes a test here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

TX, RX = "tx", "rx"
"""Host to device, device to host."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame on the wire, or one register exchange, as text."""

    at: float
    """Seconds since the epoch."""
    device: str
    direction: str
    """``tx`` (host to device) or ``rx`` (device to host)."""
    text: str

    def line(self) -> str:
        """For a screen: time, device, arrow, text."""
        moment = datetime.fromtimestamp(self.at, UTC).strftime("%H:%M:%S.%f")[:-3]
        return f"{moment}  {self.device:<8} {'→' if self.direction == TX else '←'} {self.text}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=True)

    @classmethod
    def from_json(cls, text: str) -> Frame:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("direction") not in (TX, RX):
            raise ValueError(f"not a trace line: {text[:60]!r}")
        return cls(float(data["at"]), str(data["device"]), data["direction"], str(data["text"]))


_ESCAPED = {13: "\\r", 10: "\\n", 92: "\\\\"}


def printable(raw: bytes) -> str:
    """A serial frame as text: printable ASCII as is; CR, LF, the backslash and every other
    byte escaped as Python writes them (``\\r``, ``\\x00``)."""
    return "".join(_ESCAPED.get(b) or (chr(b) if 32 <= b < 127 else f"\\x{b:02x}")
                   for b in raw)


def unprintable(text: str) -> bytes:
    """The bytes :func:`printable` made ``text`` of."""
    return text.encode("ascii").decode("unicode_escape").encode("latin-1")


class Tap:
    """A driver's wire, for whoever listens."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._listeners: set[Callable[[Frame], None]] = set()

    @property
    def listening(self) -> bool:
        return bool(self._listeners)

    def listen(self, listener: Callable[[Frame], None]) -> Callable[[], None]:
        """Send every frame from now on to ``listener``; call what this returns to stop."""
        self._listeners.add(listener)
        return lambda: self._listeners.discard(listener)

    def record(self, direction: str, text: str) -> None:
        if self._listeners:
            frame = Frame(time.time(), self.device, direction, text)
            for listener in list(self._listeners):
                listener(frame)

    def modbus(self, client: Any) -> Any:
        """``client`` itself, or (while someone listens) one whose requests are traced."""
        return _TracedModbus(client, self) if self._listeners else client


_READS = {"read_input_registers": "ir", "read_holding_registers": "hr",
          "read_discrete_inputs": "di", "read_coils": "co"}


class _TracedModbus:
    """A pymodbus client whose register reads and writes are recorded on a tap."""

    def __init__(self, client: Any, tap: Tap) -> None:
        self._client = client
        self._tap = tap

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if name in _READS:
            return self._traced(method, _READS[name], write=False)
        if name in ("write_registers", "write_register"):
            return self._traced(method, "hr", write=True)
        return method

    def _traced(self, method: Callable[..., Awaitable[Any]], table: str,
                write: bool) -> Callable[..., Awaitable[Any]]:
        async def call(address: int, *args: Any, **kwargs: Any) -> Any:
            given = args[0] if args else kwargs.get("values", kwargs.get("value", []))
            values = list(given) if isinstance(given, list | tuple) else [given]
            count = len(values) if write else int(kwargs.get("count", args[0] if args else 1))
            span = f"{table}:{address}-{address + count - 1}"
            unit = kwargs.get("device_id", "")
            said = " ".join(str(v) for v in values)
            self._tap.record(TX, f"write {span} = {said} (unit {unit})" if write
                             else f"read {span} (unit {unit})")
            try:
                reply = await method(address, *args, **kwargs)
            except Exception as exc:
                self._tap.record(RX, f"{span}: {type(exc).__name__}: {exc}")
                raise
            self._tap.record(RX, _reply_text(span, reply, write))
            return reply
        return call


def _reply_text(span: str, reply: Any, write: bool) -> str:
    if reply.isError():
        return f"{span}: exception {getattr(reply, 'exception_code', '?')}"
    if write:
        return f"{span}: written"
    values = reply.registers if hasattr(reply, "registers") and reply.registers else reply.bits
    return f"{span} = {' '.join(str(int(v)) for v in values)}"
