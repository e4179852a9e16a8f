"""The vial filler on the wire: pymodbus ``SimDevice`` servers over TCP or RTU on a pty.

pymodbus serves the registers; every read and write passes through
:meth:`FillerSimulator._access`, which shows the device's registers to the
read and hands the device each write. Where pymodbus is more lenient than
the ICD (function codes it answers that the filler does not support, the
exception it sends for a malformed request), the answer is corrected on its
way out, so an outside client sees exactly what the ICD says.

Over RTU the host's pty is joined to pymodbus' serial port by an
:class:`RtuLine` that gives every frame its wire time and the silence that
ends it, at the configured baud: a pty alone would deliver bytes at once.
A pty cannot carry parity (setting 8E1 on one fails), so hosts open it as 8N1;
the line still times every character as the ICD's 11 bits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
from types import TracebackType
from typing import Any, Self

from pymodbus.constants import ExcCodes
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.vial_filler import protocol as wire
from simulators.clock import MachineClock
from simulators.pacing import Pacer
from simulators.ports import PtyPort
from simulators.vial_filler.device import VialFillerDevice
from simulators.vial_filler.parts import SimCell

_DECODE_FAILED = 0x80
"""pymodbus answers a request it cannot decode with function code 0x80."""


class FillerSimulator:
    """One or more vial fillers (units) behind one Modbus server; use as ``async with``."""

    def __init__(
        self, *, devices: dict[int, VialFillerDevice] | None = None, unit: int = 1,
        cells: int | list[SimCell] = 12, seed: int = 0, time_scale: float = 1.0,
        baud: int = wire.DEFAULT_BAUD, scale_noise_mg: float = 1.0,
    ) -> None:
        if baud not in wire.BAUD_RATES:
            raise ValueError(f"baud {baud} is not one of {wire.BAUD_RATES}")
        if devices is None:
            if unit not in wire.UNITS:
                raise ValueError(f"unit {unit} is outside 1-247")
            devices = {unit: VialFillerDevice(cells=cells, seed=seed,
                                              clock=MachineClock(time_scale),
                                              scale_noise_mg=scale_noise_mg)}
        self.devices = devices
        self.baud = baud
        self.url = ""
        self.requests: list[tuple[int, int, int, int]] = []
        """(unit, function code, address, count) of every request served, in order."""
        self.reply_delay_s = 0.0
        """Real seconds every reply waits (a slow device); the link's time, not the machine's."""
        self._drop = 0
        self._silent = False
        self._last_fc = 0
        self._last_request: ModbusPDU | None = None
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self._line: RtuLine | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def device(self) -> VialFillerDevice:
        """The device, when there is one unit."""
        if len(self.devices) != 1:
            raise ValueError(f"this bus has {len(self.devices)} units; use devices[unit]")
        return next(iter(self.devices.values()))

    # -- lifecycle -----------------------------------------------------------

    async def listen_tcp(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve Modbus TCP; the url is ``modbus-tcp://HOST:PORT``."""
        # pymodbus says only "could not start listen": find out first, with the OS's words.
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
            probe.listen()
            port = probe.getsockname()[1]
        server = ModbusTcpServer(self._sim_devices(), address=(host, port), **self._hooks())
        await self._serve(server)
        self.url = f"modbus-tcp://{host}:{port}"
        return self.url

    async def listen_rtu_pty(self) -> str:
        """Serve Modbus RTU on a new pty; the url is ``modbus-rtu:<pty path>``."""
        self._line = RtuLine(self.baud)
        server = ModbusSerialServer(
            self._sim_devices(), port=self._line.device_path, baudrate=self.baud,
            parity="N", ignore_missing_devices=True, **self._hooks())
        await self._serve(server)
        self._tasks.append(asyncio.get_running_loop().create_task(self._line.run()))
        self.url = f"modbus-rtu:{self._line.host_path}"
        return self.url

    def _sim_devices(self) -> list[SimDevice]:
        return [self._sim_device(unit, device) for unit, device in self.devices.items()]

    def _sim_device(self, unit: int, device: VialFillerDevice) -> SimDevice:
        cells = len(device.cells)
        return SimDevice(
            id=unit,
            simdata=(
                [SimData(0, count=16, values=False, datatype=DataType.BITS)],
                [SimData(0, count=16, values=False, datatype=DataType.BITS)],
                [SimData(0, count=wire.COMMAND_BLOCK, values=0, datatype=DataType.REGISTERS),
                 SimData(wire.CAL_BASE, count=2 * cells, values=0,
                         datatype=DataType.REGISTERS)],
                [SimData(0, count=wire.INPUT_COUNT, values=0, datatype=DataType.REGISTERS)],
            ),
            action=functools.partial(self._access, device),
        )

    def _hooks(self) -> dict[str, Any]:
        return {"trace_packet": self._trace_packet, "trace_pdu": self._trace_pdu}

    async def _serve(self, server: ModbusTcpServer | ModbusSerialServer) -> None:
        await server.serve_forever(background=True)
        self._server = server
        loop = asyncio.get_running_loop()
        for device in self.devices.values():
            self._tasks.append(loop.create_task(device.watch()))

    async def close(self) -> None:
        """Stop serving and stop the machines."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None
        if self._line is not None:
            self._line.close()
        for device in self.devices.values():
            device.stop()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    # -- faults on the link --------------------------------------------------

    def drop_replies(self, n: int = 1) -> None:
        """The next ``n`` replies are never sent."""
        self._drop += n

    def cut_link(self) -> None:
        """Hang up on every TCP client (the host sees its connection drop)."""
        if isinstance(self._server, ModbusTcpServer):
            for connection in list(self._server.active_connections.values()):
                connection.close()

    # -- the registers ---------------------------------------------------------

    async def _access(self, device: VialFillerDevice, function_code: int, start: int,
                      address: int, count: int, registers: list[int],
                      values: list[int] | list[bool] | None) -> ExcCodes | None:
        unit = next(u for u, d in self.devices.items() if d is device)
        self.requests.append((unit, function_code, address, count))
        if function_code not in wire.FUNCTION_CODES:
            return ExcCodes.ILLEGAL_FUNCTION
        if self.reply_delay_s:
            await asyncio.sleep(self.reply_delay_s)
        if function_code == 0x02:
            request = self._last_request
            asked = getattr(request, "count", 0)
            if address + asked > wire.DISCRETE_COUNT:
                return ExcCodes.ILLEGAL_ADDRESS
            registers[0] = sum(1 << i for i, on in enumerate(device.discrete_inputs()) if on)
        elif function_code == 0x04:
            registers[0:wire.INPUT_COUNT] = device.inputs()
        elif values is None:
            registers[address - start:address - start + count] = device.holding(address, count)
        elif function_code == 0x17 and not self._reads_mapped(device):
            # pymodbus writes function 23's write part before it reads: refuse the whole
            # request first, so that one answered with an exception has changed nothing.
            return ExcCodes.ILLEGAL_ADDRESS
        else:
            written = [int(v) for v in values]
            device.write_holding(address, written)
            # CMD reads 0 once taken up: what lands in the registers is what the device holds.
            values[:] = device.holding(address, len(written))  # type: ignore[assignment]
        return None

    def _reads_mapped(self, device: VialFillerDevice) -> bool:
        request = self._last_request
        first = getattr(request, "read_address", 0)
        return all(device.is_mapped_holding(address)
                   for address in range(first, first + getattr(request, "read_count", 0)))

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if sending:
            if self._silent:
                self._silent = False
                return b""
            if self._drop:
                self._drop -= 1
                return b""
            return data
        # Remember the function code of the frame just received: pymodbus forgets it when
        # the frame does not decode, and the ICD's answer depends on it.
        at = 7 if isinstance(self._server, ModbusTcpServer) else 1
        if len(data) > at:
            self._last_fc = data[at]
        return data

    def _trace_pdu(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if not sending:
            self._last_request = pdu
            return pdu
        if pdu.dev_id not in self.devices:
            if isinstance(self._server, ModbusSerialServer):
                self._silent = True  # on a bus, a unit that is not there says nothing
                return pdu
            return _exception(pdu, pdu.function_code & 0x7F, ExcCodes.GATEWAY_NO_RESPONSE)
        code = pdu.function_code & 0x7F
        if self._last_fc & 0x80:
            # 0x80 and up are exception responses, never requests: an illegal function.
            return _exception(pdu, self._last_fc & 0x7F, ExcCodes.ILLEGAL_FUNCTION)
        if pdu.function_code == _DECODE_FAILED:
            # Malformed (count 0 or over the limit): exception 03 for a supported function,
            # 01 for any other.
            fc = self._last_fc & 0x7F
            exc = ExcCodes.ILLEGAL_VALUE if fc in wire.FUNCTION_CODES else ExcCodes.ILLEGAL_FUNCTION
            return _exception(pdu, fc, exc)
        if code not in wire.FUNCTION_CODES:
            # pymodbus answers diagnostics, device id and the like itself; the filler does not.
            return _exception(pdu, code, ExcCodes.ILLEGAL_FUNCTION)
        return pdu


def _exception(pdu: ModbusPDU, function_code: int, code: ExcCodes) -> ExceptionResponse:
    return ExceptionResponse(function_code, code, device_id=pdu.dev_id,
                             transaction=pdu.transaction_id)


class RtuLine:
    """An RS-485 line between the host's pty and the device's serial port.

    Each frame arrives after its wire time (11 bits a character at the baud) and
    the silence after it (3.5 characters, 1.75 ms above 19200 baud): a real RTU
    receiver knows a frame has ended only then, the device and the host alike.
    """

    def __init__(self, baud: int) -> None:
        self.baud = baud
        self._host = PtyPort()
        self._device = PtyPort()
        self.host_path = self._host.path
        self.device_path = self._device.path

    async def run(self) -> None:
        """Carry frames both ways until closed."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._carry(self._host, self._device))
            group.create_task(self._carry(self._device, self._host))

    async def _carry(self, source: PtyPort, sink: PtyPort) -> None:
        """Each frame reaches ``sink`` once its last character has been on the wire and the
        line has then been silent for the ICD's silence (``Pacer``: one wake a frame)."""
        line = Pacer()
        char = wire.char_time(self.baud)
        silence = wire.frame_silence(self.baud)
        frame = bytearray()
        pending: asyncio.TimerHandle | None = None

        def deliver() -> None:
            nonlocal pending
            sink.write(bytes(frame))
            frame.clear()
            pending = None
        try:
            while data := await source.read():
                frame += data  # bytes before the silence ends are the same frame
                if pending is not None:
                    pending.cancel()
                pending = line.at(line.after_line(line.now(), len(data) * char) + silence,
                                  deliver)
        finally:
            line.cancel()

    def close(self) -> None:
        """Hang up both ends."""
        self._host.close()
        self._device.close()
