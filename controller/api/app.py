"""The REST API (FastAPI): orders in, the workflow's steps, labels, FHIR. OpenAPI at /docs.

Every route but sign-in takes a bearer token (``POST /api/sign-in``). Errors
are JSON with ``detail``: 401 not signed in, 403 the role is missing, 404
no such thing, 409 the order's state or the separation of duties forbids
it, 422 a bad body (each wrong field, and what it needs; nothing stored),
503 the label printer cannot print.
"""


import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from controller.api.bodies import (
    Cancel,
    HandCount,
    OrderIn,
    Reject,
    ReleaseIn,
    Reprint,
    Retry,
    Scan,
    SignIn,
    Witness,
    order_out,
)
from controller.api.fhir_in import FhirProblems, dispense_of, order_from_request
from controller.api.fhir_out import operation_outcome, outcome_of, request_of
from controller.api.limits import BodyLimit
from controller.domain.labels import LabelError, layout
from controller.domain.orders import FillOutcome, OrderState
from controller.domain.prescriptions import Problem
from controller.domain.roles import Person, RoleError, WorkflowError
from controller.pharmacy.previews import render_pdf, render_png
from controller.pharmacy.service import Evidence, NotFound, OrderInvalid, Pharmacy
from controller.store.people import AuthError
from controller.store.verification import NotALabel
from drivers import errors

FHIR_JSON = "application/fhir+json"
MAX_ID = 2**63 - 1
"""The largest id a store issues (SQLite's and PostgreSQL's 64-bit integer)."""
MAX_BODY = 1024 * 1024
"""The largest request body taken: 1 MiB; anything longer is 413 before it is read."""

OrderId = Annotated[int, Path(ge=1, le=MAX_ID, description="an order's id")]
FillId = Annotated[int, Path(ge=1, le=MAX_ID, description="a fill's (a vial's) id")]
LabelCode = Annotated[str, Path(description=(
    "what a vial label's barcode holds: F and 8 digits, e.g. F00000123 (anything else is 422, "
    "after the role is checked)"))]


def _refusal(detail: list[dict[str, Any]]) -> JSONResponse:
    """A 422 that lists every problem (``loc``, ``field``, ``msg``, ``type``)."""
    return JSONResponse(status_code=422, content={
        "message": f"the request was refused ({len(detail)} problem(s)); nothing was stored",
        "detail": detail})


def _problems(problems: list[Problem], prefix: tuple[str, ...] = ("body",)) -> JSONResponse:
    return _refusal([{"loc": [*prefix, *p.field], "field": ".".join(p.field),
                      "msg": p.message, "type": "value_error"} for p in problems])


def _not_json(why: str) -> JSONResponse:
    """A 400 for a body that is not JSON at all (422 is for JSON with wrong fields)."""
    return JSONResponse(status_code=400, content={
        "detail": f"the body could not be read ({why}): expected a JSON object in UTF-8"})


