"""The console's Maintenance section (maintenance staff): one robot's wire, live, and its
bins' calibrations with the guided runs drawn as a chart, and its scale checks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import Request
from fastapi.responses import HTMLResponse, StreamingResponse

from controller.console.charts import run_errors
from controller.console.feed import event
from controller.console.web import HEADERS, Here, Signed, Watching, page
from controller.console.web import router as console_router
from controller.domain.roles import Duty, require
from controller.pharmacy.refusals import NotFound

router = console_router()
QUIET_S = 1.0
"""A trace stream says it is alive (and checks whether the site stops) this often."""


@router.get("/maintenance")
async def maintenance(request: Request, session: Signed, console: Here) -> HTMLResponse:
    """One robot (``?robot=``, the first by default): its live trace, each bin's
    calibration and guided runs, its scale checks."""
    require(session.person, Duty.TRACE)
    robots = list(console.pharmacy.supervisor.robots)
    robot = request.query_params.get("robot") or robots[0]
    if robot not in robots:
        raise NotFound(f"no robot {robot!r}; expected one of {', '.join(robots)}")
    bins, scales = await console.pharmacy.maintenance.calibrations(robot)
    charts = {g.id: run_errors(g.runs) for b in bins for g in b.guided}
    return page(request, "maintenance.html", session, robots=robots, robot=robot, bins=bins,
                scales=scales, charts=charts)


@router.get("/maintenance/{robot}/trace")
async def trace(robot: str, session: Watching, console: Here) -> StreamingResponse:
    """The robot's wire as server-sent events: ``frame`` with each line, ``beat`` while
    the line is quiet."""
    maintenance = console.pharmacy.maintenance
    maintenance.tap(robot, session.person)  # refused here, before the stream starts

    async def stream() -> AsyncIterator[str]:
        async with maintenance.watch(robot, session.person) as frames:
            yield event("beat", {})
            while not console.feed.closed:
                try:
                    async with asyncio.timeout(QUIET_S):
                        frame = await frames.get()
                except TimeoutError:
                    yield event("beat", {})
                    continue
                yield event("frame", frame.line())
    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={**HEADERS, "X-Accel-Buffering": "no"})
