"""The REST API (FastAPI): orders in, the workflow's steps, labels, FHIR. OpenAPI at /docs.

Every route but sign-in takes a bearer token (``POST /api/sign-in``). Errors
are JSON with ``detail``: 401 not signed in, 403 the role is missing, 404
no such thing, 409 the order's state or the separation of duties forbids
it, 422 a bad body (each wrong field, and what it needs; nothing stored),
503 the label printer cannot print.

One router per station (``people``, ``orders``, ``robots``, ``labels``, ``verification``,
``fhir``); every route calls the pharmacy's service, which checks the person's duty.
"""

from fastapi import FastAPI

from controller.api import errors, fhir, labels, orders, people, robots, verification
from controller.api.limits import BodyLimit
from controller.pharmacy.service import Pharmacy

MAX_BODY = 1024 * 1024
"""The largest request body taken: 1 MiB; anything longer is 413 before it is read."""


def create_app(pharmacy: Pharmacy, *, token_hours: float = 8.0) -> FastAPI:
    """The API over one pharmacy; a sign-in lasts ``token_hours``."""
    app = FastAPI(title="rxfill", version="0.1.0", description=__doc__)
    app.add_middleware(BodyLimit, limit=MAX_BODY)
    app.state.pharmacy = pharmacy
    app.state.token_hours = token_hours
    errors.install(app)
    for station in (people, orders, robots, labels, verification, fhir):
        app.include_router(station.router)
    return app
