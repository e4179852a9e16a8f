"""How the API says no: one table from each refusal to its HTTP status, and the bodies.

Errors are JSON with ``detail``: 401 not signed in, 403 the role is missing, 404 no such
thing, 409 the order's state or the separation of duties forbids it, 422 a bad body (each
wrong field and what it needs; nothing stored), 503 a device (the label printer) cannot.
"""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from controller.api.fhir_in import FhirProblems
from controller.domain.labels import LabelError
from controller.domain.prescriptions import Problem
from controller.domain.roles import RoleError, WorkflowError
from controller.pharmacy.refusals import NotFound, OrderInvalid
from controller.store.people import AuthError
from controller.store.verification import NotALabel
from drivers import errors

STATUS_OF: dict[type[Exception], int] = {
    AuthError: 401,
    RoleError: 403,
    NotFound: 404,
    WorkflowError: 409,
    LabelError: 409,
    NotALabel: 422,
    errors.DriverError: 503,
}
"""Each refusal the service raises, and the status the API answers it with (a subclass is
answered by its own entry: RoleError is a WorkflowError, and a 403)."""


def refusal(detail: list[dict[str, Any]]) -> JSONResponse:
    """A 422 that lists every problem (``loc``, ``field``, ``msg``, ``type``)."""
    return JSONResponse(status_code=422, content={
        "message": f"the request was refused ({len(detail)} problem(s)); nothing was stored",
        "detail": detail})


def problems(found: list[Problem], prefix: tuple[str, ...] = ("body",)) -> JSONResponse:
    """A 422 for the domain's problems with an order."""
    return refusal([{"loc": [*prefix, *p.field], "field": ".".join(p.field),
                     "msg": p.message, "type": "value_error"} for p in found])


def not_json(why: str) -> JSONResponse:
    """A 400 for a body that is not JSON at all (422 is for JSON with wrong fields)."""
    return JSONResponse(status_code=400, content={
        "detail": f"the body could not be read ({why}): expected a JSON object in UTF-8"})


def install(app: FastAPI) -> None:
    """Answer every refusal of :data:`STATUS_OF`, bad bodies and bad JSON on ``app``."""
    for error, status in STATUS_OF.items():
        app.add_exception_handler(error, _answer(status))
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(OrderInvalid, _order_invalid)  # type: ignore[arg-type]
    app.add_exception_handler(FhirProblems, _fhir_invalid)  # type: ignore[arg-type]


def _answer(status: int) -> Any:
    async def handler(_: Request, exc: Exception) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(status_code=status, content={"detail": str(exc)}, headers=headers)
    return handler


async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
    for error in exc.errors():
        if error["type"] == "json_invalid":
            return not_json(str(error.get("ctx", {}).get("error", error["msg"])))
    detail = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "is missing; it is required"
        elif error["type"] == "extra_forbidden":
            message = "is not a known field (misspelt?)"
        detail.append({"loc": loc, "field": ".".join(loc[1:]) or loc[0], "msg": message,
                       "type": error["type"]})
    return refusal(detail)


async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 400 and "parsing the body" in str(exc.detail):
        return not_json("it is not UTF-8")
    return JSONResponse(status_code=exc.status_code, content={"detail": exc.detail},
                        headers=exc.headers)


async def _order_invalid(_: Request, exc: OrderInvalid) -> JSONResponse:
    return problems(exc.problems)


async def _fhir_invalid(_: Request, exc: FhirProblems) -> JSONResponse:
    return problems(exc.problems, ())
