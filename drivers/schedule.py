"""A periodic task's deadlines on the event loop's clock.

A poller that sleeps its period after each poll starts every poll late by that poll's own
round trip, and the lateness adds up. A ``Schedule`` makes each run due one period after the
last one was *due*, whatever it took, and wakes for it once (``loop.call_at``). A run that
falls more than a period behind (a slow link, a loaded machine) is not made up in a burst:
the next is due at once and the schedule goes on from there. ``hurry()`` makes the next run
due now (a command was sent: its effect is worth seeing at once).

It counts its runs and keeps the lateness of the latest ``KEPT`` of them, for benches and
diagnostics.
"""

from __future__ import annotations

import asyncio
from collections import deque

KEPT = 2048
"""How many recent runs' lateness a schedule keeps."""


class Schedule:
    """The deadlines of one periodic task (see the module)."""

    def __init__(self, first_in: float | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._first_in = first_in
        """The first run is due this long from the first wait (None: at once)."""
        self._due: float | None = None
        self._wake: asyncio.Future[None] | None = None
        self._hurried = False
        """Hurried while no run was waited for: the next is due at once."""
        self.runs = 0
        """Runs so far."""
        self.lateness: deque[float] = deque(maxlen=KEPT)
        """Seconds each recent run began after it was due (a hurried run: 0)."""

    async def next(self, period: float) -> None:
        """Wait until the next run is due: ``period`` after the last was due (the first: at
        once, or ``first_in`` from now)."""
        now = self._loop.time()
        due = now + (self._first_in or 0.0) if self._due is None else self._due + period
        if due < now - period or self._hurried:
            due = now  # fell behind (go on from now, no burst to catch up), or hurried
        self._hurried = False
        self._due = due
        if due > now:
            wake = self._wake = self._loop.create_future()
            timer = self._loop.call_at(due, _done, wake)
            try:
                await wake
            finally:
                timer.cancel()
                self._wake = None
        now = self._loop.time()
        if now < self._due:  # hurried: the schedule goes on from now
            self._due = now
        self.runs += 1
        self.lateness.append(now - self._due)

    def hurry(self) -> None:
        """Make the run being waited for, or else the next, due now."""
        if self._wake is not None:
            _done(self._wake)
        else:
            self._hurried = True


def _done(wake: asyncio.Future[None]) -> None:
    if not wake.done():
        wake.set_result(None)
