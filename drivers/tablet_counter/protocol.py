"""The tablet counter's serial wire format (ICD version 1), pure: no I/O.

Frames are printable ASCII ending in CR LF, at most 128 bytes:

    request  ">" SEQ " " VERB *(" " ARG) "*" CS CR LF
    reply    "<" SEQ " " ("OK" | "ER") *(" " ARG) "*" CS CR LF
    event    "!" EVENT *(" " ARG) "*" CS CR LF

CS is the XOR of every byte after the start character and before the ``*``,
as two uppercase hex digits. The driver and the simulator both import this
module; the tests pin it to the ICD's example frames byte for byte.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

MAX_FRAME = 128
"""Longest frame on the wire, CR LF included."""
TERMINATOR = b"\r\n"
MAX_CHANNELS = 64
JOB_MEMORY = 64
"""How many jobs the device remembers, across a power cycle."""
REPLY_TIMEOUT_S = 0.100
RETRIES = 3
BITS_PER_BYTE = 10
BAUD_RATES = (9600, 19200, 38400, 57600, 115200)
DEFAULT_BAUD = 115200

_ARG = re.compile(r"[A-Za-z0-9._-]{1,32}")
_JOB = re.compile(r"[A-Za-z0-9-]{1,16}")
_SEQ = re.compile(r"[0-9A-F]{2}")
_CS = re.compile(r"[0-9A-F]{2}")
_DIGITS = re.compile(r"[0-9]{1,9}")

MAX_QUANTITY = 9999
"""CT's QTY is 1–9999; no count the device reports can be more."""
MAX_WEIGHT_MG = 99_999_999
"""The most a reply's WEIGHT_MG may say: eight digits (99 kg), far above any chute."""
MAX_SENSITIVITY = 100
MAX_GATE_MS = 500


class FrameError(ValueError):
    """Bytes that are not a frame of the ICD; the device drops these silently."""


class Verb(StrEnum):
    """Requests the host may send."""

    IDENTIFY = "ID"
    STATE = "ST"
    COUNT = "CT"
    JOB = "JB"
    ABORT = "AB"
    CLEAR = "CL"
    DONE = "DN"
    CAL_READ = "CR"
    CAL_WRITE = "CW"
    WEIGHT = "WT"
    TARE = "TZ"
    SPAN = "SP"


VERB_ARITY: dict[str, int] = {
    "ID": 0,
    "ST": 0,
    "CT": 3,
    "JB": 1,
    "AB": 0,
    "CL": 0,
    "DN": 1,
    "CR": 1,
    "CW": 3,
    "WT": 0,
    "TZ": 0,
    "SP": 1,
}
"""Number of arguments each verb takes; any other count is answered E01."""


class DeviceState(StrEnum):
    """What ``ST`` reports."""

    IDLE = "IDLE"
    COUNTING = "COUNTING"
    DONE = "DONE"
    JAM = "JAM"
    EMPTY = "EMPTY"
    DOOR = "DOOR"
    FAULT = "FAULT"


class JobState(StrEnum):
    """What ``JB`` reports of a job, and ``EN``'s STATUS (all but COUNTING)."""

    COUNTING = "COUNTING"
    DONE = "DONE"
    JAM = "JAM"
    EMPTY = "EMPTY"
    ABORTED = "ABORTED"


class EventName(StrEnum):
    """Unsolicited frames from the device."""

    PROGRESS = "PG"
    END = "EN"
    DOOR = "DR"
    POWER = "PW"


class ErrorCode(StrEnum):
    """The ICD's error table; the value is the code on the wire."""

    BAD_REQUEST = "E01"
    BAD_ARGUMENT = "E02"
    BUSY = "E10"
    NO_SUCH_CHANNEL = "E11"
    DOOR_OPEN = "E13"
    NOT_CALIBRATED = "E14"
    CHUTE_NOT_EMPTY = "E15"
    JAMMED_OR_EMPTY = "E16"
    UNKNOWN_JOB = "E20"
    JOB_CONFLICT = "E21"
    SCALE_NOT_STABLE = "E30"


ERROR_MEANING: dict[str, str] = {
    ErrorCode.BAD_REQUEST: "unknown verb or wrong number of arguments",
    ErrorCode.BAD_ARGUMENT: "an argument is out of range or malformed",
    ErrorCode.BUSY: "busy: a count is in progress",
    ErrorCode.NO_SUCH_CHANNEL: "no such channel",
    ErrorCode.DOOR_OPEN: "door open",
    ErrorCode.NOT_CALIBRATED: "channel not calibrated (SENS or GATE is 0)",
    ErrorCode.CHUTE_NOT_EMPTY: "chute not empty: the last job was not taken (DN)",
    ErrorCode.JAMMED_OR_EMPTY: "jammed or empty: clear first (CL)",
    ErrorCode.UNKNOWN_JOB: "unknown job",
    ErrorCode.JOB_CONFLICT: "job id reused with other parameters",
    ErrorCode.SCALE_NOT_STABLE: "scale not stable",
}


@dataclass(frozen=True, slots=True)
class Request:
    """Host to device."""

    seq: int
    verb: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Reply:
    """Device to host, answering the request with the same ``seq``."""

    seq: int
    ok: bool
    args: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Event:
    """Device to host, unsolicited, between replies."""

    name: str
    args: tuple[str, ...] = ()


Frame = Request | Reply | Event


def checksum(body: bytes) -> int:
    """XOR of every byte of ``body`` (the bytes between start character and ``*``)."""
    value = 0
    for byte in body:
        value ^= byte
    return value


