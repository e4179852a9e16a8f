"""The simulated counter behaves like the machine: repeatable, on machine time, at wire speed."""

from __future__ import annotations

import time

from drivers.base import CounterEvent, JobReport, Progress
from drivers.tablet_counter import protocol as wire
from drivers.tablet_counter.driver import SerialTabletCounter
from simulators.tablet_counter.parts import SimChannel
from simulators.tablet_counter.server import CounterSimulator
from tests.helpers import until_end


async def minute_of_counting(seed: int) -> tuple[list[JobReport], float]:
    """Count 700 tablets (about a minute of machine time at 12 a second) at time scale 60."""
    sim = CounterSimulator(channels=[SimChannel(1, stock=1000, unit_mass_mg=155,
                                                spread_pct=1.8)], seed=seed, time_scale=60)
    await sim.listen_pty()
    reports = []
    async with sim, SerialTabletCounter(name="tc", url=sim.url) as tc:
        started = time.monotonic()
        for n, quantity in enumerate((300, 400)):
            events = tc.events()
            await tc.count(f"M{n}", 1, quantity)
            reports.append(await until_end(events, f"M{n}"))
            await tc.take(f"M{n}")
        elapsed = time.monotonic() - started
    return reports, elapsed


async def test_same_seed_gives_the_same_minute_of_machine_time() -> None:
    first, elapsed = await minute_of_counting(seed=5)
    second, _ = await minute_of_counting(seed=5)
    other, _ = await minute_of_counting(seed=6)
    assert first == second
    assert [r.count for r in first] == [300, 400]
    assert [r.weight_mg for r in other] != [r.weight_mg for r in first]
    assert elapsed >= 700 / 12 / 60  # never faster than the machine at that scale


async def test_replies_take_their_wire_time_at_the_configured_baud() -> None:
    sim = CounterSimulator(channels=2, baud=9600, time_scale=1000)
    await sim.listen_pty()
    async with sim, SerialTabletCounter(name="tc", url=sim.url, baud=9600) as tc:
        started = time.monotonic()
        for _ in range(5):
            await tc.identify()
        elapsed = time.monotonic() - started
    request = len(wire.encode(wire.Request(0, "ID")))
    reply = len(wire.encode(wire.Reply(0, True, ("RXSIM", "TC-64", "SN000000", "1.4.2", "2"))))
    assert elapsed >= 5 * wire.wire_time(request + reply, 9600)


async def test_progress_comes_every_25_tablets_at_least() -> None:
    sim = CounterSimulator(channels=1, time_scale=1000)
    await sim.listen_pty()
    seen: list[CounterEvent] = []
    async with sim, SerialTabletCounter(name="tc", url=sim.url) as tc:
        events = tc.events()
        await tc.count("P1", 1, 200)
        await until_end(events, "P1", seen)
    counts = [event.count for event in seen if isinstance(event, Progress)]
    gaps = [b - a for a, b in zip([0, *counts], counts, strict=False)]
    assert counts and max(gaps) <= 25
