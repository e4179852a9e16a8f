"""Clients written from the ICDs alone, against our simulators, over real ptys and sockets.

They share no code with the drivers: when both work, the simulator follows
the ICD and not merely our driver's reading of it.
"""

from __future__ import annotations

import asyncio
import os
import struct
import time

import pytest

from simulators.tablet_counter.server import CounterSimulator
from simulators.vial_filler.server import FillerSimulator
from tests.conformance import icd_filler_client as icd
from tests.conformance.icd_counter_client import IcdCounterClient, IcdError, checksum, frame


def test_the_icd_example_frames_checksum_as_printed() -> None:
    assert frame(">", "07 CT RX1001 3 30") == b">07 CT RX1001 3 30*2A\r\n"
    assert frame("<", "07 OK") == b"<07 OK*23\r\n"
    assert frame("!", "PG RX1001 25") == b"!PG RX1001 25*1A\r\n"
    assert checksum(b"") == "00"


async def test_icd_counter_client_counts_a_job(counter: CounterSimulator) -> None:
    def session() -> tuple[list[str], list[str], list[str], list[str]]:
        client = IcdCounterClient(counter.url)
        try:
            identity = client.request("ID")
            client.request("CT", "ICD-1", "2", "20")
            client.request("CT", "ICD-1", "2", "20")  # idempotent: OK, starts nothing
            ended = client.wait_event("EN")
            job = client.request("JB", "ICD-1")
            with pytest.raises(IcdError) as reused:
                client.request("CT", "ICD-1", "2", "21")
            assert reused.value.code == "E21"
            with pytest.raises(IcdError) as chute:
                client.request("CT", "ICD-2", "2", "5")
            assert chute.value.code == "E15"  # the chute still holds ICD-1
            client.request("DN", "ICD-1")
            state = client.request("ST")
            return identity, ended, job, state
        finally:
            client.close()

    identity, ended, job, state = await asyncio.to_thread(session)
    assert identity[4] == "4"
    assert ended[:3] == ["ICD-1", "DONE", "20"]
    assert job[:2] == ["DONE", "20"] and job[2] == ended[3]
    assert state[0] == "IDLE"
    assert counter.device.started_jobs == ["ICD-1"]


async def test_icd_counter_client_sees_the_icd_errors(counter: CounterSimulator) -> None:
    def codes() -> list[str]:
        client = IcdCounterClient(counter.url)
        seen = []
        try:
            for verb, args in (("XX", ()), ("CT", ("J", "99", "5")), ("CT", ("J", "9", "5")),
                               ("CT", ("J", "4", "5")), ("JB", ("NOPE",)),
                               ("CW", ("1", "0", "40")), ("ST", ("extra",))):
                try:
                    client.request(verb, *args)
                    seen.append("OK")
                except IcdError as exc:
                    seen.append(exc.code)
            client.request("CW", "2", "61", "45")
            seen.append(" ".join(client.request("CR", "2")))
        finally:
            client.close()
        return seen

    assert await asyncio.to_thread(codes) == ["E01", "E02", "E11", "E14", "E20", "E02", "E01",
                                              "61 45"]


# -- the vial filler -------------------------------------------------------------------------


def tcp_address(sim: FillerSimulator) -> tuple[str, int]:
    host, port = sim.url.removeprefix("modbus-tcp://").split(":")
    return host, int(port)


