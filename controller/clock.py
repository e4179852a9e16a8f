"""The controller's one clock: wall time for records, monotonic sleeps for waiting.

Tests hand the supervisor a clock of their own; nothing in controller/ calls
``time.time()`` or ``datetime.now()`` directly.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime


async def wait_set(event: asyncio.Event, seconds: float) -> bool:
    """Until ``event`` is set, for at most ``seconds``; whether it was."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
    return event.is_set()


class Clock:
    """Real time."""

    def now(self) -> datetime:
        """The time now, in UTC."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        await asyncio.sleep(seconds)
