"""The tablet counter driver: the ICD's serial frames over a pty, a serial port or TCP.

One request at a time, each with the next SEQ; a reply missing after the
reply timeout is asked for again with the same frame and SEQ (the device
answers a repeated SEQ from memory without acting twice), up to ``retries``
times. Events that arrive between replies go to every :meth:`events` reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets

import serial
import serial_asyncio_fast
import structlog

from drivers.base import (
    Calibration,
    CounterEvent,
    CounterStatus,
    CountState,
    DoorMoved,
    Identity,
    JobEnded,
    JobOutcome,
    JobReport,
    OpensAsContext,
    PoweredUp,
    Progress,
    ScaleReading,
)
from drivers.errors import (
    DeviceError,
    DriverError,
    LinkError,
    NotConnectedError,
    ProtocolError,
    ReplyTimeout,
)
from drivers.events import Backlog, EventStream, deliver
from drivers.tablet_counter import protocol as wire
from drivers.tablet_counter.replies import END_STATUSES, ERRORS
from drivers.tablet_counter.settings import SerialCounterSettings
from drivers.trace import RX, TX, Tap, printable

log = structlog.get_logger(__name__)

class SerialTabletCounter(OpensAsContext):
    """A tablet counter speaking the vendor's serial ICD.

    ``url`` is a device path (``/dev/ttyUSB0``, a pty) or a pyserial URL such
    as ``socket://host:port``. ``reply_timeout`` is the ICD's 100 ms, counted
    after the request's own wire time; ``retries`` is how many times the same
    frame is sent again before :class:`ReplyTimeout`.
    """

    kind = "tablet-counter"
    settings = SerialCounterSettings
    max_channels = wire.MAX_CHANNELS

    @classmethod
    def configured(cls, settings: SerialCounterSettings, *, name: str, url: str,
                   time_scale: float = 1.0) -> SerialTabletCounter:
        """The driver as its ``driver`` table sets it (the ICD's timeouts are the device's,
        not the clock's: ``time_scale`` changes nothing)."""
        return cls(name=name, url=url, baud=settings.baud,
                   reply_timeout=settings.reply_timeout_ms / 1000, retries=settings.retries)

    def __init__(
        self,
        *,
        name: str,
        url: str,
        baud: int = wire.DEFAULT_BAUD,
        reply_timeout: float = wire.REPLY_TIMEOUT_S,
        retries: int = wire.RETRIES,
    ) -> None:
        if baud not in wire.BAUD_RATES:
            raise ValueError(f"baud {baud} is not one of {wire.BAUD_RATES}")
        self.name = name
        self.url = url
        self.baud = baud
        self.reply_timeout = reply_timeout
        self.retries = retries
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._receiver: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._seq = 0
        self._pending: tuple[int, asyncio.Future[wire.Reply]] | None = None
        self._listeners: set[Backlog[CounterEvent]] = set()
        self._lost: str | None = None
        self.trace = Tap(name)

    # -- lifecycle ---------------------------------------------------------


    async def open(self) -> None:
        """Open the link; raise NotConnectedError when the port cannot be opened."""
        if self._writer is not None:
            raise DriverError("already open: a driver is reusable but not re-entrant",
                              device=self.name)
        try:
            reader, writer = await serial_asyncio_fast.open_serial_connection(
                url=self.url, baudrate=self.baud, bytesize=8, parity="N", stopbits=1,
                xonxoff=False, rtscts=False,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise NotConnectedError(f"cannot open {self.url}: {exc}", device=self.name) from exc
        self._reader, self._writer = reader, writer
        self._lost = None
        # Bytes left on the line from before we opened it are not for us.
        with contextlib.suppress(Exception):
            writer.transport.serial.reset_input_buffer()  # type: ignore[attr-defined]
        self._receiver = asyncio.create_task(self._receive(reader), name=f"{self.name}-receive")
        await self._synchronise()

    async def _synchronise(self) -> None:
        """Start from a random SEQ and spend one ``ST`` on it.

        The device answers a request whose SEQ equals the last one it answered
        from memory, without acting. A host that reopens the link cannot know
        that SEQ, so the first request might be taken for a repeat; by sending
        a harmless ``ST`` first (its content ignored), every later request
        carries a SEQ the device has not just answered.
        """
        self._seq = secrets.randbelow(256)
        try:
            await self._call(wire.Verb.STATE)
        except (ProtocolError, DeviceError):
            pass  # a reply from memory to someone else's request: the line is in sync now
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close the link; safe to call twice and when cancelled."""
        writer, receiver, pending = self._writer, self._receiver, self._pending
        self._writer = self._reader = None
        self._receiver = None
        if pending is not None and not pending[1].done():
            pending[1].set_exception(NotConnectedError("closed while waiting for a reply",
                                                       device=self.name))
        if receiver is not None:
            receiver.cancel()
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        if receiver is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await receiver
        self._end_listeners()

    @property
    def connected(self) -> bool:
        """True while the link is open and has not dropped."""
        return self._writer is not None and self._lost is None

    # -- the verbs ---------------------------------------------------------

    async def identify(self) -> Identity:
        """The device's vendor, model, serial, firmware and channel count."""
        request, args = await self._call(wire.Verb.IDENTIFY)
        vendor, model, serial_no, firmware, channels = self._fields(request, args, 5)
        return Identity(vendor, model, serial_no, firmware,
                        self._number(request, args, channels, 1, wire.MAX_CHANNELS))

    async def status(self) -> CounterStatus:
        """The device's state now."""
        request, args = await self._call(wire.Verb.STATE)
        state, job, count = self._fields(request, args, 3)
        if state not in wire.DeviceState.__members__.values():
            raise self._bad(request, args, f"unknown state {state!r}")
        return CounterStatus(CountState(state.lower()), self._job_or_none(request, args, job),
                             self._count(request, args, count))

    async def count(self, job: str, channel: int, quantity: int) -> None:
        """Start counting; a repeat of the same job, channel and quantity starts nothing."""
        if not wire.is_job_id(job):
            raise ValueError(f"job id {job!r} is not 1-16 characters of A-Z a-z 0-9 -")
        await self._command(wire.Verb.COUNT, job, str(channel), str(quantity))

    async def job(self, job: str) -> JobReport:
        """The fate of ``job``; UnknownJob when the device does not remember it."""
        request, args = await self._call(wire.Verb.JOB, job)
        state, count, weight = self._fields(request, args, 3)
        if state not in wire.JobState.__members__.values():
            raise self._bad(request, args, f"unknown job state {state!r}")
        return JobReport(job, JobOutcome(state.lower()), self._count(request, args, count),
                         self._weight(request, args, weight))

    async def abort(self) -> Progress | None:
        """Abort the count in progress; the job and its count, or None when none ran."""
        request, args = await self._call(wire.Verb.ABORT)
        job, count = self._fields(request, args, 2)
        known = self._job_or_none(request, args, job)
        return None if known is None else Progress(known, self._count(request, args, count))

    async def clear(self) -> None:
        """The operator cleared a jam, refilled or closed the door: back to IDLE."""
        await self._command(wire.Verb.CLEAR)

    async def take(self, job: str) -> None:
        """The host took ``job``'s tablets from the chute."""
        await self._command(wire.Verb.DONE, job)

    async def read_calibration(self, channel: int) -> Calibration:
        """The sensor calibration of ``channel``."""
        request, args = await self._call(wire.Verb.CAL_READ, str(channel))
        sens, gate = self._fields(request, args, 2)
        return Calibration(self._number(request, args, sens, 0, wire.MAX_SENSITIVITY),
                           self._number(request, args, gate, 0, wire.MAX_GATE_MS))

    async def write_calibration(self, channel: int, calibration: Calibration) -> None:
        """Set the sensor calibration of ``channel``."""
        await self._command(wire.Verb.CAL_WRITE, str(channel), str(calibration.sensitivity),
                         str(calibration.gate_ms))

    async def weigh(self) -> ScaleReading:
        """The scale's reading now."""
        request, args = await self._call(wire.Verb.WEIGHT)
        weight, stable = self._fields(request, args, 2)
        if stable not in ("0", "1"):
            raise self._bad(request, args, f"STABLE is {stable!r}, not 0 or 1")
        return ScaleReading(self._weight(request, args, weight), stable == "1")

    async def tare(self) -> None:
        """Zero the scale; the chute must be empty."""
        await self._command(wire.Verb.TARE)

    async def span(self, mass_mg: int) -> None:
        """Span-calibrate the scale with ``mass_mg`` on it."""
        await self._command(wire.Verb.SPAN, str(mass_mg))

    def events(self) -> EventStream[CounterEvent]:
        """Every event the device sends from now on; ends when the link closes."""
        return EventStream(self._listeners, self.name)

    # -- the wire ----------------------------------------------------------

    async def _call(self, verb: str, *args: str) -> tuple[str, tuple[str, ...]]:
        async with self._lock:
            writer = self._require_open()
            seq = self._seq
            self._seq = (self._seq + 1) & 0xFF
            frame = wire.encode(wire.Request(seq, verb, args))
            text = frame.decode("ascii").rstrip()
            timeout = self.reply_timeout + wire.wire_time(len(frame) + wire.MAX_FRAME, self.baud)
            loop = asyncio.get_running_loop()
            for attempt in range(1 + self.retries):
                future: asyncio.Future[wire.Reply] = loop.create_future()
                self._pending = (seq, future)
                try:
                    writer.write(frame)
                    if self.trace.listening:
                        self.trace.record(TX, printable(frame))
                    await writer.drain()
                    reply = await asyncio.wait_for(future, timeout)
                except TimeoutError:
                    log.debug("no reply", device=self.name, request=text, attempt=attempt + 1)
                    continue
                except (ConnectionError, OSError, serial.SerialException) as exc:
                    raise self._link_lost(f"link failed while sending: {exc}", text) from exc
                finally:
                    self._pending = None
                return text, self._check(text, reply)
            raise ReplyTimeout(f"no reply after {1 + self.retries} tries", device=self.name,
                               request=text)

    async def _command(self, verb: str, *args: str) -> None:
        """A request whose OK carries no arguments (the ICD's "—")."""
        request, reply = await self._call(verb, *args)
        self._fields(request, reply, 0)

    def _require_open(self) -> asyncio.StreamWriter:
        if self._writer is None:
            raise NotConnectedError("driver is not open", device=self.name)
        if self._lost is not None:
            raise LinkError(f"link lost: {self._lost}", device=self.name)
        return self._writer

    def _check(self, request: str, reply: wire.Reply) -> tuple[str, ...]:
        if reply.ok:
            return reply.args
        code = reply.args[0] if reply.args else ""
        kind = ERRORS.get(code, DeviceError)
        meaning = wire.ERROR_MEANING.get(code, "an error code the ICD does not list")
        text = " ".join(reply.args)
        raise kind(f"{code} {meaning}", device=self.name, code=code, request=request,
                   reply=f"ER {text}")

    async def _receive(self, reader: asyncio.StreamReader) -> None:
        splitter = wire.FrameSplitter()
        reason = "device closed the link"
        try:
            while chunk := await reader.read(512):
                for line in splitter.feed(chunk):
                    self._dispatch(line)
        except (ConnectionError, OSError, serial.SerialException) as exc:
            reason = str(exc) or type(exc).__name__
        self._link_lost(reason, None)

    def _dispatch(self, line: bytes) -> None:
        if self.trace.listening:
            self.trace.record(RX, printable(line))
        try:
            frame = wire.decode(line)
        except wire.FrameError as exc:
            log.warning("dropped frame", device=self.name, frame=line[:40], error=str(exc))
            return
        if isinstance(frame, wire.Reply):
            pending = self._pending
            if pending is not None and pending[0] == frame.seq and not pending[1].done():
                pending[1].set_result(frame)
            else:
                log.debug("stale reply", device=self.name, seq=frame.seq)
        elif isinstance(frame, wire.Event):
            event = self._event(frame)
            if event is not None:
                deliver(self._listeners, event)

    def _event(self, frame: wire.Event) -> CounterEvent | None:
        args = frame.args
        try:
            if frame.name == wire.EventName.PROGRESS and len(args) == 2:
                return Progress(wire.job_id(args[0]),
                                wire.number(args[1], 0, wire.MAX_QUANTITY))
            if (frame.name == wire.EventName.END and len(args) == 4
                    and args[1] in END_STATUSES):
                return JobEnded(JobReport(wire.job_id(args[0]), JobOutcome(args[1].lower()),
                                          wire.number(args[2], 0, wire.MAX_QUANTITY),
                                          wire.number(args[3], 0, wire.MAX_WEIGHT_MG)))
            if frame.name == wire.EventName.DOOR and args in (("OPEN",), ("CLOSED",)):
                return DoorMoved(open=args[0] == "OPEN")
            if frame.name == wire.EventName.POWER and len(args) == 1:
                return PoweredUp(args[0])
        except wire.FrameError:
            pass
        log.warning("event outside the ICD dropped", device=self.name, name=frame.name,
                    args=list(args))
        return None

    def _link_lost(self, reason: str, request: str | None) -> LinkError:
        if self._lost is None and self._writer is not None:
            self._lost = reason
            pending = self._pending
            if pending is not None and not pending[1].done():
                pending[1].set_exception(LinkError(f"link lost: {reason}", device=self.name,
                                                   request=request))
            self._end_listeners()
        return LinkError(f"link lost: {reason}", device=self.name, request=request)

    def _end_listeners(self) -> None:
        deliver(self._listeners, None)  # the end of the stream

    def _fields(self, request: str, args: tuple[str, ...], n: int) -> tuple[str, ...]:
        if len(args) != n:
            raise self._bad(request, args, f"expected {n} reply arguments, got {len(args)}")
        return args

    def _number(self, request: str, args: tuple[str, ...], text: str, low: int,
                high: int) -> int:
        try:
            return wire.number(text, low, high)
        except wire.FrameError as exc:
            raise self._bad(request, args, str(exc)) from None

    def _count(self, request: str, args: tuple[str, ...], text: str) -> int:
        return self._number(request, args, text, 0, wire.MAX_QUANTITY)

    def _weight(self, request: str, args: tuple[str, ...], text: str) -> int:
        return self._number(request, args, text, 0, wire.MAX_WEIGHT_MG)

    def _job_or_none(self, request: str, args: tuple[str, ...], text: str) -> str | None:
        if text == "-":
            return None
        try:
            return wire.job_id(text)
        except wire.FrameError as exc:
            raise self._bad(request, args, str(exc)) from None

    def _bad(self, request: str, args: tuple[str, ...], why: str) -> ProtocolError:
        return ProtocolError(why, device=self.name, request=request, reply="OK " + " ".join(args))