async def test_icd_filler_client_fills_a_vial(tcp_filler: FillerSimulator) -> None:
    async with icd.IcdFillerClient(*tcp_address(tcp_filler)) as client:
        regs = await client.inputs()
        assert regs[icd.CELLS] == 4 and regs[icd.FIRMWARE] > 0
        assert await client.command(icd.START, job=123_456_789, cell=1, qty=16, vial=8) == 0
        assert await client.command(icd.START, job=123_456_789, cell=1, qty=16, vial=8) == 5
        async with asyncio.timeout(10):
            while (regs := await client.inputs())[icd.STATE] != icd.DONE:
                await client.heartbeat()
                await asyncio.sleep(0.02)
        assert icd.job_of(regs, icd.LAST_JOB_HI) == 123_456_789
        assert regs[icd.LAST_STATUS] == 0 and regs[icd.LAST_COUNT] == 16
        assert abs(icd.job_of(regs, icd.LAST_WEIGHT_HI) - 16 * 250) < 50
        assert regs[icd.VIALS_LEFT + 1] == 199  # one 8-dram vial used
        bay = await client.raw("read_discrete_inputs", 0, count=4)
        assert bay.bits[:4] == [True, True, False, False]  # door closed, a vial in the bay
        assert await client.command(icd.START, job=2, cell=1, qty=5, vial=8) == 6
        assert await client.command(icd.OUTPUT_TAKEN) == 0
        assert (await client.inputs())[icd.STATE] == icd.IDLE
        assert await client.command(icd.START, job=3, cell=1, qty=5, vial=7) == 4
        assert await client.command(icd.START, job=3, cell=5, qty=5, vial=8) == 2
        assert await client.command(icd.START, job=3, cell=1, qty=0, vial=8) == 3
        assert await client.command(icd.START, job=3, cell=4, qty=5, vial=8) == 7
        cal = await client.raw("read_holding_registers", 100, count=8)
        assert cal.registers[:2] == [50, 2500] and cal.registers[6] == 0


async def test_icd_filler_client_sees_safe_without_heartbeat(tcp_filler: FillerSimulator) -> None:
    async with icd.IcdFillerClient(*tcp_address(tcp_filler)) as client:
        assert await client.command(icd.START, job=9, cell=2, qty=200, vial=30) == 0
        async with asyncio.timeout(10):
            while (regs := await client.inputs())[icd.STATE] != icd.SAFE:  # noqa: ASYNC110
                await asyncio.sleep(0.05)  # Modbus is polled; and no heartbeat is written
        assert regs[icd.COUNT] < 200
        assert await client.command(icd.RESET_FAULT) == 0
        regs = await client.inputs()
        assert regs[icd.LAST_STATUS] == 6 and regs[icd.STATE] == icd.IDLE


# -- Modbus exceptions, byte for byte ------------------------------------------------------


async def tcp_exchange(sim: FillerSimulator, pdu: bytes, unit: int = 1) -> bytes:
    """Send one MBAP-framed PDU; the reply's PDU."""
    reader, writer = await asyncio.open_connection(*tcp_address(sim))
    try:
        writer.write(struct.pack(">HHHB", 0x1234, 0, len(pdu) + 1, unit) + pdu)
        await writer.drain()
        header = await asyncio.wait_for(reader.readexactly(7), 2)
        length = struct.unpack(">H", header[4:6])[0]
        assert header[:2] == b"\x12\x34" and header[6] == unit
        return await asyncio.wait_for(reader.readexactly(length - 1), 2)
    finally:
        writer.close()


EXCEPTIONS = [
    ("read coils (unsupported)", bytes([0x01, 0, 0, 0, 1]), bytes([0x81, 0x01])),
    ("write coil (unsupported)", bytes([0x05, 0, 0, 0xFF, 0]), bytes([0x85, 0x01])),
    ("diagnostics (unsupported)", bytes([0x08, 0, 0, 0x12, 0x34]), bytes([0x88, 0x01])),
    ("device id (unsupported)", bytes([0x2B, 0x0E, 1, 0]), bytes([0xAB, 0x01])),
    ("mask write (unsupported)", bytes([0x16, 0, 8, 0xFF, 0xFF, 0, 0]), bytes([0x96, 0x01])),
    ("unknown function", bytes([0x41, 0, 0]), bytes([0xC1, 0x01])),
    ("holding 9 is unmapped", bytes([0x03, 0, 9, 0, 1]), bytes([0x83, 0x02])),
    ("holding past the last cell", bytes([0x03, 0, 100, 0, 9]), bytes([0x83, 0x02])),
    ("input 28 is unmapped", bytes([0x04, 0, 0, 0, 29]), bytes([0x84, 0x02])),
    ("discrete input 4 is unmapped", bytes([0x02, 0, 0, 0, 5]), bytes([0x82, 0x02])),
    ("write to an unmapped register", bytes([0x06, 0, 50, 0, 1]), bytes([0x86, 0x02])),
    ("read count 0", bytes([0x03, 0, 0, 0, 0]), bytes([0x83, 0x03])),
    ("read count over 125", bytes([0x04, 0, 0, 0, 126]), bytes([0x84, 0x03])),
    ("write byte count wrong", bytes([0x10, 0, 0, 0, 2, 3, 0, 1, 0, 2]), bytes([0x90, 0x03])),
]


