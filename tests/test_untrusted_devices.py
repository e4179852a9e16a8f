"""A device's words are checked against its ICD before the controller believes them.

Each fake answers over a real socket with frames that are well formed on the
wire but say what the ICD does not allow; the driver must raise ProtocolError
(or drop the event), never hand the value on.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable

import pytest

from drivers import errors
from drivers.base import JobEnded, Progress
from drivers.events import EVENT_BACKLOG, Backlog, deliver
from drivers.tablet_counter import protocol as wire
from drivers.tablet_counter.driver import SerialTabletCounter
from drivers.vial_filler.driver import ModbusVialFiller
from simulators.vial_filler.server import FillerSimulator
from tests.fake_devices import (
    CounterAnswer,
    ModbusUpstream,
    PduAnswer,
    counter_event,
    counter_reply,
    scripted_counter,
    scripted_modbus,
)

BAD_NUMBERS = ["-5", "1_000", "0x10", "1" * 32, "12.5", "10000"]


def answering(verb: str, *args: str) -> CounterAnswer:
    def answer(request: wire.Request) -> list[bytes]:
        if request.verb == verb:
            return [counter_reply(request.seq, *args)]
        return [counter_reply(request.seq, "IDLE", "-", "0")]
    return answer


@pytest.mark.parametrize("count", BAD_NUMBERS)
@pytest.mark.parametrize(("verb", "args"), [("JB", ("DONE", "{}", "500")),
                                            ("ST", ("IDLE", "-", "{}"))])
async def test_a_count_outside_the_icd_grammar_is_a_protocol_error(
    count: str, verb: str, args: tuple[str, ...],
) -> None:
    said = tuple(arg.format(count) for arg in args)
    async with scripted_counter(answering(verb, *said)) as (url, _), \
            SerialTabletCounter(name="tc-liar", url=url) as tc:
        with pytest.raises(errors.ProtocolError, match=r"not a decimal|outside"):
            await (tc.job("J1") if verb == "JB" else tc.status())


@pytest.mark.parametrize("weight", ["-5", "1_000", "1" * 32, "0.5"])
async def test_a_weight_outside_the_icd_grammar_is_a_protocol_error(weight: str) -> None:
    async with scripted_counter(answering("WT", weight, "1")) as (url, _), \
            SerialTabletCounter(name="tc-liar", url=url) as tc:
        with pytest.raises(errors.ProtocolError, match="WT"):
            await tc.weigh()


@pytest.mark.parametrize(("verb", "args", "call"), [
    ("ST", ("idle", "-", "0"), "status"),
    ("ST", ("IDLE", "J_1", "0"), "status"),
    ("ST", ("IDLE", "J" * 17, "0"), "status"),
    ("JB", ("done", "5", "500"), "job"),
    ("ID", ("V", "M", "S", "1.0", "65"), "identify"),
    ("ID", ("V", "M", "S", "1.0", "0"), "identify"),
    ("CR", ("101", "20"), "read_calibration"),
    ("CR", ("50", "501"), "read_calibration"),
    ("AB", ("J_1", "3"), "abort"),
    ("CL", ("EXTRA",), "clear"),
])
async def test_a_reply_outside_the_icd_grammar_is_a_protocol_error(
    verb: str, args: tuple[str, ...], call: str,
) -> None:
    async with scripted_counter(answering(verb, *args)) as (url, _), \
            SerialTabletCounter(name="tc-liar", url=url) as tc:
        method = getattr(tc, call)
        with pytest.raises(errors.ProtocolError):
            await (method("J1") if call == "job" else method(3) if call == "read_calibration"
                   else method())


async def test_the_grammar_still_takes_every_legal_value() -> None:
    async with scripted_counter(answering("JB", "DONE", "9999", "0099")) as (url, _), \
            SerialTabletCounter(name="tc-liar", url=url) as tc:
        report = await tc.job("J1")
    assert (report.count, report.weight_mg) == (9999, 99)


@pytest.mark.parametrize("bad", [
    ("EN", "J1", "COUNTING", "5", "100"),
    ("EN", "J1", "done", "5", "100"),
    ("EN", "J1", "DONE", "-5", "100"),
    ("EN", "J1", "DONE", "5", "1_00"),
    ("PG", "J1", "1" * 32),
    ("PG", "J.1", "3"),
])
async def test_an_event_outside_the_icd_grammar_is_dropped_not_believed(
    bad: tuple[str, ...],
) -> None:
    async with scripted_counter(answering("ST", "IDLE", "-", "0")) as (url, pushes), \
            SerialTabletCounter(name="tc-liar", url=url) as tc:
        events = tc.events()
        pushes.extend([counter_event(*bad), counter_event("PG", "J2", "7")])
        await tc.status()  # the pushes go out ahead of this reply
        first = await asyncio.wait_for(anext(events), 5)
    assert first == Progress("J2", 7)
    assert not isinstance(first, JobEnded)


# -- the filler: every reply must be the one asked for ------------------------------


Lie = Callable[[bytes, bytes], bytes]
"""The reply PDU to send instead of the device's, given the request's and the device's."""


def _lying(upstream: ModbusUpstream, lie: Lie) -> PduAnswer:
    async def answer(unit: int, pdu: bytes) -> bytes | None:
        return lie(pdu, await upstream.ask(unit, pdu))
    return answer


def _short_calibration(pdu: bytes, reply: bytes) -> bytes:
    if pdu[0] == 3:  # read holding registers: answer one register where two were asked
        return bytes([3, 2]) + reply[2:4]
    return reply


def _wrong_code(pdu: bytes, reply: bytes) -> bytes:
    if pdu[0] == 3:  # answered as if input registers had been read
        return bytes([4]) + reply[1:]
    return reply


def _wrong_address(pdu: bytes, reply: bytes) -> bytes:
    if pdu[0] == 16:  # a write echoing another address
        address, count = struct.unpack(">HH", reply[1:5])
        return bytes([16]) + struct.pack(">HH", address + 1, count)
    return reply


@pytest.mark.parametrize(("lie", "call", "says"), [
    (_short_calibration, "read_calibration", "cell 1"),
    (_wrong_code, "read_calibration", "function code"),
    (_wrong_address, "tare", "address"),
])
async def test_a_filler_reply_that_is_not_the_one_asked_for_is_a_protocol_error(
    tcp_filler: FillerSimulator, lie: Lie, call: str, says: str,
) -> None:
    upstream = ModbusUpstream(tcp_filler.url)
    try:
        async with scripted_modbus(_lying(upstream, lie)) as url, \
                ModbusVialFiller(name="fv-liar", url=url, poll_interval=0.05) as fv:
            with pytest.raises(errors.ProtocolError, match=says):
                await (fv.read_calibration(1) if call == "read_calibration" else fv.tare())
    finally:
        upstream.close()


# -- event streams are bounded -------------------------------------------------------


def test_a_reader_that_does_not_read_loses_the_oldest_events_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    listeners: set[Backlog[int]] = set()
    backlog: Backlog[int] = Backlog("tc-slow")
    listeners.add(backlog)
    with caplog.at_level(logging.WARNING):
        for n in range(EVENT_BACKLOG + 10):
            deliver(listeners, n)
        deliver(listeners, None)
    kept = [backlog.get_nowait() for _ in range(backlog.qsize())]
    assert len(kept) == EVENT_BACKLOG
    assert kept[-1] is None  # the end of the stream always arrives
    assert kept[0] == 11  # the oldest went first
    assert backlog.lost == 11
    assert sum("not keeping up" in record.getMessage() for record in caplog.records) <= 1
