"""What the Modbus vial filler driver costs per request, against a bare pymodbus client.

Both read the filler's 28 input registers from the same simulated filler, in
alternating rounds, over Modbus TCP (RTU: bench/wire_limits.py); the figure is
the ratio of their reads a second. The driver's call is ``job()``: one read, decoded and checked.
Its poller and heartbeat are slowed right down so they do not share the line.

    make bench
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
import time
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

from bench.apart import simulator
from bench.table import Figure, table
from drivers.errors import UnknownJob
from drivers.vial_filler.driver import ModbusVialFiller

ROUNDS = 5
REQUESTS = 100


def bare_client(url: str) -> Any:
    if url.startswith("modbus-tcp://"):
        host, port = url.removeprefix("modbus-tcp://").split(":")
        return AsyncModbusTcpClient(host, port=int(port))
    return AsyncModbusSerialClient(url.removeprefix("modbus-rtu:"), baudrate=115200, parity="N")


async def bare(url: str) -> float:
    """Seconds per read of input registers 0-27 for a bare pymodbus client."""
    client = bare_client(url)
    await client.connect()
    started = time.perf_counter()
    for _ in range(REQUESTS):
        reply = await client.read_input_registers(0, count=28, device_id=1)
        assert not reply.isError()
    elapsed = time.perf_counter() - started
    client.close()
    return elapsed / REQUESTS


async def driven(url: str) -> float:
    """Seconds per ``job()`` through ModbusVialFiller (the same one read)."""
    async with ModbusVialFiller(name="bench", url=url, baud=115200, parity="N",
                                poll_interval=60, heartbeat_interval=1.9) as filler:
        await asyncio.sleep(0.05)  # let the first poll and heartbeat pass
        started = time.perf_counter()
        for _ in range(REQUESTS):
            with contextlib.suppress(UnknownJob):
                await filler.job(1)
        return (time.perf_counter() - started) / REQUESTS


async def figures(quick: bool = False) -> list[Figure]:
    """The filler driver's row over Modbus TCP; the simulator in a process of its own, as
    the filler is a machine of its own."""
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    rounds = 3 if quick else ROUNDS
    bare_times, driven_times = [], []
    async with simulator("filler", "--cells", "4", "--listen", "modbus-tcp://127.0.0.1:0"
                         ) as url:
        for _ in range(rounds):
            bare_times.append(await bare(url))
            driven_times.append(await driven(url))
    b, d = statistics.median(bare_times), statistics.median(driven_times)
    return [Figure("filler driver over TCP: reads/s ÷ bare pymodbus reads/s", b / d, "", 0.97,
                   ours=f"{1 / d:,.0f}/s job()", baseline=f"{1 / b:,.0f}/s bare")]


if __name__ == "__main__":
    print(table(asyncio.run(figures())))
