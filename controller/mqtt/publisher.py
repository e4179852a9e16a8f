"""The MQTT publisher: the outbox, in order, to the broker; a message leaves the outbox only
once the broker acknowledged it (PUBACK).

One connection at a time, each with a new aiomqtt client (a used one cannot
be re-entered); a short keepalive notices a half-open link; reconnects back
off with jitter. On connect it publishes the retained ``online`` status; the
will says ``offline`` should the process die; a clean stop sends what it can
and says ``offline`` itself.

Delivery is at least once: should the process die between the broker's
PUBACK and the outbox's commit (one SQLite commit), that message goes again
after the restart. Alarms carry ``seq`` and events an ``id``, so a
subscriber can tell.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiomqtt
import structlog

from controller.backoff import Backoff
from controller.clock import Clock, wait_set
from controller.config import MqttSettings, broker_address
from controller.logs import Trouble
from controller.mqtt.topics import Topics
from controller.store import Store
from controller.store.outbox import Message
from drivers.tasks import stop_tasks

log = structlog.get_logger(__name__)

IDLE_POLL_S = 0.5
"""How often an idle publisher looks for messages other processes (the CLI) wrote."""
ACK_TIMEOUT_S = 10.0
BATCH = 100
SWEEP_S = 0.5
"""How long to collect a site's retained messages after the first connect."""


@dataclass(frozen=True, slots=True)
class BrokerLink:
    """How to reach the broker."""

    host: str
    port: int
    tls: bool = False
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = None
    keepalive_s: int = 5

    @property
    def url(self) -> str:
        """``mqtt://HOST:PORT`` (``mqtts://`` with TLS)."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @classmethod
    def from_settings(cls, settings: MqttSettings, url: str,
                      resolve: Any = lambda path: path) -> BrokerLink:
        """The link a ``[mqtt]`` section describes, to ``url`` (the broker's, resolved)."""
        host, port, tls = broker_address(url)
        return cls(host, port, tls, resolve(settings.ca_file) if settings.ca_file else None,
                   settings.username, settings.password, settings.keepalive_s)


class Publisher:
    """Sends a store's outbox to one broker until stopped."""

    def __init__(self, store: Store, topics: Topics, link: BrokerLink, *,
                 clock: Clock | None = None, started_at: datetime | None = None,
                 rng: random.Random | None = None,
                 status: Callable[[], dict[str, Any]] = dict) -> None:
        self._store = store
        self._topics = topics
        self._link = link
        self._clock = clock or Clock()
        self._started_at = started_at or self._clock.now()
        self._backoff = Backoff(base=0.2, cap=10.0, rng=rng)
        self._status = status
        """Extra fields of the online status (the alarm flood)."""
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        """Set while a connection is up."""
        self.sent = 0
        """Messages the broker acknowledged since start."""
        self._swept = False
        self.ready = asyncio.Event()
        """Set once connected, status published and stale retained messages swept."""
        self.robots: frozenset[str] = frozenset()
        """The site's robots: a retained state of any other is stale."""
        self.problem: str | None = None
        """Why nothing is being published now (None while connected or not yet tried)."""
        self.trouble = Trouble("mqtt publisher", log)

    def start(self) -> None:
        """Begin publishing in the background."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mqtt-publisher")

    def wake(self) -> None:
        """Something was put in the outbox: send it now."""
        self._wake.set()

    async def stop(self, drain_s: float = 3.0) -> None:
        """Send what is waiting (for at most ``drain_s``), say ``offline``, disconnect."""
        if self._task is None:
            return
        self._stopping.set()
        self._wake.set()
        done, _ = await asyncio.wait({self._task}, timeout=drain_s)
        if not done:
            await stop_tasks([self._task])
        elif not self._task.cancelled() and self._task.exception() is not None:
            log.error("mqtt publisher failed", error=repr(self._task.exception()))
        self._task = None

    async def _run(self) -> None:
        lost: str | None = None
        while not self._stopping.is_set():
            try:
                async with self._client() as client:
                    self.connected.set()
                    self.problem = None
                    self._backoff.reset()
                    log.info("mqtt connected" if lost is None else "mqtt link recovered",
                             broker=f"{self._link.host}:{self._link.port}")
                    lost = None
                    await self._publish(client, self._topics.online(self._started_at,
                                                                    **self._status()))
                    if not self._swept:
                        await self._sweep(client)
                        self._swept = True
                    self.ready.set()
                    await self._drain(client)
                    await self._publish(client, self._topics.offline())
                    return
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                if lost is None:
                    lost = str(exc)
                    log.warning("mqtt broker unreachable; messages wait in the outbox",
                                broker=f"{self._link.host}:{self._link.port}", error=lost)
                self.problem = f"broker {self._link.host}:{self._link.port} unreachable: {exc}"
            except Exception as exc:  # a store error, a name that does not resolve, a bug
                # Publishing stops for now, never for good: the outbox keeps every message.
                self.connected.clear()
                self.trouble.failed(exc)
                self.problem = f"cannot publish: {type(exc).__name__}: {exc}"
            if self._stopping.is_set():
                return
            await wait_set(self._stopping, self._backoff.next_delay())

    async def _drain(self, client: aiomqtt.Client) -> None:
        """Send the outbox in order, each message deleted once acknowledged; wait for more."""
        while True:
            self._wake.clear()
            batch = await self._store.alarms.outbox(BATCH)
            self.trouble.recovered()
            for outgoing in batch:
                await self._publish(client, outgoing.message)
                await self._store.alarms.sent(outgoing.id)
                self.sent += 1
            if len(batch) == BATCH:
                continue
            if self._stopping.is_set():
                return
            await wait_set(self._wake, IDLE_POLL_S)

    async def _sweep(self, client: aiomqtt.Client) -> None:
        """Remove retained alarms and robot states the store does not stand behind.

        A broker outlives a store: another run of the same site (a demo's fresh
        store, a robot taken out of the configuration) may have left them.
        """
        root = self._topics.root
        await client.subscribe([(f"{root}/alarms/+", 1), (f"{root}/robots/+", 1)])
        retained: set[str] = set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SWEEP_S):
                async for message in client.messages:
                    if message.retain and message.payload:
                        retained.add(str(message.topic))
        await client.unsubscribe([f"{root}/alarms/+", f"{root}/robots/+"])
        standing = {f"{root}/alarms/{a.id}" for a in await self._store.alarms.alarms()}
        known = standing | {f"{root}/robots/{robot}" for robot in self.robots}
        for topic in sorted(retained - known):
            log.info("stale retained message removed", topic=topic)
            await self._publish(client, Message(topic, b"", retain=True))

    async def _publish(self, client: aiomqtt.Client, message: Message) -> None:
        await client.publish(message.topic, message.payload, qos=1, retain=message.retain,
                             timeout=ACK_TIMEOUT_S)

    def _client(self) -> aiomqtt.Client:
        link = self._link
        offline = self._topics.offline()
        tls: ssl.SSLContext | None = None
        if link.tls:
            tls = ssl.create_default_context(
                cafile=str(link.ca_file) if link.ca_file else None)
        return aiomqtt.Client(
            link.host, link.port, identifier=self._topics.client_id,
            username=link.username, password=link.password, keepalive=link.keepalive_s,
            will=aiomqtt.Will(offline.topic, offline.payload, qos=1, retain=True),
            tls_context=tls, timeout=ACK_TIMEOUT_S)
