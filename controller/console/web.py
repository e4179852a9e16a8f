"""What every console page shares: the templates, the signed-in person, CSRF, the headers
that keep patient data out of caches and frames, and how a refusal is told."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import jinja2
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError

from controller.console.charts import bars, stock_bar, weight_window
from controller.console.feed import Feed
from controller.console.sessions import COOKIE, Session, Sessions, SignedOut
from controller.domain.alarms import AlarmError
from controller.domain.gs1 import ScanError
from controller.domain.labels import LabelError
from controller.domain.roles import Duty, Role, RoleError, WorkflowError, may
from controller.domain.stock import RestockRefused
from controller.pharmacy.refusals import NotFound
from controller.pharmacy.service import Pharmacy
from controller.store import StoreError
from drivers.errors import DriverError

HERE = Path(__file__).parent
templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
    undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)

templates.globals.update(stock_bar=stock_bar, weight_window=weight_window, bars=bars)

HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": ("default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                "script-src 'self'; frame-ancestors 'none'; form-action 'self'"),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
"""On every page: never cached (a page with a patient's name must not come back from the
browser's history after sign-out), never framed, no script or style from elsewhere."""

REFUSALS = (WorkflowError, ScanError, RestockRefused, LabelError, AlarmError, StoreError,
            NotFound, DriverError, ValidationError)
"""What the service says no with; a page tells the person why, and nothing changed."""


@dataclass(frozen=True, slots=True)
class Console:
    """The console over one pharmacy."""

    pharmacy: Pharmacy
    sessions: Sessions
    feed: Feed

    @property
    def simulated(self) -> list[str]:
        """The devices that are simulators (the SIMULATED banner names them)."""
        config = self.pharmacy.settings.config
        names = [r.id for r in config.robots if r.url.startswith("sim:")]
        return names + (["label printer"] if config.printer.url.startswith("sim:") else [])


def console_of(request: Request) -> Console:
    """The console the app serves."""
    console: Console = request.app.state.console
    return console


Here = Annotated[Console, Depends(console_of)]


class NotSignedIn(Exception):
    """A page asked for without a session: the browser goes to sign in (``why``)."""

    def __init__(self, why: str, *, live: bool) -> None:
        super().__init__(why)
        self.live = live


def _session(active: bool) -> Callable[[Request], Awaitable[Session]]:
    async def find(request: Request) -> Session:
        try:
            return await console_of(request).sessions.find(request.cookies.get(COOKIE),
                                                           active=active)
        except SignedOut as exc:
            raise NotSignedIn(str(exc), live=not active) from None
    return find


Signed = Annotated[Session, Depends(_session(active=True))]
"""The person at the page, who just did something (the idle time starts again)."""
Watching = Annotated[Session, Depends(_session(active=False))]
"""The person at the page, whose page is updating itself (the idle time runs on)."""


async def checked_form(request: Request, session: Session) -> dict[str, str]:
    """The posted form, once its CSRF token is the session's and it came from this site;
    PermissionError otherwise."""
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.url.netloc:
        raise PermissionError(f"a form from {origin} is not taken")
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    if not secrets.compare_digest(form.pop("csrf", ""), session.csrf):
        raise PermissionError("the form is stale or did not come from this console: "
                              "load the page again")
    return form


def common(request: Request, session: Session | None) -> dict[str, Any]:
    """What every page and part of a page is drawn with: who, what they may do, the CSRF
    token their forms carry."""
    person = session.person if session else None
    return {"request": request, "session": session, "person": person,
            "csrf": session.csrf if session else "",
            "may": (lambda duty: person is not None and may(person, duty)), "Duty": Duty,
            "is_pharmacist": person is not None and Role.PHARMACIST in person.roles}


def page(request: Request, template: str, session: Session | None, *,
         status: int = 200, **context: Any) -> HTMLResponse:
    """A page from ``template`` with what every page shows."""
    console = console_of(request)
    said = context.pop("said", None) or (session.heard() if session else [])
    body = templates.get_template(template).render(
        **common(request, session), said=said,
        simulated=console.simulated, site=console.pharmacy.settings.config.site.id,
        idle_s=console.sessions.idle_left(session) if session else 0, **context)
    return HTMLResponse(body, status_code=status, headers=HEADERS)


def fragment(request: Request, template: str, session: Session,
             **context: Any) -> HTMLResponse:
    """A part of a page, for the live feed to swap in."""
    body = templates.get_template(template).render(**common(request, session), **context)
    return HTMLResponse(body, headers=HEADERS)


def back(to: str) -> RedirectResponse:
    """After an action: the page again (POST, then GET), with what was said."""
    return RedirectResponse(to, status_code=303, headers=HEADERS)


def words(exc: BaseException) -> str:
    """A refusal in words: a bad field names the field and what it needs."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'form'}: "
                         f"{str(e['msg']).removeprefix('Value error, ')}"
                         for e in exc.errors())
    return str(exc)


def not_signed_in(request: Request, exc: NotSignedIn) -> Response:
    """A page: to the sign-in page, saying why. A live update: 401, and the page goes."""
    if exc.live:
        return Response(str(exc), status_code=401, headers=HEADERS)
    response = back("/sign-in")
    response.set_cookie("rxfill_said", str(exc), httponly=True, samesite="strict",
                        max_age=60)
    return response


class ConsoleRoute(APIRoute):
    """A console route: one not signed in goes to sign in; a refusal on a page is a page
    saying why (403 a role, 404 nothing there, 409 not now), never JSON or a traceback."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handle(request)
            except NotSignedIn as exc:
                return not_signed_in(request, exc)
            except (RoleError, PermissionError) as exc:
                return await _refused(request, 403, exc)
            except (NotFound, StoreError) as exc:
                return await _refused(request, 404, exc)
            except REFUSALS as exc:
                return await _refused(request, 409, exc)
        return answer


async def _refused(request: Request, status: int, exc: BaseException) -> Response:
    console = console_of(request)
    try:
        session = await console.sessions.find(request.cookies.get(COOKIE), active=False)
    except SignedOut:
        session = None
    return page(request, "refused.html", session, status=status, why=words(exc),
                title={403: "Not allowed", 404: "Not found"}.get(status, "Not now"))


def router() -> APIRouter:
    """A router of console routes (no OpenAPI entries: the API documents the rules)."""
    return APIRouter(route_class=ConsoleRoute, include_in_schema=False)
