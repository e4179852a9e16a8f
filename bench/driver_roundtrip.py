"""What the serial driver costs per request, against a bare client on the same wire.

Both ask the same simulated counter (on a pty, at 115200 baud) for ``ST``, in
alternating rounds, side by side; the result is the ratio of their median
times per request. The bare client writes precomputed frames and reads up to
CR LF: the floor that the wire and the simulator set.

    make bench
"""

from __future__ import annotations

import asyncio
import statistics
import time

import serial_asyncio_fast

from bench.table import Figure, table
from drivers.tablet_counter import protocol as wire
from drivers.tablet_counter.driver import SerialTabletCounter
from simulators.tablet_counter.server import CounterSimulator

ROUNDS = 7
REQUESTS = 200


async def bare(url: str) -> float:
    """Seconds per ST exchange for a client that only writes bytes and reads a line."""
    reader, writer = await serial_asyncio_fast.open_serial_connection(url=url, baudrate=115200)
    frames = [wire.encode(wire.Request(n % 256, "ST")) for n in range(1, REQUESTS + 1)]
    started = time.perf_counter()
    for frame in frames:
        writer.write(frame)
        await reader.readuntil(b"\r\n")
    elapsed = time.perf_counter() - started
    writer.close()
    return elapsed / REQUESTS


async def driven(url: str) -> float:
    """Seconds per ST exchange through SerialTabletCounter.status()."""
    async with SerialTabletCounter(name="bench", url=url) as counter:
        started = time.perf_counter()
        for _ in range(REQUESTS):
            await counter.status()
        return (time.perf_counter() - started) / REQUESTS


async def figures(quick: bool = False) -> list[Figure]:
    """The counter driver's row: ST exchanges a second through it against a bare client."""
    rounds = 3 if quick else ROUNDS
    sim = CounterSimulator(channels=4, time_scale=1000)
    await sim.listen_pty()
    async with sim:
        bare_times, driven_times = [], []
        for _ in range(rounds):
            bare_times.append(await bare(sim.url))
            driven_times.append(await driven(sim.url))
    b, d = statistics.median(bare_times), statistics.median(driven_times)
    return [Figure("counter driver: ST exchanges/s ÷ a bare client's, same pty", b / d, "",
                   ours=f"{1 / d:,.0f}/s driver", baseline=f"{1 / b:,.0f}/s bare")]


if __name__ == "__main__":
    print(table(asyncio.run(figures())))
