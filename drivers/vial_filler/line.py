"""The vial filler's Modbus line, and its values in the driver's terms.

Several RTU units on one serial line share one client: a :class:`Bus` lets one request at a
time onto the line. Every reply is checked against what was asked (:class:`Expect`). The
ICD's states, faults, endings and refusals are turned into the driver's types here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from drivers.errors import (
    BadRequest,
    Busy,
    DeviceError,
    DoorOpen,
    JobConflict,
    NoSuchChannel,
    NotCalibrated,
    OutputOccupied,
)
from drivers.filler_types import FillerFault, FillerState, FillerStatus, VialEnd
from drivers.vial_filler import protocol as wire
from drivers.vial_filler.protocol import CmdResult, Holding, Inputs

STATE = {
    wire.State.IDLE: FillerState.IDLE, wire.State.FILLING: FillerState.FILLING,
    wire.State.CAPPING: FillerState.CAPPING, wire.State.DONE: FillerState.DONE,
    wire.State.FAULT: FillerState.FAULT, wire.State.SAFE: FillerState.SAFE,
}
FAULT = {
    wire.Fault.JAM: FillerFault.JAM, wire.Fault.CELL_EMPTY: FillerFault.CELL_EMPTY,
    wire.Fault.NO_VIAL: FillerFault.NO_VIAL, wire.Fault.DOOR_OPEN: FillerFault.DOOR_OPEN,
    wire.Fault.CAP_FAULT: FillerFault.CAP_FAULT, wire.Fault.SCALE_FAULT: FillerFault.SCALE_FAULT,
}
END = {
    wire.LastStatus.DONE: VialEnd.DONE, wire.LastStatus.JAM: VialEnd.JAM,
    wire.LastStatus.CELL_EMPTY: VialEnd.CELL_EMPTY, wire.LastStatus.ABORTED: VialEnd.ABORTED,
    wire.LastStatus.NO_VIAL: VialEnd.NO_VIAL, wire.LastStatus.CAP_FAULT: VialEnd.CAP_FAULT,
    wire.LastStatus.SAFE: VialEnd.SAFE,
}
REFUSAL: dict[CmdResult, type[DeviceError]] = {
    CmdResult.BUSY: Busy,
    CmdResult.BAD_CELL: NoSuchChannel,
    CmdResult.BAD_QUANTITY: BadRequest,
    CmdResult.BAD_VIAL: BadRequest,
    CmdResult.DUPLICATE_JOB: JobConflict,
    CmdResult.OUTPUT_OCCUPIED: OutputOccupied,
    CmdResult.NOT_CALIBRATED: NotCalibrated,
    CmdResult.DOOR_OPEN: DoorOpen,
}
EXCEPTIONS = {1: "illegal function", 2: "illegal data address", 3: "illegal data value",
               4: "device failure", 11: "target device failed to respond"}


class Bus:
    """One pymodbus client and the lock that lets one request at a time onto its line."""

    open_buses: ClassVar[dict[tuple[int, str], Bus]] = {}

    def __init__(self, key: tuple[int, str], client: Any) -> None:
        self.key = key
        self.client = client
        self.lock = asyncio.Lock()
        self.users = 0

    @classmethod
    def get(cls, url: str, make: Callable[[], Any]) -> Bus:
        """The bus for ``url`` in this event loop, made on first use."""
        key = (id(asyncio.get_running_loop()), url)
        bus = cls.open_buses.get(key)
        if bus is None:
            bus = cls.open_buses[key] = Bus(key, make())
        bus.users += 1
        return bus

    def release(self) -> None:
        """One user less; the last one closes the client."""
        self.users -= 1
        if self.users <= 0:
            self.open_buses.pop(self.key, None)
            self.client.close()


@dataclass(frozen=True, slots=True)
class Expect:
    """What a reply must be: its function code, the address it echoes, how many values."""

    function_code: int
    address: int | None
    count: int

    def mismatch(self, reply: Any) -> str | None:
        """Why ``reply`` is not the answer to this request, or None when it is."""
        code = getattr(reply, "function_code", None)
        if code != self.function_code:
            return f"function code {code}, expected {self.function_code}"
        if self.function_code == 2:
            got = len(getattr(reply, "bits", ()))
            return None if got >= self.count else f"{got} bits, expected {self.count}"
        if self.address is not None and getattr(reply, "address", None) != self.address:
            return f"address {getattr(reply, 'address', None)}, expected {self.address}"
        if self.function_code in (3, 4):
            got = len(getattr(reply, "registers", ()))
            return None if got == self.count else f"{got} registers, expected {self.count}"
        if self.function_code == 16 and getattr(reply, "count", None) != self.count:
            return f"count {getattr(reply, 'count', None)}, expected {self.count}"
        return None


async def write_heartbeat(client: Any, *, value: int, unit: int) -> Any:
    return await client.write_register(Holding.HEARTBEAT, value, device_id=unit)


def status_of(inputs: Inputs, bits: list[bool]) -> FillerStatus:
    return FillerStatus(
        state=STATE[inputs.state], job=inputs.job or None, count=inputs.count,
        weight_mg=inputs.weight_mg, fault=FAULT.get(inputs.fault),
        last_job=inputs.last_job or None, last_end=END[inputs.last_status],
        last_count=inputs.last_count, last_weight_mg=inputs.last_weight_mg,
        jobs_done=inputs.jobs_done, heartbeat_echo=inputs.heartbeat_echo,
        door_closed=bits[wire.Discrete.DOOR_CLOSED], vial_in_bay=bits[wire.Discrete.VIAL_IN_BAY],
        estop=bits[wire.Discrete.ESTOP], hopper_low=bits[wire.Discrete.HOPPER_LOW],
        vials_left=dict(zip(wire.VIAL_SIZES, inputs.vials_left, strict=True)),
    )
