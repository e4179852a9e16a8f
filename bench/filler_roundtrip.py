"""What the Modbus vial filler driver costs per request, against a bare pymodbus client.

Both read the filler's 28 input registers from the same simulated filler, in
alternating rounds, over Modbus TCP and over RTU on a pty (at 115200 baud,
with the line's wire timing); the result is the ratio of their median times
per request. The driver's call is ``job()``: one read, decoded and checked.
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

from drivers.errors import UnknownJob
from drivers.vial_filler.driver import ModbusVialFiller
from simulators.vial_filler.server import FillerSimulator

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


async def measure(transport: str) -> None:
    sim = FillerSimulator(cells=4, time_scale=1, baud=115200)
    await (sim.listen_tcp() if transport == "tcp" else sim.listen_rtu_pty())
    async with sim:
        bare_times, driven_times = [], []
        for _ in range(ROUNDS):
            bare_times.append(await bare(sim.url))
            driven_times.append(await driven(sim.url))
    b, d = statistics.median(bare_times), statistics.median(driven_times)
    print(f"filler round trip over {transport}: {REQUESTS} x read 28 input registers, "
          f"{ROUNDS} alternating rounds")
    print(f"  bare pymodbus client  {b * 1e3:7.3f} ms/request (median)")
    print(f"  driver                {d * 1e3:7.3f} ms/request (median)")
    print(f"  ratio driver/bare = {d / b:.2f}")


async def main() -> None:
    """Both transports, one after the other."""
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    await measure("tcp")
    await measure("rtu")


if __name__ == "__main__":
    asyncio.run(main())
