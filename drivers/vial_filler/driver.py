"""The vial filler's Modbus driver (ICD version 1), over TCP or RTU, on pymodbus' async clients.

One command is one write of registers 0–8 (or of CMD alone), then one read of
the input registers for CMD_RESULT; a result other than 0 becomes one of the
errors in :mod:`drivers.errors`. A poller reads the state at a steady rate and
tells every ``events()`` reader what changed; a heartbeat task writes
HEARTBEAT every second. Every pymodbus exception and ``isError()`` reply is
turned into the driver's own errors here, at the boundary.

Several RTU units on one serial line share one client (``line.Bus``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from drivers.base import OpensAsContext
from drivers.errors import (
    DriverError,
    ExceptionReply,
    LinkError,
    NotConnectedError,
    ProtocolError,
    ReplyTimeout,
    UnknownJob,
)
from drivers.events import Backlog, EventStream, deliver
from drivers.filler_types import (
    CapType,
    CellCalibration,
    FillerIdentity,
    FillerStatus,
    VialReport,
)
from drivers.schedule import Schedule
from drivers.tasks import stop_tasks
from drivers.trace import Tap
from drivers.vial_filler import protocol as wire
from drivers.vial_filler.background import Background
from drivers.vial_filler.line import (
    END,
    EXCEPTIONS,
    FAULT,
    REFUSAL,
    STATE,
    Bus,
    Expect,
    status_of,
)
from drivers.vial_filler.protocol import Cap, CmdResult, Command, CommandBlock, Holding, Inputs
from drivers.vial_filler.settings import ModbusFillerSettings

log = structlog.get_logger(__name__)

class ModbusVialFiller(Background, OpensAsContext):
    """A vial filler over Modbus TCP (``modbus-tcp://HOST[:PORT]``, 502 by default) or RTU
    (``modbus-rtu:PATH``).

    ``timeout`` and ``retries`` are pymodbus' own per request (a request in
    flight is never cut short); ``poll_interval`` (busy), ``idle_poll_interval``
    and ``heartbeat_interval`` are in seconds (``background``).
    """

    kind = "vial-filler"
    settings = ModbusFillerSettings
    max_channels = 240
    """The ICD's most cells."""

    @classmethod
    def configured(cls, settings: ModbusFillerSettings, *, name: str, url: str,
                   time_scale: float = 1.0) -> ModbusVialFiller:
        """The driver as its ``driver`` table sets it; a simulator running ``time_scale``
        times fast runs its heartbeat watchdog fast too, so the heartbeat keeps up."""
        return cls(name=name, url=url, unit=settings.unit, baud=settings.baud,
                   parity=settings.parity, timeout=settings.timeout_ms / 1000,
                   retries=settings.retries, poll_interval=1 / settings.poll_hz,
                   idle_poll_interval=1 / settings.idle_poll_hz,
                   heartbeat_interval=settings.heartbeat_s / time_scale)

    def __init__(
        self, *, name: str, url: str, unit: int = wire.DEFAULT_UNIT, baud: int = wire.DEFAULT_BAUD,
        parity: str = wire.DEFAULT_PARITY, timeout: float = 0.5, retries: int = 2,
        poll_interval: float = 0.2, idle_poll_interval: float | None = None,
        heartbeat_interval: float = 1.0,
    ) -> None:
        if unit not in wire.UNITS:
            raise ValueError(f"unit {unit} is outside 1-247")
        if not (url.startswith("modbus-tcp://") or url.startswith("modbus-rtu:")):
            raise ValueError(f"url {url!r}: expected modbus-tcp://HOST:PORT or modbus-rtu:PATH")
        self.name = name
        self.url = url
        self.unit = unit
        self.baud = baud
        self.parity = parity
        self.timeout = timeout
        self.retries = retries
        self.poll_interval = poll_interval
        self.idle_poll_interval = poll_interval if idle_poll_interval is None else max(
            poll_interval, idle_poll_interval)
        self.polls: Schedule | None = None
        """The poller's schedule: its runs and their lateness."""
        self.heartbeat_interval = heartbeat_interval
        self.last_status: FillerStatus | None = None  # what the poller read last
        self.trace = Tap(name)
        self._bus: Bus | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._listeners: set[Backlog[FillerStatus]] = set()
        self._heartbeat = 0
        self._lost: str | None = None

    # -- lifecycle -----------------------------------------------------------

    def _make_client(self) -> Any:
        if self.url.startswith("modbus-tcp://"):
            address = self.url.removeprefix("modbus-tcp://")
            host, _, port = address.rpartition(":") if ":" in address else (
                address, "", str(wire.DEFAULT_TCP_PORT))
            if not host or not port.isdigit():
                raise NotConnectedError(f"url {self.url!r}: expected modbus-tcp://HOST[:PORT]",
                                        device=self.name)
            return AsyncModbusTcpClient(host, port=int(port), timeout=self.timeout,
                                        retries=self.retries, reconnect_delay=0)
        return AsyncModbusSerialClient(
            self.url.removeprefix("modbus-rtu:"), baudrate=self.baud, parity=self.parity,
            bytesize=8, stopbits=1, timeout=self.timeout, retries=self.retries,
            reconnect_delay=0)

    async def open(self) -> None:
        """Connect, read the registers once, then start the poller and the heartbeat."""
        if self._bus is not None:
            return
        bus = Bus.get(self.url, self._make_client)
        try:
            if not bus.client.connected:
                with contextlib.suppress(ModbusException, OSError):
                    await bus.client.connect()
            if not bus.client.connected:
                raise NotConnectedError(f"cannot connect to {self.url}", device=self.name)
            self._bus = bus
            self._lost = None
            status = await self.status()
        except BaseException as exc:
            self._bus = None
            bus.release()
            if isinstance(exc, DriverError) and not isinstance(exc, NotConnectedError):
                raise NotConnectedError(f"no vial filler answers at {self.url} unit "
                                        f"{self.unit}: {exc.args[0]}", device=self.name) from exc
            raise
        self._heartbeat = status.heartbeat_echo
        self.last_status = status
        self.polls = Schedule(first_in=self._poll_period())  # a command may hurry it at once
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._poll(), name=f"{self.name}-poll"),
                       loop.create_task(self._beat(), name=f"{self.name}-heartbeat")]

    async def close(self) -> None:
        """Stop the poller and the heartbeat, end every event stream, release the line."""
        tasks, self._tasks = self._tasks, []
        await stop_tasks(tasks)
        self.polls = None
        bus, self._bus = self._bus, None
        if bus is not None:
            bus.release()
        deliver(self._listeners, None)
        self._listeners.clear()

    @property
    def connected(self) -> bool:
        """True while open and the last request went through."""
        return self._bus is not None and self._lost is None

    def events(self) -> EventStream[FillerStatus]:
        """Every status the poller sees change, from now until the link closes or drops."""
        return EventStream(self._listeners, self.name)

    # -- requests --------------------------------------------------------------

    async def _request(self, what: str, call: Callable[[Any], Awaitable[Any]],
                       expect: Expect) -> Any:
        """One request on the line, its failures turned into the driver's errors.

        The reply must be the one asked for (``expect``): another function code,
        address or register count is a ProtocolError, never a value.
        """
        bus = self._bus
        if bus is None:
            raise NotConnectedError("not open", device=self.name, request=what)
        if self._lost is not None:
            raise LinkError(f"link lost: {self._lost}", device=self.name, request=what)
        try:
            async with bus.lock:
                if self._lost is not None:  # lost while this request waited for the line
                    raise LinkError(f"link lost: {self._lost}", device=self.name, request=what)
                reply = await call(self.trace.modbus(bus.client))
        except ModbusIOException as exc:
            self._link_lost(str(exc))
            raise ReplyTimeout(f"no reply after {self.retries + 1} tries", device=self.name,
                               request=what) from exc
        except (ConnectionException, ModbusException, OSError) as exc:
            self._link_lost(str(exc))
            raise LinkError(str(exc), device=self.name, request=what) from exc
        if reply.isError():
            code = getattr(reply, "exception_code", 0)
            raise ExceptionReply(
                f"exception {code} ({EXCEPTIONS.get(code, 'unknown')})", device=self.name,
                exception_code=code, request=what, reply=str(reply))
        why = expect.mismatch(reply)
        if why is not None:
            raise ProtocolError(f"reply is not the one asked for: {why}", device=self.name,
                                request=what, reply=str(reply))
        return reply

    def _link_lost(self, why: str) -> None:
        if self._lost is None:
            self._lost = why
            deliver(self._listeners, None)
            self._listeners.clear()

    async def _inputs(self) -> Inputs:
        reply = await self._request("read input registers 0-27", lambda c: c.read_input_registers(
            0, count=wire.INPUT_COUNT, device_id=self.unit), Expect(4, None, wire.INPUT_COUNT))
        try:
            return Inputs.decode(reply.registers)
        except ValueError as exc:
            raise ProtocolError(str(exc), device=self.name, request="read input registers 0-27",
                                reply=str(reply.registers)) from None

    async def _discrete(self) -> list[bool]:
        reply = await self._request("read discrete inputs 0-3", lambda c: c.read_discrete_inputs(
            0, count=wire.DISCRETE_COUNT, device_id=self.unit),
            Expect(2, None, wire.DISCRETE_COUNT))
        bits = list(reply.bits)
        if len(bits) < wire.DISCRETE_COUNT:
            raise ProtocolError(f"{len(bits)} discrete inputs, expected {wire.DISCRETE_COUNT}",
                                device=self.name, request="read discrete inputs 0-3",
                                reply=str(bits))
        return bits[:wire.DISCRETE_COUNT]

    async def _write(self, address: int, values: list[int], what: str) -> None:
        await self._request(what, lambda c: c.write_registers(address, values,
                                                              device_id=self.unit),
                            Expect(16, address, len(values)))

    async def _command(self, block: CommandBlock) -> Inputs:
        """Write a command, then read CMD_RESULT back; raise the refusal it names."""
        what = f"{block.command.name} {block.registers()}"
        if self.polls is not None:
            self.polls.hurry()  # see its effect at once
        if block.command in (Command.START, Command.SPAN):
            values = [*block.registers()[:Holding.HEARTBEAT], self._heartbeat & 0xFFFF]
            await self._write(0, values, what)
        else:
            await self._write(0, [block.command], what)
        inputs = await self._inputs()
        result = inputs.cmd_result
        if result is CmdResult.ACCEPTED:
            return inputs
        if (result is CmdResult.DUPLICATE_JOB and block.command is Command.START
                and block.job in (inputs.job, inputs.last_job)):
            return inputs  # the device already has this job: START is idempotent
        raise REFUSAL[result](wire.CMD_RESULT_MEANING[result], device=self.name,
                               code=str(int(result)), request=what,
                               reply=f"CMD_RESULT {int(result)}")

    # -- the Protocol ----------------------------------------------------------

    async def identify(self) -> FillerIdentity:
        """Firmware and cell count."""
        inputs = await self._inputs()
        return FillerIdentity(f"{inputs.firmware // 100}.{inputs.firmware % 100:02d}",
                              inputs.cells, self.unit)

    async def status(self) -> FillerStatus:
        """Every register now, read fresh."""
        inputs = await self._inputs()
        bits = await self._discrete()
        return status_of(inputs, bits)

    async def start(self, job: int, cell: int, quantity: int, vial_drams: int,
                    cap: CapType) -> None:
        """Fill a vial as ``job``; idempotent (the device refuses a second START of a job)."""
        if not 1 <= job <= wire.MAX_JOB:
            raise ValueError(f"job {job} is outside 1-{wire.MAX_JOB}")
        inputs = await self._command(CommandBlock(
            Command.START, job, cell, quantity, vial_drams,
            Cap.EASY_OPEN if cap is CapType.EASY_OPEN else Cap.CHILD_RESISTANT))
        if inputs.cmd_result is CmdResult.DUPLICATE_JOB:
            log.info("start repeated: the filler already has this job", robot=self.name, job=job)

    async def job(self, job: int) -> VialReport:
        """The fate of ``job``: the one in progress, or the last finished one."""
        inputs = await self._inputs()
        state = STATE[inputs.state]
        running = inputs.state in (wire.State.FILLING, wire.State.CAPPING, wire.State.FAULT,
                                   wire.State.SAFE)
        if inputs.job == job and running and inputs.last_job != job:
            return VialReport(job, state, FAULT.get(inputs.fault), None, inputs.count,
                              inputs.weight_mg)
        if inputs.last_job == job:
            return VialReport(job, state, None, END[inputs.last_status], inputs.last_count,
                              inputs.last_weight_mg)
        raise UnknownJob(f"job {job} is neither in progress nor the last one (device: job "
                         f"{inputs.job}, last {inputs.last_job})", device=self.name,
                         code="unknown job", request=f"job {job}")

    async def abort(self) -> None:
        """Abort the job in progress."""
        await self._command(CommandBlock(Command.ABORT))

    async def reset_fault(self) -> None:
        """End a stopped job after a person's fix."""
        await self._command(CommandBlock(Command.RESET_FAULT))

    async def output_taken(self) -> None:
        """The vial left the output bay."""
        await self._command(CommandBlock(Command.OUTPUT_TAKEN))

    async def tare(self) -> None:
        """Zero the scale."""
        await self._command(CommandBlock(Command.TARE))

    async def span(self, mass_mg: int) -> None:
        """Span the scale on a reference mass (sent in units of 10 mg)."""
        await self._command(CommandBlock(Command.SPAN, span_ref=wire.span_ref(mass_mg)))

    async def read_registers(self, table: str, start: int, count: int,
                             what: str | None = None) -> list[int]:
        """``count`` registers from ``start`` of ``hr`` (holding) or ``ir`` (input)."""
        what = f"{wire.register_span(table, start, count)}{f' ({what})' if what else ''}"
        function = (3, "read_holding_registers") if table == "hr" else (4, "read_input_registers")
        reply = await self._request(what, lambda c: getattr(c, function[1])(
            start, count=count, device_id=self.unit), Expect(function[0], None, count))
        return list(reply.registers)

    async def write_register(self, address: int, value: int) -> None:
        """Write holding register ``address`` (never CMD), then read it back."""
        what = wire.register_write(address, value)
        await self._write(address, [value], what)
        if (held := await self.read_registers("hr", address, 1)) != [value]:
            raise ProtocolError(f"hr {address} reads {held} after writing {value}",
                                device=self.name, request=what, reply=str(held))

    async def read_calibration(self, cell: int) -> CellCalibration:
        """CAL_SENS and CAL_UNIT of ``cell``."""
        sensitivity, unit_dmg = await self.read_registers(
            "hr", wire.cal_sens_address(cell), 2, f"calibration of cell {cell}")
        return CellCalibration(sensitivity, unit_dmg / 10)

    async def write_calibration(self, cell: int, calibration: CellCalibration) -> None:
        """Write CAL_SENS and CAL_UNIT of ``cell``, then read them back."""
        if calibration.sensitivity not in wire.SENSITIVITY:
            raise ValueError(f"sensitivity {calibration.sensitivity} is outside 1-100")
        unit_dmg = round(calibration.unit_mass_mg * 10)
        if not 1 <= unit_dmg <= wire.UNIT_MASS_MAX_DMG:
            raise ValueError(f"unit mass {calibration.unit_mass_mg} mg is outside "
                             f"0.1-{wire.UNIT_MASS_MAX_DMG / 10} mg")
        await self._write(wire.cal_sens_address(cell), [calibration.sensitivity, unit_dmg],
                          f"write calibration of cell {cell}")
        held = await self.read_registers("hr", wire.cal_sens_address(cell), 2)
        if held != [calibration.sensitivity, unit_dmg]:
            raise ProtocolError(f"calibration of cell {cell} reads back as {held}",
                                device=self.name, request=f"write calibration {calibration}")
