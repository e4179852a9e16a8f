"""What the store-and-forward outbox costs per message, against bare QoS 1 publishes.

Both send the same 200 retained QoS 1 messages to the same broker (MQTT_URL,
or an embedded amqtt broker), in alternating rounds: a bare aiomqtt client
publishing them one after another (each waits for its PUBACK), and our
publisher taking them from the outbox of a real SQLite store, each deleted
once acknowledged (one commit per message, synchronous=FULL). The result is
the ratio of their median times per message.

    make bench
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import aiomqtt

from bench.table import Figure, table
from controller.config import broker_address
from controller.mqtt.broker import EmbeddedBroker
from controller.mqtt.publisher import BrokerLink, Publisher
from controller.mqtt.topics import Topics, encode
from controller.store import Store, sqlite_url
from controller.store.outbox import Message

ROUNDS = 5
MESSAGES = 200
TOPICS = Topics("bench")


def burst(round_number: int) -> list[Message]:
    return [Message(f"{TOPICS.root}/alarms/b-{n}", encode({"round": round_number, "n": n}),
                    retain=True) for n in range(MESSAGES)]


async def bare(host: str, port: int, messages: list[Message]) -> float:
    async with aiomqtt.Client(host, port, identifier="bench-bare") as client:
        started = time.perf_counter()
        for m in messages:
            await client.publish(m.topic, m.payload, qos=1, retain=m.retain)
        return (time.perf_counter() - started) / len(messages)


async def outboxed(store: Store, publisher: Publisher, messages: list[Message]) -> float:
    target = publisher.sent + len(messages)
    started = time.perf_counter()
    await store.alarms.enqueue(messages)
    publisher.wake()
    while publisher.sent < target:  # noqa: ASYNC110 - the publisher keeps no event per message
        await asyncio.sleep(0.001)
    return (time.perf_counter() - started) / len(messages)


async def figures(quick: bool = False) -> list[Figure]:
    """The outbox's row: the broker's acknowledged publishes through it against bare."""
    rounds = 2 if quick else ROUNDS
    url = os.environ.get("MQTT_URL")
    broker = None
    if not url:
        broker = EmbeddedBroker()
        url = await broker.start()
    host, port, _tls = broker_address(url)
    with tempfile.TemporaryDirectory() as scratch:
        store = await Store.open(sqlite_url(Path(scratch) / "bench.sqlite"))
        publisher = Publisher(store, TOPICS, BrokerLink(host, port))
        publisher.start()
        await publisher.ready.wait()
        bare_times, outbox_times = [], []
        for round_number in range(rounds):
            bare_times.append(await bare(host, port, burst(round_number)))
            outbox_times.append(await outboxed(store, publisher, burst(round_number)))
        await publisher.stop()
        await store.close()
    if broker is not None:
        await broker.stop()
    b, o = statistics.median(bare_times), statistics.median(outbox_times)
    return [Figure(f"mqtt: outbox messages/s ÷ bare aiomqtt publishes/s ({url})", b / o, "",
                   ours=f"{1 / o:,.0f}/s outbox + publisher",
                   baseline=f"{1 / b:,.0f}/s bare QoS 1")]


if __name__ == "__main__":
    print(table(asyncio.run(figures())))
