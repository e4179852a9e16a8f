"""A real broker for tests, and a subscriber that writes down what it receives.

``MQTT_URL`` (CI: Mosquitto on 127.0.0.1:1883) when set, otherwise an
embedded amqtt broker. Each test publishes under a site id of its own, so
tests never see each other's retained messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import aiomqtt

from controller.config import broker_address
from controller.mqtt.broker import EmbeddedBroker


def unique_site() -> str:
    """A site id no other test uses."""
    return f"t-{secrets.token_hex(4)}"


@contextlib.asynccontextmanager
async def broker_url() -> AsyncIterator[str]:
    """The machine's broker (MQTT_URL), or an embedded one for this test."""
    url = os.environ.get("MQTT_URL")
    if url:
        yield url
        return
    broker = EmbeddedBroker()
    await broker.start()
    try:
        yield broker.url
    finally:
        await broker.stop()


@dataclass
class Received:
    """One message as a subscriber got it."""

    topic: str
    payload: bytes
    retain: bool

    @property
    def json(self) -> Any:
        """The payload, decoded."""
        return json.loads(self.payload) if self.payload else None


@dataclass
class Subscriber:
    """Subscribes to ``rxfill/<site>/#`` and keeps every message, in order."""

    url: str
    site: str
    messages: list[Received] = field(default_factory=list)
    _client: aiomqtt.Client | None = None
    _task: asyncio.Task[None] | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def __aenter__(self) -> Self:
        host, port, _tls = broker_address(self.url)
        self._client = aiomqtt.Client(host, port, identifier=f"sub-{secrets.token_hex(4)}")
        await self._client.__aenter__()
        await self._client.subscribe(f"rxfill/{self.site}/#", qos=1)
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._task
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._client.__aexit__(None, None, None)

    async def _read(self) -> None:
        assert self._client is not None
        with contextlib.suppress(aiomqtt.MqttError):
            async for message in self._client.messages:
                payload = message.payload if isinstance(message.payload, bytes) else b""
                self.messages.append(Received(str(message.topic), payload, message.retain))
                self._arrived.set()

    def on(self, suffix: str) -> list[Received]:
        """Messages on ``rxfill/<site>/<suffix>``."""
        topic = f"rxfill/{self.site}/{suffix}"
        return [m for m in self.messages if m.topic == topic]

    async def caught_up(self) -> None:
        """Until everything the broker had for this subscription has arrived: a marker
        published now comes after it (a broker keeps one client's messages in order), so
        an absence checked afterwards is not a race with a clock."""
        assert self._client is not None
        marker = f"rxfill/{self.site}/test-marker/{secrets.token_hex(4)}"
        await self._client.publish(marker, b"", qos=1)
        await self.until(lambda: any(m.topic == marker for m in self.messages))

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait (15 s at most) until ``condition()`` holds over what arrived."""
        async with asyncio.timeout(15):
            while not condition():
                self._arrived.clear()
                await self._arrived.wait()


async def clear_retained(url: str, site: str) -> None:
    """Remove what a test left retained under its site (the machine's broker outlives it)."""
    async with Subscriber(url, site) as seen:
        await seen.caught_up()
    topics = {m.topic for m in seen.messages if m.retain and m.payload}
    if not topics:
        return
    host, port, _tls = broker_address(url)
    async with aiomqtt.Client(host, port, identifier=f"clean-{secrets.token_hex(4)}") as client:
        for topic in sorted(topics):
            await client.publish(topic, b"", qos=1, retain=True)
