"""The console's live feed: which parts of the pages changed, told to every open page over
server-sent events as the supervisor's notices arrive (no page polls)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

from controller.robots.notices import (
    AlarmsChanged,
    FillEnded,
    FillProgress,
    FillStarted,
    Notice,
    OrderMoved,
    OrderReturned,
    OrderSettled,
    OutputTaken,
    OutputWaiting,
)

TOPICS = ("robots", "alarms", "bins", "queue", "labels", "maintenance")
"""The parts of pages the feed tells about; a page's section names the topics it shows."""

BEAT_S = 5.0
"""A page hears at least this often, so that it can tell a lost feed from a quiet floor."""
SETTLE_S = 0.05
"""Changes this close together go out as one message (a count ticks many times a second)."""


@dataclass(slots=True)
class Count:
    """A fill being counted now: what the robot has counted of what was asked."""

    fill_id: int
    order_id: int
    counted: int
    asked: int


def topics_of(notice: Notice) -> tuple[str, ...]:
    """The parts of the pages a notice changes."""
    match notice:
        case AlarmsChanged():
            return ("alarms", "bins", "robots")
        case FillStarted() | FillProgress():
            return ("robots",)
        case FillEnded():
            return ("robots", "bins", "queue", "labels")
        case OutputWaiting() | OutputTaken():
            return ("robots", "labels")
        case OrderMoved() | OrderSettled() | OrderReturned():
            return ("queue", "labels")
        case _:
            return ("robots",)


class Feed:
    """What changed, by topic, for every page that listens; and the counts in progress."""

    def __init__(self) -> None:
        self._version = 0
        self._changed: dict[str, int] = dict.fromkeys(TOPICS, 0)
        self._wake = asyncio.Event()
        self._closed = False
        self.counts: dict[str, Count] = {}
        """Each robot's fill in progress, as its last progress notice said."""

    def notice(self, notice: Notice) -> None:
        """A supervisor's notice (subscribe this)."""
        match notice:
            case FillStarted(fill):
                self.counts[fill.robot] = Count(fill.id, fill.order_id, 0, fill.quantity)
            case FillProgress(fill, count):
                self.counts[fill.robot] = Count(fill.id, fill.order_id, count, fill.quantity)
            case FillEnded(fill):
                self.counts.pop(fill.robot, None)
        self.tell(*topics_of(notice))

    def tell(self, *topics: str) -> None:
        """These parts changed: every listening page hears it."""
        self._version += 1
        for topic in topics:
            self._changed[topic] = self._version
        self._wake.set()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """End every listening page's stream (the site stops)."""
        self._closed = True
        self._wake.set()

    async def follow(self) -> AsyncIterator[tuple[str, ...]]:
        """The topics changed since the last yield; an empty tuple every BEAT_S when nothing
        changed. Ends when the feed closes."""
        seen = self._version
        while not self._closed:
            if self._version == seen:
                self._wake.clear()
                try:
                    async with asyncio.timeout(BEAT_S):
                        await self._wake.wait()
                except TimeoutError:
                    yield ()
                    continue
                await asyncio.sleep(SETTLE_S)
            if self._closed:
                return
            changed = tuple(t for t, v in self._changed.items() if v > seen)
            seen = self._version
            yield changed


def event(name: str, data: object) -> str:
    """One server-sent event."""
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"
