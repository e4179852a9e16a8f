"""Stopping background tasks for certain, on Python 3.11.

On 3.11 ``asyncio.wait_for`` can swallow a cancellation when the awaited
future completes at the same moment (CPython gh-86296, fixed in 3.12), and
pymodbus waits on every reply with ``wait_for``. A task cancelled once may
then carry on. These helpers cancel until the task has truly stopped, and
let a loop notice a cancellation that was swallowed inside it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

RECANCEL_S = 0.2
"""How long to wait for a cancelled task before cancelling it again."""


def cancelled() -> bool:
    """True when the current task has been asked to stop (even if a library ate the error)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def stop_tasks(tasks: Sequence[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait until every one has finished, cancelling again as needed.

    A task's own failure is not raised here: it was logged where it happened.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=RECANCEL_S)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # mark it retrieved, so asyncio does not warn about it