@pytest.mark.parametrize(("what", "request_pdu", "reply"), EXCEPTIONS,
                         ids=[e[0] for e in EXCEPTIONS])
async def test_modbus_exceptions_over_tcp(tcp_filler: FillerSimulator, what: str,
                                          request_pdu: bytes, reply: bytes) -> None:
    assert await tcp_exchange(tcp_filler, request_pdu) == reply


# -- RTU on a pty: CRC by hand, exceptions and wire timing -------------------------------------


def crc16(data: bytes) -> bytes:
    """Modbus RTU CRC-16 (polynomial 0xA001, initial 0xFFFF), low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return bytes([crc & 0xFF, crc >> 8])


class RawRtu:
    """The host end of the pty, raw bytes."""

    def __init__(self, path: str) -> None:
        import termios
        import tty

        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        termios.tcflush(self.fd, termios.TCIOFLUSH)

    def close(self) -> None:
        os.close(self.fd)

    def exchange(self, unit: int, pdu: bytes, expect: int, timeout_s: float = 1.0) -> bytes:
        """Send one RTU frame; read ``expect`` bytes (or what came by the timeout)."""
        import select

        adu = bytes([unit]) + pdu
        os.write(self.fd, adu + crc16(adu))
        got = b""
        deadline = time.monotonic() + timeout_s
        while len(got) < expect and (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                got += os.read(self.fd, 256)
        return got


async def rtu_filler(baud: int = 19200) -> FillerSimulator:
    sim = FillerSimulator(cells=4, seed=2, time_scale=20, baud=baud)
    await sim.listen_rtu_pty()
    return sim


async def test_modbus_rtu_frames_and_exceptions_by_hand() -> None:
    sim = await rtu_filler()
    try:
        line = RawRtu(sim.url.removeprefix("modbus-rtu:"))
        try:
            reply = await asyncio.to_thread(line.exchange, 1, bytes([0x04, 0, 8, 0, 2]), 9)
            illegal = await asyncio.to_thread(line.exchange, 1, bytes([0x03, 0, 9, 0, 1]), 5)
            unsupported = await asyncio.to_thread(line.exchange, 1, bytes([0x01, 0, 0, 0, 1]), 5)
            absent = await asyncio.to_thread(line.exchange, 9, bytes([0x04, 0, 0, 0, 1]), 7, 0.3)
        finally:
            line.close()
    finally:
        await sim.close()
    assert reply[:3] == bytes([1, 0x04, 4]) and reply[3:7] == bytes([0, 4, 0, 213])
    assert reply[7:] == crc16(reply[:7])
    assert illegal == bytes([1, 0x83, 0x02]) + crc16(bytes([1, 0x83, 0x02]))
    assert unsupported == bytes([1, 0x81, 0x01]) + crc16(bytes([1, 0x81, 0x01]))
    assert absent == b""  # a unit that is not on the bus says nothing


@pytest.mark.parametrize("baud", [9600, 19200, 38400])
async def test_rtu_timing_follows_the_wire_formula(baud: int) -> None:
    sim = await rtu_filler(baud)
    try:
        line = RawRtu(sim.url.removeprefix("modbus-rtu:"))
        try:
            def measure() -> float:
                line.exchange(1, bytes([0x04, 0, 0, 0, 28]), 61)  # warm up
                times = []
                for _ in range(10):
                    started = time.perf_counter()
                    reply = line.exchange(1, bytes([0x04, 0, 0, 0, 28]), 61)
                    times.append(time.perf_counter() - started)
                    assert len(reply) == 61
                    time.sleep(0.005)
                # A busy machine only ever adds delay: the quickest exchange is the line's own.
                return min(times)

            quickest = await asyncio.to_thread(measure)
        finally:
            line.close()
    finally:
        await sim.close()
    # 8 request bytes, the 3.5-character silence that ends them, then 61 reply bytes.
    char = 11 / baud
    silence = 0.00175 if baud > 19200 else 3.5 * char
    formula = (8 + 61) * char + silence
    # Never quicker than the wire; at most a few milliseconds of a shared machine's
    # scheduling slower (the simulator's own pacing sleeps wake late under load).
    assert formula * 0.9 <= quickest <= formula * 1.1 + 0.004, (quickest, formula)
