"""The controller's one clock: wall time for records, monotonic sleeps for waiting.

Tests hand the supervisor a clock of their own; nothing in controller/ calls
``time.time()`` or ``datetime.now()`` directly.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime


class Clock:
    """Real time."""

    def now(self) -> datetime:
        """The time now, in UTC."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        await asyncio.sleep(seconds)
