"""Signing in and out, the page's reports of activity, and the live feed's stream."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from controller.console.feed import event
from controller.console.sessions import COOKIE, SignedOut
from controller.console.web import (
    HEADERS,
    Here,
    NotSignedIn,
    Signed,
    Watching,
    back,
    checked_form,
    not_signed_in,
    page,
)
from controller.console.web import router as console_router
from controller.store.people import AuthError

router = console_router()

SIGN_IN_COOKIE = "rxfill_sign_in"
"""The sign-in form's own CSRF token (double submit): there is no session yet to hold it."""
SAID_COOKIE = "rxfill_said"


def _sign_in_page(request: Request, said: list[tuple[str, str]], status: int = 200,
                  name: str = "") -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = page(request, "sign_in.html", None, status=status, sign_in_csrf=token,
                    said=said, name=name, next=_safe_next(request.query_params.get("next")))
    response.set_cookie(SIGN_IN_COOKIE, token, httponly=True, samesite="strict")
    response.delete_cookie(SAID_COOKIE)
    return response


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a page of this console, never another site."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    return parts.path if not parts.netloc else "/"


@router.get("/sign-in")
async def sign_in_form(request: Request) -> HTMLResponse:
    """The sign-in page, saying why it is shown (signed out, idle)."""
    why = request.cookies.get(SAID_COOKIE)
    return _sign_in_page(request, [("info", why)] if why else [])


@router.post("/sign-in")
async def sign_in(request: Request, console: Here) -> Response:
    """Sign in with the name and password of the API's users."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    expected = request.cookies.get(SIGN_IN_COOKIE, "")
    if not expected or not secrets.compare_digest(form.get("csrf", ""), expected):
        return _sign_in_page(request, [("refused", "The sign-in form was stale: try again.")],
                             403)
    name = form.get("name", "").strip()
    try:
        session = await console.sessions.sign_in(name, form.get("password", ""))
    except AuthError as exc:
        return _sign_in_page(request, [("refused", f"Not signed in: {exc}.")], 401, name)
    response = back(_safe_next(form.get("next")))
    response.set_cookie(COOKIE, session.token, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
    response.delete_cookie(SIGN_IN_COOKIE)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, session: Signed, console: Here) -> Response:
    """Sign out now."""
    await checked_form(request, session)
    await console.sessions.end(session)
    response = back("/sign-in")
    response.delete_cookie(COOKIE)
    response.set_cookie(SAID_COOKIE, f"{session.person.name} signed out.", httponly=True,
                        samesite="strict", max_age=60)
    return response


@router.get("/idle")
async def idle(request: Request, console: Here) -> Response:
    """The page saw no activity for the idle time: sign out, saying why; back to the page
    if the person was active elsewhere (another window) after all."""
    try:
        await console.sessions.find(request.cookies.get(COOKIE), active=False)
    except SignedOut as exc:
        return not_signed_in(request, NotSignedIn(str(exc), live=False))
    return back(_safe_next(request.query_params.get("back")))


@router.post("/activity")
async def activity(request: Request, session: Signed) -> Response:
    """The person typed or touched the page: the idle time starts again."""
    if not secrets.compare_digest(request.headers.get("x-csrf-token", ""), session.csrf):
        return Response("stale page", status_code=403, headers=HEADERS)
    return Response(status_code=204, headers=HEADERS)


@router.get("/events")
async def events(session: Watching, console: Here) -> StreamingResponse:
    """The live feed: ``changed`` with the topics whose sections to draw again, ``beat``
    while nothing changes, ``signed-out`` when the session ends."""
    async def stream() -> AsyncIterator[str]:
        yield event("hello", {"idle_s": console.sessions.idle_left(session)})
        async for topics in console.feed.follow():
            try:
                await console.sessions.find(session.token, active=False)
            except SignedOut as exc:
                yield event("signed-out", str(exc))
                return
            if topics:
                yield event("changed", list(topics))
            else:
                yield event("beat", {"idle_s": console.sessions.idle_left(session)})
    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={**HEADERS, "X-Accel-Buffering": "no"})