def _fhir(status: int, content: dict[str, Any],
          headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(content, status_code=status, media_type=FHIR_JSON, headers=headers)


def _only(*known: str) -> Callable[[Request], Awaitable[None]]:
    """A dependency that refuses a query parameter the route does not know (a misspelt
    filter must never list everything)."""
    async def check(request: Request) -> None:
        unknown = sorted(set(request.query_params) - set(known))
        if unknown:
            raise RequestValidationError([{
                "loc": ("query", name), "type": "extra_forbidden",
                "msg": f"is not a known query parameter; expected "
                       f"{', '.join(known) or 'none'}", "input": None} for name in unknown])
    return check


def create_app(pharmacy: Pharmacy, *, token_hours: float = 8.0) -> FastAPI:
    """The API over one pharmacy."""
    app = FastAPI(title="rxfill", version="0.1.0", description=__doc__)
    app.add_middleware(BodyLimit, limit=MAX_BODY)
    bearer = HTTPBearer(auto_error=False)
    store = pharmacy.store

    async def person(credentials: Annotated[HTTPAuthorizationCredentials | None,
                                            Depends(bearer)]) -> Person:
        if credentials is None:
            raise AuthError("sign in first (POST /api/sign-in), then send "
                            "'Authorization: Bearer <token>'")
        return await store.person_for(credentials.credentials)

    Who = Annotated[Person, Depends(person)]

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        for error in exc.errors():
            if error["type"] == "json_invalid":
                return _not_json(str(error.get("ctx", {}).get("error", error["msg"])))
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
        return _refusal(detail)

    def _error(status: int) -> Any:
        async def handler(_: Request, exc: Exception) -> JSONResponse:
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            return JSONResponse(status_code=status, content={"detail": str(exc)},
                                headers=headers)
        return handler

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail
        if exc.status_code == 400 and "parsing the body" in str(detail):
            return _not_json("it is not UTF-8")
        return JSONResponse(status_code=exc.status_code, content={"detail": detail},
                            headers=exc.headers)

    app.add_exception_handler(AuthError, _error(401))
    app.add_exception_handler(RoleError, _error(403))
    app.add_exception_handler(NotFound, _error(404))
    app.add_exception_handler(WorkflowError, _error(409))
    app.add_exception_handler(NotALabel, _error(422))
    app.add_exception_handler(LabelError, _error(409))
    app.add_exception_handler(errors.DriverError, _error(503))

    @app.exception_handler(OrderInvalid)
    async def _order_invalid(_: Request, exc: OrderInvalid) -> JSONResponse:
        return _problems(exc.problems)

    @app.exception_handler(FhirProblems)
    async def _fhir_invalid(_: Request, exc: FhirProblems) -> JSONResponse:
        return _problems(exc.problems, ())

    # -- people ----------------------------------------------------------------------

    @app.post("/api/sign-in", tags=["people"])
    async def sign_in(body: SignIn) -> dict[str, Any]:
        """A bearer token for this user; it expires after the configured hours."""
        token = await store.sign_in(body.name, body.password, timedelta(hours=token_hours))
        me = await store.person_for(token)
        return {"token": token, "name": me.name, "roles": sorted(me.roles),
                "expires_in_s": int(token_hours * 3600)}

    @app.get("/api/me", tags=["people"])
    async def me(who: Who) -> dict[str, Any]:
        """Who this token belongs to."""
        return {"name": who.name, "roles": sorted(who.roles)}

    @app.post("/api/duty", tags=["people"])
    async def duty(who: Who) -> dict[str, Any]:
        """A pharmacist signs on duty: the labels printed from now on name them."""
        await pharmacy.sign_on_duty(who)
        return {"pharmacist_on_duty": who.name}

    # -- orders ----------------------------------------------------------------------

    @app.post("/api/orders", status_code=201, tags=["orders"], responses={
        200: {"description": "this prescription fill is an order already: that order"}})
    async def submit(body: OrderIn, who: Who) -> JSONResponse:
        """Take a prescription fill. 422 lists every wrong field; nothing is stored then. The
        same (rx_number, fill_number) sent again answers 200 with the same order; with other
        content, 409."""
        record, new = await pharmacy.submit(body.to_order(), who)
        return JSONResponse(order_out(record), status_code=201 if new else 200,
                            headers={"Location": f"/api/orders/{record.id}"})

    @app.get("/api/orders", tags=["orders"], dependencies=[Depends(_only("state",
                                                                         "rx_number"))])
    async def list_orders(_: Who, state: OrderState | None = None,
                          rx_number: str | None = None) -> list[dict[str, Any]]:
        """Every order (in one state, of one prescription number, if asked), oldest first."""
        return [order_out(o) for o in await store.orders(state=state, rx_number=rx_number)]

    @app.get("/api/orders/{order_id}", tags=["orders"])
    async def show(order_id: OrderId, _: Who) -> dict[str, Any]:
        """One order with its history, its fills (each vial by its label) and its drug."""
        order = await pharmacy.order(order_id)
        history = [{"from": f, "to": t, "who": w, "reason": r}
                   for f, t, w, r in await store.order_history(order_id)]
        aside = {v.fill_id: v for v in await store.set_aside_vials()}
        fills = [{"id": f.id, "label": f.code, "robot": f.robot, "bin": f.bin,
                  "outcome": f.outcome, "counted": f.counted, "detail": f.detail,
                  "counted_by": f.counted_by, "labelled_by": f.labelled_by,
                  "set_aside": aside[f.id].cause if f.id in aside else None}
                 for f in await store.fills(order_id)]
        drug = pharmacy.settings.formulary.get(order.ndc)
        return {**order_out(order), "drug": drug.display_name if drug else None,
                "history": history, "fills": fills}

    @app.post("/api/orders/{order_id}/cancel", tags=["technician"])
    async def cancel(order_id: OrderId, body: Cancel, who: Who) -> dict[str, Any]:
        """Give an order up, with a reason. Once it has a filled vial, only a pharmacist may,
        saying what became of its tablets (returned or wasted)."""
        return order_out(await pharmacy.cancel(order_id, who, body.reason, body.tablets))

    @app.post("/api/orders/{order_id}/retry", tags=["technician"])
    async def retry(order_id: OrderId, body: Retry, who: Who) -> dict[str, Any]:
        """An order in exception goes to a robot again (the one named, or any)."""
        return order_out(await pharmacy.retry(order_id, who, body.robot))

    @app.post("/api/orders/{order_id}/hand-count", tags=["technician"])
    async def hand_count(order_id: OrderId, body: HandCount, who: Who) -> dict[str, Any]:
        """An order in exception, counted by hand; its weight must agree with the count."""
        if (body.robot is None) != (body.bin is None):
            raise WorkflowError("name both robot and bin, or neither (the last fill's bin)")
        source = (body.robot, body.bin) if body.robot is not None and body.bin else None
        return order_out(await pharmacy.hand_count(order_id, who, body.count, body.weight_mg,
                                                   source, body.found))

    @app.get("/api/robots", tags=["technician"])
    async def robots(_: Who) -> list[dict[str, object]]:
        """Each robot's state, and what it waits for a person to fix."""
        return pharmacy.robots()

    @app.get("/api/status", tags=["technician"])
    async def status(_: Who) -> dict[str, object]:
        """The site at a glance: robots online or why not, MQTT, the alarm checks."""
        return pharmacy.status()

    @app.post("/api/robots/{robot}/clear", tags=["technician"])
    async def clear_robot(robot: str, who: Who) -> dict[str, object]:
        """A person fixed what stopped the robot (jam, open door, safe stop) and took what
        its output held."""
        await pharmacy.clear_robot(robot, who)
        return next(r for r in pharmacy.robots() if r["id"] == robot)

    @app.post("/api/robots/{robot}/take", tags=["technician"])
    async def take_output(robot: str, who: Who) -> dict[str, object]:
        """A person took the vial or tablets waiting in the robot's output (a vial's label
        scan does this by itself): the robot may start its next job."""
        await pharmacy.take_output(robot, who)
        return next(r for r in pharmacy.robots() if r["id"] == robot)

    # -- labels ------------------------------------------------------------------------

    @app.post("/api/orders/{order_id}/label/print", tags=["technician"])
    async def print_label(order_id: OrderId, body: Reprint, who: Who) -> dict[str, Any]:
        """Print the vial's label again (a reprint needs a reason and is counted)."""
        record = await pharmacy.print_label(order_id, who=who, reason=body.reason)
        return {"fill": record.fill_id, "copy": record.copy, "printer": record.printer}

    @app.post("/api/orders/{order_id}/label/scan", tags=["technician"])
    async def scan_label(order_id: OrderId, body: Scan, who: Who) -> dict[str, Any]:
        """The label scanned at the filled vial: LABELED if it is that vial's label."""
        return order_out(await pharmacy.scan_label(order_id, body.scanned, who))

    @app.get("/api/orders/{order_id}/label.{kind}", tags=["labels"])
    async def label_preview(order_id: OrderId, kind: str, _: Who) -> Response:
        """The vial's label as the printer gets it (zpl) or as a preview (png, pdf)."""
        if kind not in ("zpl", "png", "pdf"):
            raise NotFound(f"no label.{kind}; expected label.zpl, label.png or label.pdf")
        elements = layout(await pharmacy.label(order_id))
        if kind == "zpl":
            if pharmacy.printer is None:
                raise NotFound("no label printer is configured: label.png and label.pdf show "
                               "the label")
            return Response(pharmacy.printer.render(elements),
                            media_type="text/plain; charset=utf-8")
        if kind == "png":
            return Response(render_png(elements), media_type="image/png")
        return Response(render_pdf(elements), media_type="application/pdf")

    # -- the verification station: each step acts on the scanned vial ------------------------

    @app.get("/api/labels/{scanned}", tags=["pharmacist"])
    async def by_label(scanned: LabelCode, who: Who) -> dict[str, Any]:
        """The verification station: a scanned label → that vial's evidence (409 with why when
        the vial is no longer its order's)."""
        return _evidence(await pharmacy.evidence_for_label(scanned, who))

    @app.get("/api/orders/{order_id}/evidence", tags=["pharmacist"])
    async def evidence(order_id: OrderId, who: Who) -> dict[str, Any]:
        """The order's vial now: drug, NDC, lots, counts, weight, who, what went wrong."""
        return _evidence(await pharmacy.evidence_for_order(order_id, who))

    def _evidence(e: Evidence) -> dict[str, Any]:
        f = e.fill
        return {
            "label": f.code, "order": order_out(e.order), "drug": e.drug,
            "schedule": e.schedule, "ndc": e.order.ndc, "lots": e.lots,
            "quantity_asked": e.order.quantity, "counted": f.counted,
            "weight": {"measured_mg": f.weight_mg, "expected_mg": f.expected_mg,
                       "tolerance_mg": f.tolerance_mg, "verdict": f.verdict},
            "filled_by": e.filled_by, "labelled_by": e.labelled_by,
            "verified_by": f.verified_by,
            "exceptions": e.exceptions, "history": e.history,
            "labels": [{"copy": x.copy, "outcome": x.outcome, "who": x.who,
                        "reason": x.reason, "at": x.at.isoformat()} for x in e.labels],
        }

    @app.post("/api/labels/{scanned}/witness", tags=["pharmacist"])
    async def witness(scanned: LabelCode, body: Witness, who: Who) -> dict[str, Any]:
        """A schedule II vial's second count, witnessed by a pharmacist who neither handled
        nor verified it."""
        fill_id = await pharmacy.vial_for_label(scanned)
        await pharmacy.witness(fill_id, body.count, who)
        return {"label": scanned.strip(), "witnessed_by": who.name, "count": body.count}

    @app.post("/api/labels/{scanned}/verify", tags=["pharmacist"])
    async def verify(scanned: LabelCode, who: Who) -> dict[str, Any]:
        """Approve the scanned vial: its order VERIFIED."""
        return order_out(await pharmacy.verify(await pharmacy.vial_for_label(scanned), who))

    @app.post("/api/labels/{scanned}/reject", tags=["pharmacist"])
    async def reject(scanned: LabelCode, body: Reject, who: Who) -> dict[str, Any]:
        """Refuse the scanned vial, with a reason: its order filled again, or cancelled."""
        return order_out(await pharmacy.reject(await pharmacy.vial_for_label(scanned), who,
                                               body.reason, fill_again=body.fill_again,
                                               tablets=body.tablets))

    @app.post("/api/labels/{scanned}/release", tags=["pharmacist"])
    async def release(scanned: LabelCode, body: ReleaseIn, who: Who) -> dict[str, Any]:
        """The scanned vial to the pickup bin, or to shipping with carrier and tracking."""
        return order_out(await pharmacy.release(await pharmacy.vial_for_label(scanned), who,
                                                body.destination, body.carrier, body.tracking))

    # -- FHIR --------------------------------------------------------------------------

    @app.post("/fhir/MedicationRequest", status_code=201, tags=["fhir"])
    async def fhir_request(request: Request, who: Who) -> JSONResponse:
        """A FHIR R4 MedicationRequest (application/fhir+json) becomes an order. With
        ``Accept: application/fhir+json`` the answer is FHIR too: the MedicationRequest as
        stored (Location: its /fhir address), or an OperationOutcome naming each element
        refused by its FHIRPath."""
        fhir = FHIR_JSON in request.headers.get("accept", "")
        raw = await request.body()
        try:
            if not raw.strip():
                raise FhirProblems([Problem(("body",), "is missing; it is required")])
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                if fhir:
                    return _fhir(400, outcome_of("structure", f"the body is not JSON: {exc}"))
                return _not_json(str(exc))
            record, new = await pharmacy.submit(order_from_request(body), who)
        except (FhirProblems, OrderInvalid) as exc:
            if not fhir:
                raise
            return _fhir(422, operation_outcome(exc.problems))
        except WorkflowError as exc:
            if not fhir:
                raise
            return _fhir(409, outcome_of("conflict", str(exc)))
        if fhir:
            return _fhir(201 if new else 200, request_of(record),
                         {"Location": f"/fhir/MedicationRequest/{record.id}"})
        return JSONResponse(status_code=201 if new else 200, content=order_out(record),
                            headers={"Location": f"/api/orders/{record.id}"})

    @app.get("/fhir/MedicationRequest/{order_id}", tags=["fhir"])
    async def fhir_request_of(order_id: OrderId, _: Who) -> JSONResponse:
        """An order as the FHIR R4 MedicationRequest it is."""
        return _fhir(200, request_of(await pharmacy.order(order_id)))

    @app.get("/fhir/MedicationDispense/{fill_id}", tags=["fhir"])
    async def fhir_dispense(fill_id: FillId, _: Who) -> JSONResponse:
        """A filled vial as a FHIR R4 MedicationDispense."""
        fill = await store.fill(fill_id)
        if fill is None or fill.outcome is not FillOutcome.FILLED:
            raise NotFound(f"no filled vial {fill_id}")
        order = await store.order(fill.order_id)
        drug = pharmacy.settings.formulary[order.ndc]
        content = dispense_of(order, fill, await store.fill_lots(fill.id),
                              await store.release(order.id), drug_name=drug.display_name,
                              unit=drug.dosage_form)
        return JSONResponse(content, media_type=FHIR_JSON)

    return app

