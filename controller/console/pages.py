"""The console's pages (GET): each is drawn from sections, and each section can be drawn
alone, for the live feed to swap in when its topic changes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from controller.console import views
from controller.console.sessions import Session
from controller.console.web import Console, Here, Signed, Watching, fragment, page
from controller.console.web import router as console_router
from controller.domain.alarms import AlarmState
from controller.domain.labels import layout
from controller.domain.roles import Duty, require
from controller.pharmacy.previews import render_png
from controller.pharmacy.refusals import NotFound

router = console_router()

Load = Callable[[Console, Session, Mapping[str, str]], Awaitable[dict[str, Any]]]


async def _robots(console: Console, _: Session, __: Mapping[str, str]) -> dict[str, Any]:
    return {"robots": await views.robots(console.pharmacy, console.feed)}


async def _robot(console: Console, _: Session, query: Mapping[str, str]) -> dict[str, Any]:
    robots = {r.id: r for r in await views.robots(console.pharmacy, console.feed)}
    robot = robots.get(query.get("id", ""))
    if robot is None:
        raise NotFound(f"no robot {query.get('id')!r}; expected one of {', '.join(robots)}")
    return {"robot": robot}


async def _alarms(console: Console, _: Session, __: Mapping[str, str]) -> dict[str, Any]:
    standing = await console.pharmacy.alarms.standing()
    return {"standing": standing, "unacked": views.unacknowledged(list(standing.view.shown)),
            "AlarmState": AlarmState}


async def _history(console: Console, _: Session, __: Mapping[str, str]) -> dict[str, Any]:
    return {"history": await console.pharmacy.alarms.history()}


async def _bins(console: Console, _: Session, __: Mapping[str, str]) -> dict[str, Any]:
    return {"bins": await console.pharmacy.bins.views()}


async def _queue(console: Console, _: Session, __: Mapping[str, str]) -> dict[str, Any]:
    return {"queue": await views.queue(console.pharmacy),
            "robot_ids": list(console.pharmacy.supervisor.robots)}


async def _labels(console: Console, _: Session, __: Mapping[str, str]) -> dict[str, Any]:
    return {"vials": await views.label_station(console.pharmacy)}


SECTIONS: dict[str, tuple[str, Load]] = {
    "robots": ("_robots.html", _robots),
    "robot": ("_robot.html", _robot),
    "alarms": ("_alarms.html", _alarms),
    "alarm-list": ("_alarm_list.html", _alarms),
    "history": ("_history.html", _history),
    "bins": ("_bins.html", _bins),
    "queue": ("_queue.html", _queue),
    "counts": ("_counts.html", _queue),
    "labels": ("_labels.html", _labels),
}
"""Each section a page is made of: its template, and what it is drawn from."""


async def _page(request: Request, session: Session, console: Console, template: str,
                *sections: str, **context: Any) -> HTMLResponse:
    query = dict(request.query_params) | dict(request.path_params)
    for name in sections:
        context |= await SECTIONS[name][1](console, session, query)
    return page(request, template, session, **context)


@router.get("/")
async def overview(request: Request, session: Signed, console: Here) -> HTMLResponse:
    """Every robot as a tile, the standing alarms, the queue's counts."""
    return await _page(request, session, console, "overview.html", "robots", "alarm-list",
                       "counts")


@router.get("/robots")
async def robots(request: Request, session: Signed, console: Here) -> HTMLResponse:
    """Every robot, with what a technician can do at each."""
    return await _page(request, session, console, "robots.html", "robots")


@router.get("/robots/{id}")
async def robot(request: Request, id: str, session: Signed, console: Here) -> HTMLResponse:
    """One robot: state, link, job and count, output, faults and what to do."""
    return await _page(request, session, console, "robot.html", "robot")


@router.get("/bins")
async def bins(request: Request, session: Signed, console: Here) -> HTMLResponse:
    """Every bin's stock against par and capacity; restock by scan."""
    return await _page(request, session, console, "bins.html", "bins")


@router.get("/alarms")
async def alarms(request: Request, session: Signed, console: Here) -> HTMLResponse:
    """The standing alarms, most urgent first, and their history."""
    return await _page(request, session, console, "alarms.html", "alarms", "history")


@router.get("/queue")
async def queue(request: Request, session: Signed, console: Here) -> HTMLResponse:
    """Orders by state; exceptions with their actions."""
    return await _page(request, session, console, "queue.html", "queue", "counts")


@router.get("/labels")
async def label_station(request: Request, session: Signed, console: Here) -> HTMLResponse:
    """The filled vials waiting for their labels."""
    return await _page(request, session, console, "labels.html", "labels")


@router.get("/labels/{fill_id}/preview.png")
async def label_preview(fill_id: int, _: Watching, console: Here) -> Response:
    """The label of a vial waiting at the label station, as printed."""
    pharmacy = console.pharmacy
    fill = await pharmacy.store.orders.fill(fill_id)
    if fill is None:
        raise NotFound(f"no vial {fill_id}")
    png = render_png(layout(await pharmacy.label(fill.order_id)))
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/orders/{order_id}")
async def order(request: Request, order_id: int, session: Signed,
                console: Here) -> HTMLResponse:
    """One order, with its patient (this page's task needs them) and its history."""
    pharmacy = console.pharmacy
    record = await pharmacy.order(order_id)
    return page(request, "order.html", session, order=record,
                drug=pharmacy.settings.formulary.get(record.ndc),
                history=await pharmacy.store.orders.order_history(order_id),
                fills=await pharmacy.store.orders.fills(order_id),
                robot_ids=list(pharmacy.supervisor.robots))


@router.get("/verify")
async def verification(request: Request, session: Signed) -> HTMLResponse:
    """The verification station: scan a vial's label (pharmacists only)."""
    require(session.person, Duty.SEE_EVIDENCE)
    return page(request, "verify.html", session, evidence=None)


@router.get("/verify/{fill_id}")
async def evidence(request: Request, fill_id: int, session: Signed,
                   console: Here) -> HTMLResponse:
    """A vial's evidence, and the pharmacist's decisions (pharmacists only)."""
    pharmacy = console.pharmacy
    found = await pharmacy.evidence(fill_id, session.person)
    return page(request, "verify.html", session, evidence=found,
                drug=pharmacy.settings.formulary[found.order.ndc])


@router.get("/throughput")
async def throughput(request: Request, session: Signed, console: Here) -> HTMLResponse:
    """Vials per hour per robot over the shift; failed fills by cause."""
    pharmacy = console.pharmacy
    drawn = views.throughput(await pharmacy.store.orders.fills(),
                             list(pharmacy.supervisor.robots), pharmacy.clock.now())
    return page(request, "throughput.html", session, throughput=drawn)


@router.get("/fragments/{name}")
async def section(request: Request, name: str, session: Watching,
                  console: Here) -> HTMLResponse:
    """One section of a page, drawn afresh (the live feed asks for it)."""
    if name not in SECTIONS:
        raise NotFound(f"no section {name!r}; expected one of {', '.join(SECTIONS)}")
    template, load = SECTIONS[name]
    context = await load(console, session, dict(request.query_params))
    return fragment(request, template, session, **context)
