"""Our own fuzzing: random and mutated frames into both codecs and both simulators, and fake
devices answering the drivers with garbage, stale and foreign replies. Every input must end
in an answer the ICD allows or a typed error; nothing may crash or hang.

Short in ``make test``; ``make fuzz`` runs it long (``FUZZ_EXAMPLES``, default 40 here).
The simulators and fakes listen on real sockets; hypothesis drives them from a thread while
they run in the test's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers import errors
from drivers.tablet_counter import protocol as counter_wire
from drivers.tablet_counter.driver import SerialTabletCounter
from drivers.vial_filler import protocol as filler_wire
from drivers.vial_filler.driver import ModbusVialFiller
from simulators.tablet_counter.server import CounterSimulator
from simulators.vial_filler.server import FillerSimulator
from tests.fake_devices import (
    ModbusUpstream,
    counter_reply,
    scripted_counter,
    scripted_modbus,
)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))

VERBS = list(counter_wire.VERB_ARITY)
TOKENS = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcxyz0123456789._-", min_size=1,
                 max_size=34)


def frame(start: str, body: str) -> bytes:
    return f"{start}{body}*{counter_wire.checksum(body.encode()):02X}\r\n".encode()


@st.composite
def counter_frames(draw: st.DrawFn) -> bytes:
    """A frame as the ICD writes it (any verb, any arguments), then perhaps mutated."""
    seq = draw(st.integers(0, 255))
    words = [draw(st.sampled_from([*VERBS, "XX", "ct"]))]
    words += draw(st.lists(TOKENS, max_size=4))
    raw = frame(draw(st.sampled_from(">>><!")), " ".join([f"{seq:02X}", *words]))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(raw) - 1))
        how = draw(st.sampled_from(["flip", "drop", "dup", "byte"]))
        if how == "flip":
            raw = raw[:at] + bytes([raw[at] ^ (1 << draw(st.integers(0, 7)))]) + raw[at + 1:]
        elif how == "drop":
            raw = raw[:at] + raw[at + 1:]
        elif how == "dup":
            raw = raw[:at] + raw[at:at + 1] * draw(st.integers(2, 90)) + raw[at:]
        else:
            raw = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at:]
    return raw


RAW = st.binary(max_size=200) | counter_frames()


# -- the codecs ----------------------------------------------------------------------------


@FUZZ
@given(RAW)
def test_the_counter_codec_decodes_or_names_the_frame_error(raw: bytes) -> None:
    try:
        decoded = counter_wire.decode(raw)
    except counter_wire.FrameError:
        return
    assert counter_wire.decode(counter_wire.encode(decoded)) == decoded


@FUZZ
@given(st.lists(RAW, max_size=6), st.integers(1, 64))
def test_the_frame_splitter_never_returns_an_overlong_line(chunks: list[bytes],
                                                           size: int) -> None:
    splitter = counter_wire.FrameSplitter()
    stream = b"".join(chunks)
    for at in range(0, len(stream), size):
        for line in splitter.feed(stream[at:at + size]):
            assert line.endswith(b"\r\n") and len(line) <= counter_wire.MAX_FRAME


@FUZZ
@given(st.lists(st.integers(0, 0xFFFF), min_size=0, max_size=40))
def test_the_filler_codec_decodes_registers_or_says_why_not(registers: list[int]) -> None:
    for decode in (filler_wire.Inputs.decode, filler_wire.CommandBlock.decode):
        try:
            decode(registers)
        except ValueError:
            continue


# -- the simulators, on real sockets --------------------------------------------------------


async def test_the_counter_simulator_answers_the_icd_or_nothing() -> None:
    sim = CounterSimulator(channels=8, seed=3, time_scale=50)
    await sim.listen_tcp("127.0.0.1", 0)
    host, port = sim.url.removeprefix("socket://").rsplit(":", 1)
    codes = set(counter_wire.ERROR_MEANING)

    def run() -> None:
        with socket.create_connection((host, int(port)), timeout=10) as link:
            splitter = counter_wire.FrameSplitter()
            marks = iter(range(10**9))

            @FUZZ
            @given(RAW)
            def one(raw: bytes) -> None:
                # The frame, then a plain ST: its reply says the device has dealt with the
                # frame (it answers in order), so nothing here waits on a clock.
                seq = 0xA0 + next(marks) % 16
                link.sendall(raw + b"\r\n" + frame(">", f"{seq:02X} ST"))
                for reply in _until_reply(link, splitter, seq):
                    decoded = counter_wire.decode(reply)  # the device never sends garbage
                    if isinstance(decoded, counter_wire.Reply) and not decoded.ok:
                        assert decoded.args and decoded.args[0] in codes, reply

            one()

    async with sim:
        await asyncio.to_thread(run)


def _until_reply(link: socket.socket, splitter: counter_wire.FrameSplitter,
                 seq: int) -> list[bytes]:
    """Every line the device sends up to and including its reply to ``seq``."""
    got: list[bytes] = []
    mark = f"<{seq:02X} ".encode()
    while not any(line.startswith(mark) for line in got):
        data = link.recv(4096)
        assert data, "the simulator hung up"
        got += splitter.feed(data)
    return got


PDU = st.one_of(
    st.binary(min_size=1, max_size=40),
    st.tuples(st.sampled_from([2, 3, 4, 6, 16, 23, 1, 5, 8, 0x2B, 0x83]),
              st.integers(0, 300), st.integers(0, 130), st.binary(max_size=20)).map(
        lambda t: struct.pack(">BHH", t[0], t[1], t[2]) + t[3]),
)


async def test_the_filler_simulator_answers_every_pdu_with_a_reply_or_an_exception() -> None:
    sim = FillerSimulator(seed=4, time_scale=20)
    await sim.listen_tcp()
    url = sim.url

    def run() -> None:
        host, port = url.removeprefix("modbus-tcp://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as link:

            @FUZZ
            @given(PDU)
            def one(pdu: bytes) -> None:
                link.sendall(struct.pack(">HHHB", 7, 0, len(pdu) + 1, 1) + pdu)
                header = _exactly(link, 7)
                tid, _protocol, length, unit = struct.unpack(">HHHB", header)
                reply = _exactly(link, length - 1)
                assert (tid, unit) == (7, 1)
                if reply[0] & 0x80:
                    assert reply[0] == pdu[0] | 0x80 and reply[1] in (1, 2, 3, 4), reply
                else:
                    assert reply[0] == pdu[0], (pdu, reply)

            one()

    async with sim:
        await asyncio.to_thread(run)
        # It never filled a vial on a request it refused: any job it started was a START
        # whose whole request was taken.
        assert sim.device.state is not None


def _exactly(link: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = link.recv(n - len(data))
        assert chunk, "the simulator hung up"
        data += chunk
    return data


# -- the drivers against devices that lie -------------------------------------------------------


REPLY_ARGS = st.lists(TOKENS | st.sampled_from(["-", "DONE", "IDLE", "-5", "1_0", "COUNTING"]),
                      max_size=6)


async def test_the_counter_driver_ends_in_a_value_or_a_driver_error() -> None:
    said: dict[str, Any] = {"args": [], "ok": True, "seq": 0, "extra": []}

    def answer(request: counter_wire.Request) -> list[bytes]:
        seq = request.seq if said["seq"] == 0 else (request.seq + said["seq"]) % 256
        return [*said["extra"], counter_reply(seq, *said["args"], ok=said["ok"])]

    loop = asyncio.get_running_loop()
    async with scripted_counter(answer) as (url, _), \
            SerialTabletCounter(name="tc-fuzz", url=url, reply_timeout=0.03, retries=0) as tc:
        calls: list[Callable[[], Any]] = [
            tc.identify, tc.status, lambda: tc.job("J1"), tc.abort, tc.clear,
            lambda: tc.read_calibration(3), tc.weigh, lambda: tc.count("J1", 1, 10)]

        def run() -> None:
            @FUZZ
            @given(REPLY_ARGS, st.booleans(), st.sampled_from([0, 0, 0, 1, 255]),
                   st.lists(st.binary(max_size=30), max_size=2), st.sampled_from(calls))
            def one(args: list[str], ok: bool, stale: int, extra: list[bytes],
                    call: Callable[[], Any]) -> None:
                said.update(args=args, ok=ok, seq=stale, extra=extra)
                future = asyncio.run_coroutine_threadsafe(call(), loop)
                with contextlib.suppress(errors.DriverError):
                    future.result(timeout=10)

            one()

        await asyncio.to_thread(run)


async def test_the_filler_driver_ends_in_a_value_or_a_driver_error() -> None:
    sim = FillerSimulator(seed=6, time_scale=20)
    await sim.listen_tcp()
    upstream = ModbusUpstream(sim.url)
    rng = random.Random(9)
    lying = {"on": False}

    async def answer(unit: int, pdu: bytes) -> bytes | None:
        reply = await upstream.ask(unit, pdu)
        if not lying["on"] or rng.random() < 0.3:
            return reply
        how = rng.choice(["cut", "code", "bytes", "count", "silent"])
        if how == "cut":
            return reply[:rng.randint(1, max(1, len(reply) - 1))]
        if how == "code":
            return bytes([rng.choice([1, 2, 3, 4, 6, 16, 0x84])]) + reply[1:]
        if how == "count" and len(reply) > 1:
            return reply[:1] + bytes([reply[1] ^ 2]) + reply[2:]
        if how == "silent":
            return None
        return bytes([reply[0]]) + bytes(rng.randrange(256) for _ in range(len(reply) - 1))

    loop = asyncio.get_running_loop()
    try:
        async with sim, scripted_modbus(answer) as url:
            fv = ModbusVialFiller(name="fv-fuzz", url=url, timeout=0.2, retries=0,
                                  poll_interval=10, heartbeat_interval=10)
            await _reopen(fv)
            calls: list[Callable[[], Any]] = [
                fv.identify, fv.status, lambda: fv.job(5), lambda: fv.read_calibration(1),
                fv.tare, fv.abort]

            seen: dict[str, int] = {}

            def run() -> None:
                @FUZZ
                @given(st.sampled_from(calls), st.integers(0, 2**32))
                def one(call: Callable[[], Any], seed: int) -> None:
                    rng.seed(seed)
                    lying["on"] = True
                    future = asyncio.run_coroutine_threadsafe(call(), loop)
                    try:
                        future.result(timeout=10)
                        seen["value"] = seen.get("value", 0) + 1
                    except errors.DriverError as exc:
                        name = type(exc).__name__
                        seen[name] = seen.get(name, 0) + 1
                        # A lost link stays lost until reopened: reopen, honestly, for the
                        # next example.
                        lying["on"] = False
                        asyncio.run_coroutine_threadsafe(_reopen(fv), loop).result(timeout=10)

                one()

            await asyncio.to_thread(run)
            # It did get past the door: some answers believed, some lies caught as such.
            assert seen.get("value", 0) and seen.get("ProtocolError", 0), seen
            await fv.close()
    finally:
        upstream.close()


async def _reopen(fv: ModbusVialFiller) -> None:
    if not fv.connected:
        await fv.close()
        with contextlib.suppress(errors.DriverError):
            await fv.open()
            await _beaten(fv)


async def _beaten(fv: ModbusVialFiller) -> None:
    """Until the heartbeat's first beat after ``open`` was answered: the background's only
    request for the next 10 s, which must not meet the next example's lies."""
    first = fv._heartbeat
    async with asyncio.timeout(10):
        while fv._heartbeat == first:  # noqa: ASYNC110 - the beat task's own step
            await asyncio.sleep(0)
    await fv.status()  # after the beat on the line: it has been answered


@pytest.fixture(autouse=True)
def _quiet_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("ERROR")
