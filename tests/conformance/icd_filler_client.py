"""A vial filler client written from icd/vial-filler-modbus.md alone.

Raw pymodbus register calls, as a PLC programmer would make them. It imports
nothing from drivers/ or simulators/: the register numbers and codes below
are copied from the ICD's tables, so a misreading shared by our driver and
simulator would show here.
"""

from __future__ import annotations

from typing import Any

from pymodbus.client import AsyncModbusTcpClient

# Holding registers
CMD, JOB_HI, JOB_LO, CELL, QTY, VIAL, CAP, SPAN_REF, HEARTBEAT = range(9)
START, ABORT, RESET_FAULT, TARE, SPAN, OUTPUT_TAKEN = 1, 2, 3, 4, 5, 6
# Input registers
STATE, IN_JOB_HI, IN_JOB_LO, COUNT, WEIGHT_HI, WEIGHT_LO, FAULT, CMD_RESULT, CELLS = range(9)
FIRMWARE, JOBS_DONE, LAST_JOB_HI, LAST_JOB_LO, LAST_STATUS, LAST_COUNT = 9, 10, 11, 12, 13, 14
LAST_WEIGHT_HI, LAST_WEIGHT_LO, HEARTBEAT_ECHO, VIALS_LEFT = 15, 16, 17, 20
IDLE, FILLING, CAPPING, DONE, FAULTED, SAFE = range(6)


class IcdFillerClient:
    """A Modbus TCP client that drives the filler by registers."""

    def __init__(self, host: str, port: int, unit: int = 1) -> None:
        self.client = AsyncModbusTcpClient(host, port=port)
        self.unit = unit
        self.beat = 0

    async def __aenter__(self) -> IcdFillerClient:
        await self.client.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.client.close()

    async def inputs(self) -> list[int]:
        reply = await self.client.read_input_registers(0, count=28, device_id=self.unit)
        assert not reply.isError(), reply
        return list(reply.registers)

    async def heartbeat(self) -> None:
        self.beat = (self.beat + 1) % 65536
        reply = await self.client.write_register(HEARTBEAT, self.beat, device_id=self.unit)
        assert not reply.isError(), reply

    async def command(self, cmd: int, job: int = 0, cell: int = 0, qty: int = 0, vial: int = 0,
                      cap: int = 0, span_ref: int = 0) -> int:
        """One write of registers 0-8, then CMD_RESULT."""
        values = [cmd, job >> 16, job & 0xFFFF, cell, qty, vial, cap, span_ref, self.beat]
        reply = await self.client.write_registers(0, values, device_id=self.unit)
        assert not reply.isError(), reply
        return (await self.inputs())[CMD_RESULT]

    async def raw(self, call: str, *args: Any, **kwargs: Any) -> Any:
        """Any pymodbus client call, for the exception tests."""
        return await getattr(self.client, call)(*args, device_id=self.unit, **kwargs)


def job_of(regs: list[int], high: int) -> int:
    return (regs[high] << 16) | regs[high + 1]
