"""The vial filler's Modbus register map (ICD version 1), pure: no I/O.

Addresses are PDU addresses counted from 0; 32-bit values take two
registers, high word first. The driver and the simulator both import this
module, so each register is named once; the tests pin it to the ICD's tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeVar

_E = TypeVar("_E", bound=IntEnum)

# -- link ---------------------------------------------------------------------

DEFAULT_TCP_PORT = 502
DEFAULT_UNIT = 1
UNITS = range(1, 248)
DEFAULT_BAUD = 19200
BAUD_RATES = (9600, 19200, 38400, 57600, 115200)
DEFAULT_PARITY = "E"
BITS_PER_CHAR = 11
"""Start, 8 data, parity and stop bits: 8E1 is 11 bits a character."""
FUNCTION_CODES = frozenset({0x02, 0x03, 0x04, 0x06, 0x10, 0x17})
"""Read discrete inputs, read holding, read input, write single, write multiple, read/write."""


def char_time(baud: int) -> float:
    """Seconds one character takes on an RTU line at ``baud``."""
    return BITS_PER_CHAR / baud


def frame_silence(baud: int) -> float:
    """The silence that ends an RTU frame: 3.5 characters, or 1.75 ms above 19200 baud."""
    return 0.00175 if baud > 19200 else 3.5 * char_time(baud)


def rtu_wire_time(frame_bytes: int, baud: int) -> float:
    """Seconds an RTU frame of ``frame_bytes`` takes, the silence after it included."""
    return frame_bytes * char_time(baud) + frame_silence(baud)


# -- holding registers (read and write) ---------------------------------------

class Holding(IntEnum):
    """Holding register addresses."""

    CMD = 0
    JOB_ID = 1
    """Two registers, 1–2."""
    CELL = 3
    QTY = 4
    VIAL = 5
    CAP = 6
    SPAN_REF = 7
    HEARTBEAT = 8


COMMAND_BLOCK = 9
"""Registers 0–8: a command is one write of all of them, or of CMD alone."""
CAL_BASE = 100


def cal_sens_address(cell: int) -> int:
    """CAL_SENS(cell); CAL_UNIT(cell) is the next register."""
    return CAL_BASE + 2 * (cell - 1)


class Command(IntEnum):
    """Values written to CMD."""

    NONE = 0
    START = 1
    ABORT = 2
    RESET_FAULT = 3
    TARE = 4
    SPAN = 5
    OUTPUT_TAKEN = 6


class Cap(IntEnum):
    """Cap types."""

    CHILD_RESISTANT = 0
    EASY_OPEN = 1


VIAL_SIZES = (6, 8, 13, 16, 20, 30, 40, 60)
"""Vial sizes in drams; VIALS_LEFT(s) is indexed by position in this tuple."""
MAX_JOB = 0xFFFF_FFFF
MAX_QTY = 9999
SENSITIVITY = range(1, 101)
UNIT_MASS_MAX_DMG = 0xFFFF
"""CAL_UNIT is one register of 0.1 mg."""


# -- input registers (read only) ----------------------------------------------

class Input(IntEnum):
    """Input register addresses."""

    STATE = 0
    JOB_ID = 1
    COUNT = 3
    WEIGHT_MG = 4
    FAULT = 6
    CMD_RESULT = 7
    CELLS = 8
    FIRMWARE = 9
    JOBS_DONE = 10
    LAST_JOB = 11
    LAST_STATUS = 13
    LAST_COUNT = 14
    LAST_WEIGHT_MG = 15
    HEARTBEAT_ECHO = 17
    VIALS_LEFT = 20


INPUT_COUNT = 28
"""Input registers 0–27, readable in one request."""


class State(IntEnum):
    """STATE."""

    IDLE = 0
    FILLING = 1
    CAPPING = 2
    DONE = 3
    FAULT = 4
    SAFE = 5


class Fault(IntEnum):
    """FAULT: why a job stopped."""

    NONE = 0
    JAM = 1
    CELL_EMPTY = 2
    NO_VIAL = 3
    DOOR_OPEN = 4
    CAP_FAULT = 5
    SCALE_FAULT = 6


class CmdResult(IntEnum):
    """CMD_RESULT: the outcome of the last command."""

    ACCEPTED = 0
    BUSY = 1
    BAD_CELL = 2
    BAD_QUANTITY = 3
    BAD_VIAL = 4
    DUPLICATE_JOB = 5
    OUTPUT_OCCUPIED = 6
    NOT_CALIBRATED = 7
    DOOR_OPEN = 8


CMD_RESULT_MEANING: dict[CmdResult, str] = {
    CmdResult.ACCEPTED: "accepted",
    CmdResult.BUSY: "busy: a job is in progress",
    CmdResult.BAD_CELL: "no such cell",
    CmdResult.BAD_QUANTITY: "quantity outside 1-9999",
    CmdResult.BAD_VIAL: "vial size not one of 6, 8, 13, 16, 20, 30, 40, 60 drams",
    CmdResult.DUPLICATE_JOB: "duplicate job: it is the job in progress or the last one",
    CmdResult.OUTPUT_OCCUPIED: "the output bay still holds a vial",
    CmdResult.NOT_CALIBRATED: "the cell is not calibrated",
    CmdResult.DOOR_OPEN: "the door is open",
}


class LastStatus(IntEnum):
    """LAST_STATUS: how the last finished job ended."""

    DONE = 0
    JAM = 1
    CELL_EMPTY = 2
    ABORTED = 3
    NO_VIAL = 4
    CAP_FAULT = 5
    SAFE = 6


FAULT_ENDS_AS: dict[Fault, LastStatus] = {
    Fault.JAM: LastStatus.JAM,
    Fault.CELL_EMPTY: LastStatus.CELL_EMPTY,
    Fault.NO_VIAL: LastStatus.NO_VIAL,
    Fault.DOOR_OPEN: LastStatus.ABORTED,
    Fault.CAP_FAULT: LastStatus.CAP_FAULT,
    Fault.SCALE_FAULT: LastStatus.ABORTED,
}
"""The LAST_STATUS a job stopped by each fault ends with once reset. The ICD
lists no LAST_STATUS for an open door or a scale fault: both end ABORTED."""


# -- discrete inputs -----------------------------------------------------------

class Discrete(IntEnum):
    """Discrete input addresses."""

    DOOR_CLOSED = 0
    VIAL_IN_BAY = 1
    ESTOP = 2
    HOPPER_LOW = 3


DISCRETE_COUNT = 4
HOPPER_LOW_BELOW = 20


# -- encodings -----------------------------------------------------------------

def split32(value: int) -> tuple[int, int]:
    """A 32-bit value as two registers, high word first."""
    if not 0 <= value <= 0xFFFF_FFFF:
        raise ValueError(f"{value} does not fit in 32 bits")
    return value >> 16, value & 0xFFFF


def join32(high: int, low: int) -> int:
    """Two registers, high word first, as one 32-bit value."""
    return (high << 16) | low


@dataclass(frozen=True, slots=True)
class CommandBlock:
    """Holding registers 0–8 as one command writes them."""

    command: Command
    job: int = 0
    cell: int = 0
    quantity: int = 0
    vial: int = 0
    cap: Cap = Cap.CHILD_RESISTANT
    span_ref: int = 0
    heartbeat: int = 0

    def registers(self) -> list[int]:
        """The nine registers, in address order."""
        return [self.command, *split32(self.job), self.cell, self.quantity, self.vial,
                self.cap, self.span_ref, self.heartbeat]

    @classmethod
    def decode(cls, regs: Sequence[int]) -> CommandBlock:
        """Registers 0–8 read back (values the ICD does not know are kept as read)."""
        if len(regs) != COMMAND_BLOCK:
            raise ValueError(f"a command block is {COMMAND_BLOCK} registers, not {len(regs)}")
        return cls(_enum(Command, regs[0]), join32(regs[1], regs[2]), regs[3], regs[4],
                   regs[5], _enum(Cap, regs[6]), regs[7], regs[8])


@dataclass(frozen=True, slots=True)
class Inputs:
    """Input registers 0–27, decoded."""

    state: State
    job: int
    count: int
    weight_mg: int
    fault: Fault
    cmd_result: CmdResult
    cells: int
    firmware: int
    jobs_done: int
    last_job: int
    last_status: LastStatus
    last_count: int
    last_weight_mg: int
    heartbeat_echo: int
    vials_left: tuple[int, ...]
    """Per size, in the order of VIAL_SIZES."""

    def registers(self) -> list[int]:
        """The 28 registers, in address order."""
        if len(self.vials_left) != len(VIAL_SIZES):
            raise ValueError(f"vials_left has {len(self.vials_left)} sizes, "
                             f"not {len(VIAL_SIZES)}")
        return [self.state, *split32(self.job), self.count, *split32(self.weight_mg),
                self.fault, self.cmd_result, self.cells, self.firmware, self.jobs_done & 0xFFFF,
                *split32(self.last_job), self.last_status, self.last_count,
                *split32(self.last_weight_mg), self.heartbeat_echo & 0xFFFF, 0, 0,
                *(min(v, 0xFFFF) for v in self.vials_left)]

    @classmethod
    def decode(cls, regs: Sequence[int]) -> Inputs:
        """Decode registers 0–27; ValueError names a value the ICD does not allow."""
        if len(regs) != INPUT_COUNT:
            raise ValueError(f"expected {INPUT_COUNT} input registers, got {len(regs)}")
        return cls(
            state=_enum(State, regs[Input.STATE]),
            job=join32(regs[1], regs[2]),
            count=regs[Input.COUNT],
            weight_mg=join32(regs[4], regs[5]),
            fault=_enum(Fault, regs[Input.FAULT]),
            cmd_result=_enum(CmdResult, regs[Input.CMD_RESULT]),
            cells=regs[Input.CELLS],
            firmware=regs[Input.FIRMWARE],
            jobs_done=regs[Input.JOBS_DONE],
            last_job=join32(regs[11], regs[12]),
            last_status=_enum(LastStatus, regs[Input.LAST_STATUS]),
            last_count=regs[Input.LAST_COUNT],
            last_weight_mg=join32(regs[15], regs[16]),
            heartbeat_echo=regs[Input.HEARTBEAT_ECHO],
            vials_left=tuple(regs[Input.VIALS_LEFT:Input.VIALS_LEFT + len(VIAL_SIZES)]),
        )


def _enum(kind: type[_E], value: int) -> _E:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(f"{m.value} {m.name}" for m in kind)
        raise ValueError(f"{kind.__name__} {value} is not in the ICD (expected one of "
                         f"{allowed})") from None


def register_span(table: str, start: int, count: int) -> str:
    """``read hr 0-8``: a maintenance read, or ValueError saying what is allowed."""
    if table not in ("hr", "ir") or not 0 <= start <= 0xFFFF or not 1 <= count <= 125:
        raise ValueError(f"{table}:{start}+{count}: expected hr or ir, an address 0-65535 and "
                         f"1-125 registers")
    return f"read {table} {start}-{start + count - 1}"


def register_write(address: int, value: int) -> str:
    """``write hr 3=12``: a maintenance write, or ValueError. Never CMD (hr 0): a command
    is one write of the whole block by its own call, and a raw one could start a job that no
    order asked for."""
    if address == Holding.CMD:
        raise ValueError("hr:0 is CMD: a command is sent by its own call (start, abort, tare, "
                         "span…), never as a raw write")
    if not 0 <= address <= 0xFFFF or not 0 <= value <= 0xFFFF:
        raise ValueError(f"hr:{address}={value}: expected an address and a value 0-65535")
    return f"write hr {address}={value}"


def span_ref(mass_mg: int) -> int:
    """SPAN_REF for a reference mass (units of 10 mg), or ValueError saying what fits."""
    if mass_mg < 10 or mass_mg % 10 or mass_mg // 10 > 0xFFFF:
        raise ValueError(f"span mass {mass_mg} mg: expected a multiple of 10 mg up to "
                         f"{0xFFFF * 10} mg")
    return mass_mg // 10
