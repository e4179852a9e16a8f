"""The console served beside the API, on the same app: pages at ``/``, assets at
``/static``, the live feed at ``/events``."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from controller.console import actions, maintenance, pages, signin, vials
from controller.console.feed import Feed
from controller.console.sessions import Sessions
from controller.console.web import HERE, Console
from controller.pharmacy.service import Pharmacy


def mount(app: FastAPI, pharmacy: Pharmacy, *, idle_minutes: float,
          token_hours: float) -> Console:
    """Serve the console on ``app``: sessions end after ``idle_minutes`` without activity
    (and after ``token_hours`` whatever the activity). Close its feed before the server
    stops (``Console.feed.close``), so that no page's stream holds the shutdown."""
    feed = Feed()
    pharmacy.supervisor.subscribe(feed.notice)
    console = Console(pharmacy, Sessions(pharmacy.store, idle=timedelta(minutes=idle_minutes),
                                         lifetime=timedelta(hours=token_hours)), feed)
    app.state.console = console
    pharmacy.maintenance.changed = lambda: feed.tell("maintenance")
    for part in (signin, pages, actions, vials, maintenance):
        app.include_router(part.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    return console
