"""How many vial fillers one process polls at 10 Hz, through our driver against bare pymodbus
clients doing the same requests on the same schedule, and how late the polls are.

The fillers are simulators in another process (``python -m bench.fleet serve N``), on TCP.
Both sides poll every robot at 10 Hz on absolute deadlines (``drivers.schedule``): the input
registers and the discrete inputs, and write the heartbeat once a second. The figures:
- robots a core can poll: CPU seconds a poll costs the bare clients ÷ what it costs through
  the driver (1.0: the driver costs nothing of its own);
- the 99th percentile of how late a poll began, through the driver, with ``ROBOTS`` robots;
- CPU a robot costs the driver while it is idle (its idle polls and heartbeat), in percent of
  a core, against what 5 Hz polling costs (the driver before idle polling).

    make bench        (python -m bench.fleet for this one alone)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from pymodbus.client import AsyncModbusTcpClient

from bench.table import Figure, table
from drivers.schedule import Schedule
from drivers.tasks import stop_tasks
from drivers.vial_filler.driver import ModbusVialFiller
from simulators.vial_filler.server import FillerSimulator

ROBOTS = 200
SECONDS = 10.0
PERIOD = 0.1


async def serve(robots: int) -> None:
    """Run ``robots`` simulated fillers on TCP; print their urls; stop when stdin closes."""
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    sims = [FillerSimulator(cells=4, time_scale=1) for _ in range(robots)]
    for sim in sims:
        await sim.listen_tcp()
    print(json.dumps([sim.url for sim in sims]), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for sim in sims:
        await sim.close()


@contextlib.asynccontextmanager
async def fillers(robots: int) -> AsyncIterator[list[str]]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.fleet", "serve", str(robots),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert child.stdin is not None and child.stdout is not None
    try:
        yield json.loads(await child.stdout.readline())
    finally:
        child.stdin.close()
        async with asyncio.timeout(30):
            await child.wait()


async def window(seconds: float, schedules: Callable[[], list[Schedule]]
                 ) -> tuple[float, int, list[float]]:
    """CPU seconds, runs and lateness of every schedule, over ``seconds`` after a second's
    warm-up."""
    await asyncio.sleep(1.0)
    for schedule in schedules():
        schedule.lateness.clear()
    runs = sum(s.runs for s in schedules())
    cpu = time.process_time()
    await asyncio.sleep(seconds)
    cpu = time.process_time() - cpu
    late = [x for s in schedules() for x in s.lateness]
    return cpu, sum(s.runs for s in schedules()) - runs, late


async def driven(urls: list[str], seconds: float, poll: float, idle_poll: float
                 ) -> tuple[float, int, list[float]]:
    drivers = [ModbusVialFiller(name=f"f{n}", url=url, poll_interval=poll,
                                idle_poll_interval=idle_poll, heartbeat_interval=1.0)
               for n, url in enumerate(urls)]
    await asyncio.gather(*(d.open() for d in drivers))
    try:
        return await window(seconds, lambda: [d.polls for d in drivers if d.polls])
    finally:
        await asyncio.gather(*(d.close() for d in drivers))


async def bare(urls: list[str], seconds: float) -> tuple[float, int, list[float]]:
    clients = []
    for url in urls:
        host, port = url.removeprefix("modbus-tcp://").split(":")
        client = AsyncModbusTcpClient(host, port=int(port))
        await client.connect()
        clients.append(client)
    schedules: list[Schedule] = []

    async def every(period: float, work: Callable[[], Awaitable[object]]) -> None:
        schedule = Schedule()
        if period == PERIOD:
            schedules.append(schedule)
        while True:
            await schedule.next(period)
            await work()

    async def poll(client: AsyncModbusTcpClient) -> None:
        await client.read_input_registers(0, count=28, device_id=1)
        await client.read_discrete_inputs(0, count=4, device_id=1)
    async def beat(client: AsyncModbusTcpClient) -> None:
        await client.write_register(8, 1, device_id=1)
    tasks = [asyncio.create_task(every(PERIOD, functools.partial(poll, c))) for c in clients]
    tasks += [asyncio.create_task(every(1.0, functools.partial(beat, c))) for c in clients]
    try:
        return await window(seconds, lambda: schedules)
    finally:
        await stop_tasks(tasks)  # pymodbus' wait_for can swallow one cancellation (3.11)
        for client in clients:
            client.close()


async def figures(quick: bool = False) -> list[Figure]:
    """The fleet's rows of the table."""
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    robots, seconds, rounds = (50, 2.0, 1) if quick else (ROBOTS, SECONDS, 2)
    bare_costs: list[float] = []
    driven_costs: list[float] = []
    late: list[float] = []
    async with fillers(robots) as urls:
        for _ in range(rounds):  # alternating
            b_cpu, b_runs, _ = await bare(urls, seconds)
            d_cpu, d_runs, round_late = await driven(urls, seconds, PERIOD, PERIOD)
            bare_costs.append(b_cpu / b_runs)
            driven_costs.append(d_cpu / d_runs)
            late += round_late
        i_cpu, _, _ = await driven(urls, seconds, PERIOD, 1.0)
        f_cpu, _, _ = await driven(urls, seconds, 0.2, 0.2)
    per_bare, per_driven = statistics.median(bare_costs), statistics.median(driven_costs)
    p99 = statistics.quantiles(late, n=100)[98] * 1e3
    idle, before = (100 * cpu / seconds / robots for cpu in (i_cpu, f_cpu))
    return [
        Figure("fleet: robots polled at 10 Hz a core, driver ÷ bare pymodbus", per_bare /
               per_driven, "", 0.95, ours=f"{1 / per_driven / 10:,.0f}/core driver",
               baseline=f"{1 / per_bare / 10:,.0f}/core bare"),
        Figure(f"fleet: p99 lateness of a poll, {robots} robots at 10 Hz", p99, "ms", 10,
               at_least=False, ours=f"{len(late):,} polls through the driver"),
        Figure("fleet: CPU of an idle robot (1 Hz polls, 1 Hz heartbeat)", idle, "%",
               ours=f"{idle:.3f} % of a core a robot",
               baseline=f"{before:.3f} % polling at 5 Hz"),
    ]


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        asyncio.run(serve(int(sys.argv[2])))
    else:
        print(table(asyncio.run(figures())))
