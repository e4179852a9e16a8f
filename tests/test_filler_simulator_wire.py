"""The filler simulator answers the ICD on a real socket, byte for byte, even to odd requests."""

from __future__ import annotations

import struct

import pytest

from drivers.vial_filler import protocol as wire
from drivers.vial_filler.protocol import CmdResult, Command
from simulators.vial_filler.server import FillerSimulator
from tests.fake_devices import ModbusUpstream

START_BLOCK = [Command.START, 0, 4242, 1, 30, 20, 0, 0, 0]
"""A START of job 4242: 30 tablets of cell 1 into a 20-dram vial."""


def fc23(read_address: int, read_count: int, write_address: int, values: list[int]) -> bytes:
    return struct.pack(">BHHHHB", 23, read_address, read_count, write_address, len(values),
                       2 * len(values)) + b"".join(struct.pack(">H", v) for v in values)


def cmd_result(inputs_reply: bytes) -> int:
    registers = struct.unpack(f">{inputs_reply[1] // 2}H", inputs_reply[2:])
    return int(registers[wire.Input.CMD_RESULT])


async def test_a_request_answered_with_an_exception_changes_nothing(
    tcp_filler: FillerSimulator,
) -> None:
    device = tcp_filler.device
    link = ModbusUpstream(tcp_filler.url)
    try:
        reply = await link.ask(1, fc23(5000, 2, 0, START_BLOCK))
        assert reply == bytes([0x80 | 23, 0x02])  # the read part is outside the map
        assert device.started_jobs == []  # ... and the START in its write part never ran
        assert device.job is None
        assert await link.ask(1, fc23(0, 2, 0, START_BLOCK)) == bytes([23, 4, 0, 0, 0, 0])
        assert device.started_jobs == [4242]  # the same request, in the map, does run
    finally:
        link.close()


@pytest.mark.parametrize("code", [0x83, 0x84, 0x90, 0x97, 0xFF])
async def test_a_function_code_with_the_high_bit_set_is_illegal(
    tcp_filler: FillerSimulator, code: int,
) -> None:
    link = ModbusUpstream(tcp_filler.url)
    try:
        reply = await link.ask(1, bytes([code, 0, 0, 0, 1]))
    finally:
        link.close()
    assert reply == bytes([0x80 | code, 0x01])


@pytest.mark.parametrize("sensitivity", [0, 101, 65535])
async def test_a_start_on_a_cell_whose_sensitivity_is_out_of_range_is_not_calibrated(
    tcp_filler: FillerSimulator, sensitivity: int,
) -> None:
    link = ModbusUpstream(tcp_filler.url)
    try:
        write = struct.pack(">BHHBH", 6, wire.cal_sens_address(1), sensitivity, 0, 0)[:5]
        assert (await link.ask(1, write))[0] == 6
        await link.ask(1, struct.pack(">BHHB", 16, 0, len(START_BLOCK), 2 * len(START_BLOCK))
                       + b"".join(struct.pack(">H", v) for v in START_BLOCK))
        inputs = await link.ask(1, struct.pack(">BHH", 4, 0, wire.INPUT_COUNT))
    finally:
        link.close()
    assert cmd_result(inputs) == CmdResult.NOT_CALIBRATED
    assert tcp_filler.device.started_jobs == []
