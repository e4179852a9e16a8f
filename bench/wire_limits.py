"""Exchanges a second through our drivers over a simulated serial line, against the limit the
wire itself sets (the ICD's formula), and what a bare client gets on the same line.

- Vial filler over Modbus RTU, at 19200 and 115200 baud: ``job()``, one read of the 28 input
  registers. The wire's limit: the request's 8 characters and the reply's 61, 11 bits a
  character, each followed by the ICD's silence (3.5 characters, 1.75 ms above 19200 baud).
- Tablet counter at 115200 baud: ``status()``, one ``ST``. The wire's limit: both frames at
  10 bits a byte; the simulator runs 10,000× fast, so its 5-40 ms reply latency is a few
  microseconds.

A simulator paces each frame itself (a pty ignores baud), so these figures are the driver's
and the simulator's together; the bare client's on the same line tells them apart. The
simulator runs in a process of its own, as the robot is a machine of its own.

    make bench        (python -m bench.wire_limits for this one alone)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import statistics
import time

import serial_asyncio_fast
from pymodbus.client import AsyncModbusSerialClient

from bench.apart import simulator
from bench.table import Figure, table
from drivers.errors import UnknownJob
from drivers.tablet_counter import protocol as counter_wire
from drivers.tablet_counter.driver import SerialTabletCounter
from drivers.vial_filler import protocol as filler_wire
from drivers.vial_filler.driver import ModbusVialFiller
from simulators.vial_filler.server import RtuLine

READ_REQUEST, READ_REPLY = 8, 3 + 2 * filler_wire.INPUT_COUNT + 2


def rtu_limit(baud: int) -> float:
    """Reads of the 28 input registers a second that an RTU line at ``baud`` allows."""
    return 1 / (filler_wire.rtu_wire_time(READ_REQUEST, baud)
                + filler_wire.rtu_wire_time(READ_REPLY, baud))


async def filler_driven(url: str, baud: int, requests: int) -> float:
    async with ModbusVialFiller(name="bench", url=url, baud=baud, parity="N",
                                poll_interval=600, heartbeat_interval=600) as filler:
        began = time.perf_counter()
        for _ in range(requests):
            with contextlib.suppress(UnknownJob):
                await filler.job(1)
        return requests / (time.perf_counter() - began)


async def filler_bare(url: str, baud: int, requests: int) -> float:
    client = AsyncModbusSerialClient(url.removeprefix("modbus-rtu:"), baudrate=baud,
                                     parity="N")
    await client.connect()
    began = time.perf_counter()
    for _ in range(requests):
        assert not (await client.read_input_registers(0, count=28, device_id=1)).isError()
    rate = requests / (time.perf_counter() - began)
    client.close()
    return rate


async def rtu(baud: int, rounds: int, requests: int) -> Figure:
    ours, bare = [], []
    async with simulator("filler", "--cells", "4", "--baud", str(baud)) as url:
        for _ in range(rounds):
            bare.append(await filler_bare(url, baud, requests))
            ours.append(await filler_driven(url, baud, requests))
    o, b, limit = statistics.median(ours), statistics.median(bare), rtu_limit(baud)
    return Figure(f"filler RTU at {baud}: driver reads/s ÷ the wire's limit", o / limit, "",
                  0.95 if baud <= 19200 else 0.90, ours=f"{o:.1f}/s driver",
                  baseline=f"{limit:.1f}/s wire, {b:.1f}/s bare pymodbus")


async def counter_driven(url: str, requests: int) -> float:
    async with SerialTabletCounter(name="bench", url=url) as counter:
        began = time.perf_counter()
        for _ in range(requests):
            await counter.status()
        return requests / (time.perf_counter() - began)


async def counter_bare(url: str, requests: int) -> tuple[float, int, int]:
    """Exchanges a second of a client that writes ST frames and reads lines; the sizes of
    the request and of the reply."""
    reader, writer = await serial_asyncio_fast.open_serial_connection(url=url, baudrate=115200)
    frames = [counter_wire.encode(counter_wire.Request(n % 255 + 1, "ST"))
              for n in range(requests)]
    began = time.perf_counter()
    reply = b""
    for frame in frames:
        writer.write(frame)
        reply = await reader.readuntil(b"\r\n")
    rate = requests / (time.perf_counter() - began)
    writer.close()
    return rate, len(frames[0]), len(reply)


async def counter(rounds: int, requests: int) -> Figure:
    ours, bare = [], []
    sizes = [0, 0]
    async with simulator("counter", "--channels", "4", "--time-scale", "10000") as url:
        for _ in range(rounds):
            rate, *sizes = await counter_bare(url, requests)
            bare.append(rate)
            ours.append(await counter_driven(url, requests))
    limit = 1 / counter_wire.wire_time(sum(sizes), 115200)
    o, b = statistics.median(ours), statistics.median(bare)
    return Figure("counter ST at 115200: driver exchanges/s ÷ the wire's limit", o / limit, "",
                  0.90, ours=f"{o:.0f}/s driver",
                  baseline=f"{limit:.0f}/s wire ({sizes[0]}+{sizes[1]} bytes), "
                           f"{b:.0f}/s bare client")


async def figures(quick: bool = False) -> list[Figure]:
    """The wire rows of the table."""
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    rounds, requests = (2, 30) if quick else (5, 100)
    return [await rtu(19200, rounds, requests // 2), await rtu(115200, rounds, requests),
            await counter(rounds, requests * 2)]


if __name__ == "__main__":
    print(table(asyncio.run(figures())))


async def line_time(baud: int, frames: int) -> float:
    """The RTU line's time for a read's request and reply, as the simulator paces them, ÷ the
    ICD's formula (median of ``frames`` exchanges, each way one frame)."""
    line = RtuLine(baud)
    carrier = asyncio.create_task(line.run())
    host = os.open(line.host_path, os.O_RDWR | os.O_NOCTTY)
    device = os.open(line.device_path, os.O_RDWR | os.O_NOCTTY)
    loop = asyncio.get_running_loop()

    async def through(writer: int, reader: int, frame: bytes) -> None:
        got: asyncio.Future[bytes] = loop.create_future()

        def readable() -> None:
            if not got.done():
                got.set_result(os.read(reader, 4096))
        loop.add_reader(reader, readable)
        os.write(writer, frame)
        await got
        loop.remove_reader(reader)
    times = []
    try:
        for _ in range(frames):
            began = loop.time()
            await through(host, device, bytes(READ_REQUEST))
            await through(device, host, bytes(READ_REPLY))
            times.append(loop.time() - began)
    finally:
        carrier.cancel()
        line.close()
        for fd in (host, device):
            os.close(fd)
    formula = (filler_wire.rtu_wire_time(READ_REQUEST, baud)
               + filler_wire.rtu_wire_time(READ_REPLY, baud))
    return statistics.median(times) / formula
