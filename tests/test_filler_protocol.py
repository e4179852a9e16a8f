"""The vial filler's register map, pinned to the ICD's tables."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.vial_filler import protocol as wire


def test_holding_registers_are_where_the_icd_puts_them() -> None:
    assert [(r.name, r.value) for r in wire.Holding] == [
        ("CMD", 0), ("JOB_ID", 1), ("CELL", 3), ("QTY", 4), ("VIAL", 5), ("CAP", 6),
        ("SPAN_REF", 7), ("HEARTBEAT", 8)]
    assert [wire.cal_sens_address(c) for c in (1, 2, 240)] == [100, 102, 578]


def test_input_registers_are_where_the_icd_puts_them() -> None:
    assert {r.name: r.value for r in wire.Input} == {
        "STATE": 0, "JOB_ID": 1, "COUNT": 3, "WEIGHT_MG": 4, "FAULT": 6, "CMD_RESULT": 7,
        "CELLS": 8, "FIRMWARE": 9, "JOBS_DONE": 10, "LAST_JOB": 11, "LAST_STATUS": 13,
        "LAST_COUNT": 14, "LAST_WEIGHT_MG": 15, "HEARTBEAT_ECHO": 17, "VIALS_LEFT": 20}
    assert wire.INPUT_COUNT == 28


def test_enumerations_match_the_icd() -> None:
    assert [c.value for c in wire.Command] == [0, 1, 2, 3, 4, 5, 6]
    assert [s.name for s in wire.State] == ["IDLE", "FILLING", "CAPPING", "DONE", "FAULT",
                                            "SAFE"]
    assert [f.name for f in wire.Fault] == ["NONE", "JAM", "CELL_EMPTY", "NO_VIAL", "DOOR_OPEN",
                                            "CAP_FAULT", "SCALE_FAULT"]
    assert [r.name for r in wire.CmdResult] == [
        "ACCEPTED", "BUSY", "BAD_CELL", "BAD_QUANTITY", "BAD_VIAL", "DUPLICATE_JOB",
        "OUTPUT_OCCUPIED", "NOT_CALIBRATED", "DOOR_OPEN"]
    assert [s.name for s in wire.LastStatus] == ["DONE", "JAM", "CELL_EMPTY", "ABORTED",
                                                 "NO_VIAL", "CAP_FAULT", "SAFE"]
    assert wire.VIAL_SIZES == (6, 8, 13, 16, 20, 30, 40, 60)
    assert {2, 3, 4, 6, 16, 23} == wire.FUNCTION_CODES


def test_32_bit_values_are_high_word_first() -> None:
    assert wire.split32(0x0001_0002) == (1, 2)
    assert wire.join32(0xFFFF, 0xFFFF) == 4_294_967_295
    block = wire.CommandBlock(wire.Command.START, job=70_000, cell=3, quantity=30, vial=13,
                              heartbeat=9)
    assert block.registers() == [1, 1, 4464, 3, 30, 13, 0, 0, 9]


def test_rtu_timing_follows_the_icd() -> None:
    assert wire.char_time(19200) == pytest.approx(11 / 19200)
    assert wire.frame_silence(19200) == pytest.approx(3.5 * 11 / 19200)
    assert wire.frame_silence(38400) == pytest.approx(0.00175)
    assert wire.rtu_wire_time(8, 9600) == pytest.approx(11.5 * 11 / 9600)


@given(st.integers(0, 0xFFFF_FFFF))
def test_split_and_join_are_inverse(value: int) -> None:
    assert wire.join32(*wire.split32(value)) == value


@given(st.lists(st.integers(0, 0xFFFF), min_size=28, max_size=28))
def test_inputs_decode_or_say_which_value_is_not_in_the_icd(regs: list[int]) -> None:
    try:
        inputs = wire.Inputs.decode(regs)
    except ValueError as exc:
        assert "is not in the ICD" in str(exc)
        return
    again = inputs.registers()
    assert again[:18] == regs[:18] and again[20:] == regs[20:]


def test_out_of_range_32_bit_value_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit in 32 bits"):
        wire.split32(1 << 32)
