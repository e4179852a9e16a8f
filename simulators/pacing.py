"""Frames delivered on absolute deadlines: one wake of the event loop a frame.

A pty ignores baud, so a simulator holds each frame for its wire time itself. Sleeping for
it frame by frame (``asyncio.sleep``, ``wait_for``) wakes about a millisecond late here each
time (epoll's timeout is in whole milliseconds), and the lateness of every sleep adds up in
an exchange. A ``Pacer`` instead works out when each frame would have left the wire, from
when the line was free and when the frame began, and hands it over at that moment
(``loop.call_at``), aimed early by the lateness it has seen its own wakes have, so that on
average a frame arrives when the formula says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

SETTLE = 0.05
"""How much each wake moves the estimate of the loop's lateness."""
MOST_EARLY_S = 0.0015
"""The estimate never aims earlier than this (epoll rounds up to a whole millisecond)."""


class Pacer:
    """Hands frames over at their deadlines (event-loop time), in order."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.late_s = 0.0005
        """The loop's usual lateness on a timer, as measured (what wakes aim early by)."""
        self.free_at = 0.0
        """When the line is free again: the deadline of the last frame handed over."""
        self._pending: set[asyncio.TimerHandle] = set()

    def now(self) -> float:
        """The event loop's time."""
        return self._loop.time()

    def after_line(self, start: float, seconds: float) -> float:
        """The deadline of a frame that is ``seconds`` long on the wire and begins at
        ``start`` or once the line is free, whichever is later; the line is busy until then."""
        self.free_at = max(self.free_at, start) + seconds
        return self.free_at

    def at(self, deadline: float, deliver: Callable[[], None]) -> asyncio.TimerHandle:
        """Call ``deliver`` at ``deadline`` (at once if it has passed); cancel the handle to
        call it off."""
        aim = deadline - self.late_s
        timed = aim > self._loop.time()  # a wake already due says nothing of the loop's timers

        def wake() -> None:
            self._pending.discard(handle)
            if timed:
                late = self._loop.time() - aim
                self.late_s = min(MOST_EARLY_S,
                                  max(0.0, self.late_s + SETTLE * (late - self.late_s)))
            deliver()
        handle = self._loop.call_at(aim, wake)
        self._pending.add(handle)
        return handle

    def cancel(self) -> None:
        """Drop every frame not yet handed over (the line was cut)."""
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()
        self.free_at = 0.0
