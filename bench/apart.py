"""Simulators in a process of their own, as a robot is a machine of its own: what a bench
measures of our side is then not shared with the simulator's work on the same event loop."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator


@contextlib.asynccontextmanager
async def simulator(*args: str) -> AsyncIterator[str]:
    """``rxfill simulate ARGS`` in a child process; yields the url it listens on."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "controller", "simulate", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert child.stdout is not None
    try:
        async with asyncio.timeout(30):
            while line := (await child.stdout.readline()).decode():
                if line.startswith("listening on "):
                    break
            else:
                raise RuntimeError(f"rxfill simulate {' '.join(args)} ended before listening")
        yield line.removeprefix("listening on ").strip()
    finally:
        with contextlib.suppress(ProcessLookupError):
            child.terminate()
        await child.wait()
