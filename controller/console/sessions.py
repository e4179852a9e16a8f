"""Who is signed in at which browser: a session cookie (HttpOnly, SameSite=Strict) over the
store's sign-in, a CSRF token per session, and sign-out after the configured idle minutes
(HIPAA's automatic logoff)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from controller.domain.roles import Person
from controller.store import Store
from controller.store.people import AuthError

COOKIE = "rxfill_session"
"""The session cookie: the store's sign-in token, never readable by a page's script."""


class SignedOut(Exception):
    """No session, or it ended; the message says why (shown on the sign-in page)."""


@dataclass(slots=True)
class Session:
    """One signed-in browser."""

    token: str
    person: Person
    csrf: str
    last_active: float
    """When the person last did something (monotonic seconds): a request of theirs, or
    a key or a tap the page reported."""
    said: list[tuple[str, str]] = field(default_factory=list)
    """What to tell the person on their next page: (``ok`` or ``refused``, words)."""

    def say(self, kind: str, words: str) -> None:
        """Tell the person on their next page."""
        self.said.append((kind, words))

    def heard(self) -> list[tuple[str, str]]:
        """What to tell now (then forgotten)."""
        said, self.said = self.said, []
        return said


class Sessions:
    """The console's sessions, over the store's tokens (which expire after the sign-in's
    hours whatever the activity)."""

    def __init__(self, store: Store, *, idle: timedelta, lifetime: timedelta,
                 now: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self.idle = idle
        self._lifetime = lifetime
        self._now = now
        self._open: dict[str, Session] = {}

    async def sign_in(self, name: str, password: str) -> Session:
        """A new session, or AuthError (the same words for any failure)."""
        token = await self._store.people.sign_in(name, password, self._lifetime)
        person = await self._store.people.person_for(token)
        session = Session(token, person, secrets.token_urlsafe(24), self._now())
        await self._end_idle()
        self._open[token] = session
        return session

    async def _end_idle(self) -> None:
        """End the sessions idle past their time whose browser never came back."""
        limit = self._now() - self.idle.total_seconds()
        for session in [s for s in self._open.values() if s.last_active < limit]:
            await self.end(session)

    async def find(self, token: str | None, *, active: bool) -> Session:
        """The session of ``token``, or SignedOut saying why. ``active``: the person did
        something (a page, an action), which restarts the idle time; live updates do not."""
        session = self._open.get(token or "")
        if session is None:
            raise SignedOut("Sign in to use the console.")
        idle_for = self._now() - session.last_active
        if idle_for > self.idle.total_seconds():
            await self.end(session)
            raise SignedOut(f"Signed out after {_minutes(self.idle)} without activity.")
        try:
            session.person = await self._store.people.person_for(session.token)
        except AuthError as exc:
            self._open.pop(session.token, None)
            raise SignedOut(f"Signed out: {exc}.") from None
        if active:
            session.last_active = self._now()
        return session

    def idle_left(self, session: Session) -> float:
        """Seconds until ``session`` is signed out unless the person does something."""
        return max(0.0, self.idle.total_seconds() - (self._now() - session.last_active))

    async def end(self, session: Session) -> None:
        """Sign out: the session and its token stop working at once."""
        self._open.pop(session.token, None)
        await self._store.people.sign_out(session.token, session.person.name)


def _minutes(span: timedelta) -> str:
    minutes = span.total_seconds() / 60
    return f"{minutes:g} minute{'s' if minutes != 1 else ''}"
