"""Machine time for simulators: every machine duration runs ``time_scale`` times faster."""

from __future__ import annotations

import asyncio
import time


class MachineClock:
    """Sleeps and reads in machine seconds; ``time_scale`` 60 runs a minute in a second."""

    def __init__(self, time_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise ValueError(f"time scale must be above 0, not {time_scale}")
        self.time_scale = time_scale
        self._origin = time.monotonic()

    def now(self) -> float:
        """Machine seconds since this clock was made."""
        return (time.monotonic() - self._origin) * self.time_scale

    async def sleep(self, machine_seconds: float) -> None:
        """Wait ``machine_seconds`` of machine time."""
        await asyncio.sleep(max(0.0, machine_seconds) / self.time_scale)
