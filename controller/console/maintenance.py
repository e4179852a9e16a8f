"""The console's Maintenance section (maintenance staff): one robot's wire, live; its bins'
calibrations with the guided runs drawn as a chart, and its scale checks; a guided calibration
run on the site's link (the robot out of service), followed live, and its proposal accepted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse

from controller.config import ChannelCalibration
from controller.console.actions import act_on, fields_of
from controller.console.charts import run_errors
from controller.console.feed import event
from controller.console.pages import SECTIONS
from controller.console.sessions import Session
from controller.console.web import HEADERS, Console, Here, Signed, Watching, page
from controller.console.web import router as console_router
from controller.domain.roles import Duty, require
from controller.domain.tuning import Plan
from controller.pharmacy.maintenance import CalibrationRefused
from controller.pharmacy.refusals import NotFound

router = console_router()
QUIET_S = 1.0
"""A trace stream says it is alive (and checks whether the site stops) this often."""


async def _guided(console: Console, session: Session,
                  query: Mapping[str, str]) -> dict[str, Any]:
    require(session.person, Duty.TRACE)
    robot = query.get("robot", "")
    running = console.pharmacy.maintenance.running.get(robot)
    runs = [r.as_dict() for r in running.runs] if running else []
    return {"running": running, "running_chart": run_errors(runs) if runs else None,
            "robot": robot}


SECTIONS["guided"] = ("_guided.html", _guided)


@router.get("/maintenance")
async def maintenance(request: Request, session: Signed, console: Here) -> HTMLResponse:
    """One robot (``?robot=``, the first by default): its live trace, each bin's
    calibration and guided runs, its scale checks, a guided calibration to run."""
    require(session.person, Duty.TRACE)
    robots = list(console.pharmacy.supervisor.robots)
    robot = request.query_params.get("robot") or robots[0]
    if robot not in robots:
        raise NotFound(f"no robot {robot!r}; expected one of {', '.join(robots)}")
    bins, scales = await console.pharmacy.maintenance.calibrations(robot)
    charts = {g.id: run_errors(g.runs) for b in bins for g in b.guided}
    context = await _guided(console, session, {"robot": robot})
    return page(request, "maintenance.html", session, robots=robots, bins=bins,
                scales=scales, charts=charts,
                out_of_service=robot in await console.pharmacy.store.alarms.out_of_service(),
                **context)


def _here(robot: str) -> str:
    return f"/maintenance?robot={robot}"


@router.post("/maintenance/{robot}/guided")
async def start_guided(request: Request, robot: str, session: Signed,
                       console: Here) -> RedirectResponse:
    """Start a guided calibration of one of the robot's bins (it runs on; the page follows)."""
    async def act(form: dict[str, str]) -> str:
        fields = fields_of(form)
        try:
            number = int(fields.get("bin", "0"))
            plan = Plan(sample=int(fields.get("sample", "100")))
        except ValueError as exc:
            raise CalibrationRefused(f"guided calibration: {exc}") from None
        begin = ChannelCalibration(sensitivity=fields.get("from_sensitivity", 50),
                                   gate_ms=fields.get("from_gate_ms"))
        start = {"start_sensitivity": begin.sensitivity if "from_sensitivity" in fields
                 else None, "start_gate_ms": begin.gate_ms}
        await console.pharmacy.maintenance.start_guided(robot, number, session.person,
                                                        plan=plan, **start)
        return f"Guided calibration of {robot}/{number} started"
    return await act_on(request, session, _here(robot), act)


@router.post("/maintenance/{robot}/poured")
async def poured(request: Request, robot: str, session: Signed,
                 console: Here) -> RedirectResponse:
    """The person poured the last sample back into its canister."""
    async def act(_: dict[str, str]) -> str:
        console.pharmacy.maintenance.poured(robot, session.person)
        return "Sample poured back: the next run starts"
    return await act_on(request, session, _here(robot), act)


@router.post("/maintenance/{robot}/bins/{number}/accept/{guided}")
async def accept(request: Request, robot: str, number: int, guided: int, session: Signed,
                 console: Here) -> RedirectResponse:
    """Make a guided calibration's proposal the bin's: on the robot, then in the store."""
    async def act(_: dict[str, str]) -> str:
        made = await console.pharmacy.maintenance.accept(robot, number, guided,
                                                         session.person)
        said = ", ".join(f"{k} {v}" for k, v in sorted(made.settings.items()))
        return f"{robot}/{number} calibrated for NDC {made.ndc}: {said} (version {made.id})"
    return await act_on(request, session, _here(robot), act)


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
