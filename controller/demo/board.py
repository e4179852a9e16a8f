"""The demo's alarm board: an MQTT subscriber that prints what it receives, as a technician's
phone would show it, and calls the technician when a bin runs low."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import aiomqtt
from rich.console import Console

from controller.mqtt.publisher import BrokerLink


class AlarmBoard:
    """Subscribes to a site's alarms and events; ``async with`` it while the demo runs."""

    def __init__(self, console: Console, link: BrokerLink, site: str,
                 on_low: Callable[[str, int], None], on_alarm: Callable[[str], None]) -> None:
        self._console = console
        self._link = link
        self._site = site
        self._on_low = on_low
        self._on_alarm = on_alarm
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self.raised: set[str] = set()
        self.over: set[str] = set()
        self._changed = asyncio.Event()

    async def __aenter__(self) -> Self:
        self._client = aiomqtt.Client(self._link.host, self._link.port,
                                      identifier=f"rxfill-demo-board-{self._site}")
        await self._client.__aenter__()
        root = f"rxfill/{self._site}"
        await self._client.subscribe([(f"{root}/alarms/#", 1), (f"{root}/events/#", 1)])
        self._task = asyncio.create_task(self._read(), name="demo-alarm-board")
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

    async def settled(self) -> None:
        """Until every alarm the board saw raised is over."""
        while self.raised - self.over:
            self._changed.clear()
            await self._changed.wait()

    async def _read(self) -> None:
        assert self._client is not None
        async for message in self._client.messages:
            topic = str(message.topic).removeprefix(f"rxfill/{self._site}/")
            payload = message.payload if isinstance(message.payload, bytes) else b""
            self._show(topic, json.loads(payload) if payload else None)
            self._changed.set()

    def _show(self, topic: str, body: dict[str, Any] | None) -> None:
        say = self._console.print
        if topic.startswith("alarms/"):
            alarm_id = topic.removeprefix("alarms/")
            if body is None:
                self.over.add(alarm_id)
                say(f"  [cyan]mqtt ← {topic}[/]: (empty, retained: the alarm is over)")
                return
            say(f"  [cyan]mqtt ← {topic}[/]: {body['type']} {body['priority']} "
                f"{body['state']} (seq {body['seq']}): {body['message']}")
            if body["state"] in ("unack_active", "unack_rtn"):
                self.raised.add(alarm_id)
                self.over.discard(alarm_id)
                self._on_alarm(alarm_id)
            if body["type"] == "bin_low" and body["state"] in ("unack_active", "ack_active"):
                self._on_low(body["robot"], body["bin"])
        elif body is not None:
            fields = ", ".join(f"{k} {v}" for k, v in body.items() if k not in ("event", "at"))
            say(f"  [cyan]mqtt ← {topic}[/]: {fields}")
