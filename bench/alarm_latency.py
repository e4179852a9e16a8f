"""How long a bin's alarm takes to reach an MQTT subscriber after another process (the CLI)
changed the bin, beside a running site.

The site: the demo's configuration, its simulators, the supervisor publishing to the broker
(``MQTT_URL``, else an embedded one). "The CLI": a second ``Store`` on the same SQLite file,
as ``rxfill stock correct`` opens it; nothing tells the site of its change but the store. Each
round takes a bin below par (``bin_low`` raised) and back above it (returned to normal); the
time is from the correction's commit to the subscriber's message. The baseline: a message
published straight to the same broker, to the same subscriber.

    make bench        (python -m bench.alarm_latency for this one alone)
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import aiomqtt

from bench.table import Figure, table
from controller.cli.common import DEMO_CONFIG
from controller.config import load_config
from controller.domain.roles import Person, Role
from controller.logs import configure_logging
from controller.mqtt.topics import Topics
from controller.robots.supervisor import Supervisor
from controller.site import broker_link, simulated_robots
from controller.store import Store, sqlite_url

ROUNDS = 20
CLI = Person("bench", frozenset({Role.TECHNICIAN}))


async def state_of(messages: asyncio.Queue[tuple[str, bytes, float]], topic: str,
                   state: str) -> float:
    """When the subscriber got ``topic`` in ``state`` (perf_counter)."""
    while True:
        got, payload, at = await messages.get()
        if got == topic and payload and json.loads(payload)["state"] == state:
            return at


async def subscribe(host: str, port: int, topic: str,
                    messages: asyncio.Queue[tuple[str, bytes, float]],
                    ready: asyncio.Event) -> None:
    async with aiomqtt.Client(host, port) as client:
        await client.subscribe(topic, qos=1)
        ready.set()
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            messages.put_nowait((str(message.topic), payload, time.perf_counter()))


async def figures(quick: bool = False) -> list[Figure]:
    """The alarm latency's row."""
    configure_logging("warning", "console")
    rounds = 5 if quick else ROUNDS
    settings = load_config(DEMO_CONFIG)
    root = Topics(settings.config.site.id).root
    waits: list[float] = []
    direct: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "site.sqlite"
        store = await Store.open(sqlite_url(path), formulary=settings.formulary)
        cli = await Store.open(sqlite_url(path), formulary=settings.formulary)
        try:
            async with broker_link(settings, os.environ.get("MQTT_URL")) as link, \
                    simulated_robots(settings, store) as sims:
                assert link is not None
                messages: asyncio.Queue[tuple[str, bytes, float]] = asyncio.Queue()
                ready = asyncio.Event()
                listener = asyncio.create_task(subscribe(link.host, link.port, f"{root}/#",
                                                         messages, ready))
                await ready.wait()
                async with Supervisor(settings, store, urls={r: s.url for r, s in sims.items()},
                                      mqtt=link):
                    bin_ = next(b for b in await cli.stock.bins() if b.par and b.on_hand > b.par)
                    topic = f"{root}/alarms/bin-low-{bin_.robot}-{bin_.bin}"
                    full = bin_.on_hand
                    for _ in range(rounds):
                        for count, state in ((bin_.par - 1, "unack_active"),
                                             (full, "unack_rtn")):
                            await cli.stock.correct_bin(bin_.id, count, by=CLI, reason="bench")
                            changed = time.perf_counter()
                            async with asyncio.timeout(10):
                                waits.append(await state_of(messages, topic, state) - changed)
                        async with aiomqtt.Client(link.host, link.port) as client:
                            sent = time.perf_counter()
                            await client.publish(f"{root}/bench", b"{}", qos=1)
                            async with asyncio.timeout(10):
                                while (await messages.get())[0] != f"{root}/bench":
                                    pass
                            direct.append(time.perf_counter() - sent)
                listener.cancel()
        finally:
            await cli.close()
            await store.close()
    p99 = statistics.quantiles(waits, n=100)[98] * 1e3
    return [Figure("alarm: bin_low on a subscriber after another process's change, p99", p99,
                   "ms", 20, at_least=False,
                   ours=f"median {statistics.median(waits) * 1e3:.1f} ms of {len(waits)}",
                   baseline=f"a direct publish {statistics.median(direct) * 1e3:.1f} ms")]


if __name__ == "__main__":
    print(table(asyncio.run(figures())))