def is_arg(text: str) -> bool:
    """True when ``text`` is a legal ARG: 1–32 of ``A–Z a–z 0–9 . _ -``."""
    return _ARG.fullmatch(text) is not None


def is_job_id(text: str) -> bool:
    """True when ``text`` is a legal JOB: 1–16 of ``A–Z a–z 0–9 -``."""
    return _JOB.fullmatch(text) is not None


def number(text: str, low: int, high: int) -> int:
    """The decimal number ``text`` when it is plain ASCII digits in ``low``…``high``.

    The ICD's numbers are unsigned decimals: a sign, an underscore, a space or
    a digit outside ASCII is not one (Python's ``int`` would take them all).
    """
    if _DIGITS.fullmatch(text) is None:
        raise FrameError(f"{text!r} is not a decimal number of at most 9 digits")
    value = int(text)
    if not low <= value <= high:
        raise FrameError(f"{value} is outside {low}-{high}")
    return value


def job_id(text: str) -> str:
    """``text`` when it is a legal JOB, else FrameError."""
    if not is_job_id(text):
        raise FrameError(f"job id {text!r} is not 1-16 characters of A-Z a-z 0-9 -")
    return text


def _check_args(args: tuple[str, ...]) -> None:
    for arg in args:
        if not is_arg(arg):
            raise FrameError(f"argument {arg!r} is not 1-32 characters of A-Z a-z 0-9 . _ -")


def _frame(start: str, body: str) -> bytes:
    raw = body.encode("ascii")
    frame = f"{start}{body}*{checksum(raw):02X}".encode("ascii") + TERMINATOR
    if len(frame) > MAX_FRAME:
        raise FrameError(f"frame is {len(frame)} bytes, the limit is {MAX_FRAME}")
    return frame


def _check_seq(seq: int) -> None:
    if not 0 <= seq <= 0xFF:
        raise FrameError(f"SEQ {seq} is outside 00-FF")


def encode(frame: Frame) -> bytes:
    """The bytes of ``frame`` as sent on the wire, CR LF included."""
    if isinstance(frame, Request):
        _check_seq(frame.seq)
        if not is_arg(frame.verb):
            raise FrameError(f"verb {frame.verb!r} is not a legal token")
        _check_args(frame.args)
        return _frame(">", " ".join((f"{frame.seq:02X}", frame.verb, *frame.args)))
    if isinstance(frame, Reply):
        _check_seq(frame.seq)
        _check_args(frame.args)
        status = "OK" if frame.ok else "ER"
        return _frame("<", " ".join((f"{frame.seq:02X}", status, *frame.args)))
    if not is_arg(frame.name):
        raise FrameError(f"event name {frame.name!r} is not a legal token")
    _check_args(frame.args)
    return _frame("!", " ".join((frame.name, *frame.args)))


def decode(data: bytes) -> Frame:
    """Parse one frame (with or without its CR LF); raise FrameError for anything else."""
    if len(data) > MAX_FRAME:
        raise FrameError(f"frame is {len(data)} bytes, the limit is {MAX_FRAME}")
    line = data[:-2] if data.endswith(TERMINATOR) else data
    if len(line) + len(TERMINATOR) > MAX_FRAME:
        raise FrameError(f"frame is over {MAX_FRAME} bytes")
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError as exc:
        raise FrameError("frame holds a byte that is not ASCII") from exc
    if len(text) < 4 or text[0] not in "<>!":
        raise FrameError("frame does not start with '>', '<' or '!'")
    if text[-3] != "*" or _CS.fullmatch(text[-2:]) is None:
        raise FrameError("frame does not end in '*' and two uppercase hex digits")
    body = text[1:-3]
    if checksum(body.encode("ascii")) != int(text[-2:], 16):
        raise FrameError(f"checksum {text[-2:]} does not match {checksum(body.encode()):02X}")
    tokens = body.split(" ")
    if any(not is_arg(token) for token in tokens):
        raise FrameError("frame holds an empty or illegal token")
    start = text[0]
    if start == "!":
        return Event(tokens[0], tuple(tokens[1:]))
    if len(tokens) < 2 or _SEQ.fullmatch(tokens[0]) is None:
        raise FrameError("frame has no SEQ of two uppercase hex digits")
    seq = int(tokens[0], 16)
    if start == ">":
        return Request(seq, tokens[1], tuple(tokens[2:]))
    if tokens[1] not in ("OK", "ER"):
        raise FrameError(f"reply status {tokens[1]!r} is neither OK nor ER")
    return Reply(seq, tokens[1] == "OK", tuple(tokens[2:]))


class FrameSplitter:
    """Cuts a byte stream into CR LF terminated lines of at most MAX_FRAME bytes.

    A line that grows past the limit is discarded up to its next CR LF, as the
    device does; what is returned may still fail :func:`decode`.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._overlong = False

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return every complete line they finish."""
        self._buffer += data
        lines: list[bytes] = []
        while True:
            end = self._buffer.find(TERMINATOR)
            if end < 0:
                if len(self._buffer) > MAX_FRAME:
                    self._overlong = True
                    # keep the last byte: it may be the CR of a CR LF pair
                    del self._buffer[:-1]
                return lines
            line = bytes(self._buffer[: end + 2])
            del self._buffer[: end + 2]
            if self._overlong or len(line) > MAX_FRAME:
                self._overlong = False
                continue
            lines.append(line)


def wire_time(nbytes: int, baud: int) -> float:
    """Seconds that ``nbytes`` take on a link at ``baud`` (10 bits a byte)."""
    return nbytes * BITS_PER_BYTE / baud
