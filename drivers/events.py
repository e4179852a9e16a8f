"""A device's events as streams: every reader gets each event, from the moment it listens.

A driver keeps a set of :class:`Backlog` queues, one per reader, and :func:`deliver` gives
each event to all of them; :class:`EventStream` is a reader's end.
"""

from __future__ import annotations

import asyncio
from typing import Generic, Self, TypeVar

import structlog

E = TypeVar("E")

log = structlog.get_logger(__name__)

EVENT_BACKLOG = 256
"""Events a stream keeps for a reader that has not read them; older ones are lost."""


class Backlog(asyncio.Queue[E | None], Generic[E]):
    """One reader's unread events, bounded: a reader that does not read loses the oldest."""

    def __init__(self, device: str, size: int = EVENT_BACKLOG) -> None:
        super().__init__(size)
        self.device = device
        self.lost = 0

    def offer(self, item: E | None) -> None:
        """Queue ``item`` (``None`` ends the stream), dropping the oldest when full."""
        if self.full():
            self.get_nowait()
            self.lost += 1
            if self.lost == 1:
                log.warning("event reader is not keeping up: oldest events are lost",
                            device=self.device, backlog=self.maxsize)
        self.put_nowait(item)


def deliver(listeners: set[Backlog[E]], item: E | None) -> None:
    """Give ``item`` to every listening stream (``None``: the link closed)."""
    for backlog in list(listeners):
        backlog.offer(item)


class EventStream(Generic[E]):
    """A device's events from the moment it was made until the link closes.

    It listens from creation (not from the first ``anext``), and waiting on it
    with a timeout loses nothing: ``await asyncio.wait_for(anext(stream), t)``
    is safe. ``close()`` stops listening. It keeps at most
    :data:`EVENT_BACKLOG` unread events, losing the oldest (logged once).
    """

    def __init__(self, listeners: set[Backlog[E]], device: str = "") -> None:
        self._queue: Backlog[E] = Backlog(device)
        self._listeners = listeners
        listeners.add(self._queue)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> E:
        item = await self._queue.get()
        if item is None:
            self.close()
            raise StopAsyncIteration
        return item

    def close(self) -> None:
        """Stop listening."""
        self._listeners.discard(self._queue)
