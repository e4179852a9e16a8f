"""The REST API (FastAPI): orders in, the workflow's steps, labels, FHIR. OpenAPI at /docs.

Every route but sign-in takes a bearer token (``POST /api/sign-in``). Errors
are JSON with ``detail``: 401 not signed in, 403 the role is missing, 404
no such thing, 409 the order's state or the separation of duties forbids
it, 422 a bad body (each wrong field, and what it needs; nothing stored),
503 the label printer cannot print.
"""


import json
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from controller.domain.labels import LabelError, layout
from controller.domain.ndc import NdcError, parse_ndc
from controller.domain.orders import (
    MAX_QUANTITY,
    Fulfilment,
    Order,
    OrderState,
    Patient,
    Prescriber,
    Priority,
)
from controller.domain.prescriptions import MAX_DAYS_SUPPLY, Problem
from controller.domain.workflow import Person, RoleError, WorkflowError
from controller.fhir import FhirProblems, dispense_of, order_from_request
from controller.labels import render_pdf, render_png, render_zpl
from controller.pharmacy import NotFound, OrderInvalid, Pharmacy
from controller.store import OrderRecord
from controller.store.people import AuthError
from drivers import errors

FHIR_JSON = "application/fhir+json"


def _plain_text(value: str) -> str:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("holds a control character (a tab, a line break…); expected plain "
                         "text on one line")
    return value


Line = Annotated[str, AfterValidator(_plain_text)]


class Body(BaseModel):
    """Request bodies: unknown keys are mistakes; text is trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PatientIn(Body):
    id: Line = Field(min_length=1, max_length=40, description="the pharmacy's patient id")
    name: Line = Field(min_length=1, max_length=200)
    birth_date: date
    address: Line | None = Field(default=None, max_length=400,
                                 description="where a mail order goes")
    easy_open: bool = Field(default=False, description="easy-open caps, not child-resistant")


class PrescriberIn(Body):
    name: Line = Field(min_length=1, max_length=200)
    npi: str = Field(pattern=r"^[0-9]{10}$", description="10 digits, the last a Luhn check")
    dea: str | None = Field(default=None, pattern=r"^[A-Za-z][A-Za-z9][0-9]{7}$",
                            description="needed for a scheduled drug")


class OrderIn(Body):
    """A prescription to fill."""

    rx_number: str = Field(pattern=r"^[A-Za-z0-9-]{1,20}$")
    patient: PatientIn
    ndc: str = Field(description="11 digits, 5-4-2 with dashes or bare")
    quantity: int = Field(strict=True, ge=1, le=MAX_QUANTITY)
    sig: Line = Field(min_length=1, max_length=500, description="the directions")
    prescriber: PrescriberIn
    refills: int = Field(default=0, strict=True, ge=0, le=99)
    days_supply: int | None = Field(default=None, strict=True, ge=1, le=MAX_DAYS_SUPPLY)
    priority: Priority = Priority.ROUTINE
    fulfilment: Fulfilment = Fulfilment.PICKUP
    written: date | None = Field(default=None, description="the date the prescriber wrote it")

    @field_validator("ndc")
    @classmethod
    def _ndc(cls, value: str) -> str:
        try:
            return parse_ndc(value)
        except NdcError as exc:
            raise ValueError(str(exc)) from None

    def to_order(self) -> Order:
        p, d = self.patient, self.prescriber
        return Order(
            rx_number=self.rx_number,
            patient=Patient(p.id, p.name, p.birth_date, p.address), ndc=self.ndc,
            quantity=self.quantity, easy_open=p.easy_open, sig=self.sig,
            prescriber=Prescriber(d.name, d.npi, d.dea.upper() if d.dea else None),
            refills=self.refills, days_supply=self.days_supply, priority=self.priority,
            fulfilment=self.fulfilment, written=self.written)


class SignIn(Body):
    name: str = Field(min_length=1, max_length=80)
    password: str = Field(min_length=1, max_length=1000)


class Reason(Body):
    reason: Line = Field(min_length=1, max_length=500)


class Retry(Body):
    robot: str | None = Field(default=None, description="a robot to send it to; any if absent")


class HandCount(Body):
    count: int = Field(strict=True, ge=1, le=MAX_QUANTITY)
    weight_mg: float = Field(gt=0, allow_inf_nan=False,
                             description="the vial's net weight on the bench scale")
    robot: str | None = Field(default=None, description="the bin counted from (with bin); "
                                                        "the last fill's bin if absent")
    bin: int | None = Field(default=None, ge=1)
    found: int | None = Field(default=None, strict=True, ge=0, le=MAX_QUANTITY, description=(
        "when the robot left a vial its scale could not confirm: the tablets found in it"))


class Reprint(Body):
    reason: Line | None = Field(default=None, max_length=500,
                                description="needed once the label has printed")


class Scan(Body):
    scanned: str = Field(min_length=1, max_length=64, description="what the scanner read")


class Witness(Body):
    count: int = Field(strict=True, ge=0, le=MAX_QUANTITY)


class Reject(Body):
    reason: Line = Field(min_length=1, max_length=500)
    fill_again: bool = Field(description="fill it again (QUEUED), or give it up (CANCELLED)")
    tablets: Literal["returned", "wasted"] = Field(
        description="what became of the rejected vial's tablets")


class ReleaseIn(Body):
    destination: Literal["pickup", "shipping"]
    carrier: Line | None = Field(default=None, max_length=40)
    tracking: Line | None = Field(default=None, max_length=60)


def order_out(order: OrderRecord) -> dict[str, Any]:
    """An order as the API shows it."""
    return {
        "id": order.id, "rx_number": order.rx_number, "state": order.state,
        "reason": order.reason, "ndc": order.ndc, "quantity": order.quantity,
        "patient": {"id": order.patient_id, "name": order.patient_name,
                    "birth_date": order.patient_birth_date.isoformat(),
                    "address": order.patient_address, "easy_open": order.easy_open},
        "sig": order.sig,
        "prescriber": {"name": order.prescriber_name, "npi": order.prescriber_npi,
                       "dea": order.prescriber_dea},
        "refills": order.refills, "days_supply": order.days_supply,
        "priority": order.priority, "fulfilment": order.fulfilment,
        "written": order.written_on.isoformat() if order.written_on else None,
        "received_at": order.received_at.isoformat(),
        "updated_at": order.updated_at.isoformat(),
    }


def _refusal(detail: list[dict[str, Any]]) -> JSONResponse:
    """A 422 that lists every problem (``loc``, ``field``, ``msg``, ``type``)."""
    return JSONResponse(status_code=422, content={
        "message": f"the request was refused ({len(detail)} problem(s)); nothing was stored",
        "detail": detail})


def _problems(problems: list[Problem], prefix: tuple[str, ...] = ("body",)) -> JSONResponse:
    return _refusal([{"loc": [*prefix, *p.field], "field": ".".join(p.field),
                      "msg": p.message, "type": "value_error"} for p in problems])


def create_app(pharmacy: Pharmacy, *, token_hours: float = 8.0) -> FastAPI:
    """The API over one pharmacy."""
    app = FastAPI(title="rxfill", version="0.1.0", description=__doc__)
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
            detail = "the body could not be read: expected a JSON object in UTF-8"
        return JSONResponse(status_code=exc.status_code, content={"detail": detail},
                            headers=exc.headers)

    app.add_exception_handler(AuthError, _error(401))
    app.add_exception_handler(RoleError, _error(403))
    app.add_exception_handler(NotFound, _error(404))
    app.add_exception_handler(WorkflowError, _error(409))
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

    @app.post("/api/orders", status_code=201, tags=["orders"])
    async def submit(body: OrderIn, who: Who) -> dict[str, Any]:
        """Take a prescription. 422 lists every wrong field; nothing is stored then."""
        return order_out(await pharmacy.submit(body.to_order(), who))

    @app.get("/api/orders", tags=["orders"])
    async def list_orders(_: Who, state: OrderState | None = None) -> list[dict[str, Any]]:
        """Every order (in one state, if asked), oldest first."""
        return [order_out(o) for o in await store.orders()
                if state is None or o.state is state]

    @app.get("/api/orders/{order_id}", tags=["orders"])
    async def show(order_id: int, _: Who) -> dict[str, Any]:
        """One order with its history and fills."""
        order = await pharmacy.order(order_id)
        history = [{"from": f, "to": t, "who": w, "reason": r}
                   for f, t, w, r in await store.order_history(order_id)]
        fills = [{"id": f.id, "robot": f.robot, "bin": f.bin, "outcome": f.outcome,
                  "counted": f.counted, "detail": f.detail, "counted_by": f.counted_by}
                 for f in await store.fills(order_id)]
        return {**order_out(order), "history": history, "fills": fills}

    @app.post("/api/orders/{order_id}/cancel", tags=["technician"])
    async def cancel(order_id: int, body: Reason, who: Who) -> dict[str, Any]:
        """Give up an order with nothing in a vial yet (received, queued, in exception)."""
        return order_out(await pharmacy.cancel(order_id, who, body.reason))

    @app.post("/api/orders/{order_id}/retry", tags=["technician"])
    async def retry(order_id: int, body: Retry, who: Who) -> dict[str, Any]:
        """An order in exception goes to a robot again (the one named, or any)."""
        return order_out(await pharmacy.retry(order_id, who, body.robot))

    @app.post("/api/orders/{order_id}/hand-count", tags=["technician"])
    async def hand_count(order_id: int, body: HandCount, who: Who) -> dict[str, Any]:
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

    @app.post("/api/robots/{robot}/clear", tags=["technician"])
    async def clear_robot(robot: str, who: Who) -> dict[str, object]:
        """A person fixed what stopped the robot (jam, open door, safe stop)."""
        await pharmacy.clear_robot(robot, who)
        return next(r for r in pharmacy.robots() if r["id"] == robot)

    # -- labels ------------------------------------------------------------------------

    @app.post("/api/orders/{order_id}/label/print", tags=["technician"])
    async def print_label(order_id: int, body: Reprint, who: Who) -> dict[str, Any]:
        """Print the vial's label again (a reprint needs a reason and is counted)."""
        record = await pharmacy.print_label(order_id, who=who.name, reason=body.reason)
        return {"fill": record.fill_id, "copy": record.copy, "printer": record.printer}

    @app.post("/api/orders/{order_id}/label/scan", tags=["technician"])
    async def scan_label(order_id: int, body: Scan, who: Who) -> dict[str, Any]:
        """The label scanned at the filled vial: LABELED if it is that vial's label."""
        return order_out(await pharmacy.scan_label(order_id, body.scanned, who))

    @app.get("/api/orders/{order_id}/label.{kind}", tags=["labels"])
    async def label_preview(order_id: int, kind: Literal["zpl", "png", "pdf"],
                            _: Who) -> Response:
        """The vial's label as the printer gets it (zpl) or as a preview (png, pdf)."""
        elements = layout(await pharmacy.label(order_id))
        if kind == "zpl":
            return Response(render_zpl(elements), media_type="text/plain; charset=utf-8")
        if kind == "png":
            return Response(render_png(elements), media_type="image/png")
        return Response(render_pdf(elements), media_type="application/pdf")

    # -- the pharmacist ----------------------------------------------------------------

    @app.get("/api/labels/{scanned}", tags=["pharmacist"])
    async def by_label(scanned: str, _: Who) -> dict[str, Any]:
        """The verification station: a scanned label → its order's evidence."""
        return await _evidence(await pharmacy.order_for_label(scanned))

    @app.get("/api/orders/{order_id}/evidence", tags=["pharmacist"])
    async def evidence(order_id: int, _: Who) -> dict[str, Any]:
        """What the pharmacist checks: drug, NDC, lots, counts, weight, who, what went wrong."""
        return await _evidence(order_id)

    async def _evidence(order_id: int) -> dict[str, Any]:
        e = await pharmacy.evidence(order_id)
        f = e.fill
        return {
            "order": order_out(e.order), "drug": e.drug, "schedule": e.schedule,
            "ndc": e.order.ndc, "lots": e.lots, "quantity_asked": e.order.quantity,
            "counted": f.counted,
            "weight": {"measured_mg": f.weight_mg, "expected_mg": f.expected_mg,
                       "tolerance_mg": f.tolerance_mg, "verdict": f.verdict},
            "filled_by": e.filled_by, "labelled_by": e.labelled_by,
            "exceptions": e.exceptions, "history": e.history,
            "labels": [{"copy": x.copy, "outcome": x.outcome, "who": x.who,
                        "reason": x.reason, "at": x.at.isoformat()} for x in e.labels],
        }

    @app.post("/api/orders/{order_id}/witness", tags=["pharmacist"])
    async def witness(order_id: int, body: Witness, who: Who) -> dict[str, Any]:
        """A schedule II vial's second count, witnessed by a pharmacist."""
        await pharmacy.witness(order_id, body.count, who)
        return {"order": order_id, "witnessed_by": who.name, "count": body.count}

    @app.post("/api/orders/{order_id}/verify", tags=["pharmacist"])
    async def verify(order_id: int, who: Who) -> dict[str, Any]:
        """Approve the vial: VERIFIED."""
        return order_out(await pharmacy.verify(order_id, who))

    @app.post("/api/orders/{order_id}/reject", tags=["pharmacist"])
    async def reject(order_id: int, body: Reject, who: Who) -> dict[str, Any]:
        """Refuse the vial, with a reason: filled again, or cancelled."""
        return order_out(await pharmacy.reject(order_id, who, body.reason,
                                               fill_again=body.fill_again,
                                               tablets=body.tablets))

    @app.post("/api/orders/{order_id}/release", tags=["pharmacist"])
    async def release(order_id: int, body: ReleaseIn, who: Who) -> dict[str, Any]:
        """To the pickup bin, or to shipping with carrier and tracking number."""
        return order_out(await pharmacy.release(order_id, who, body.destination,
                                                body.carrier, body.tracking))

    # -- FHIR --------------------------------------------------------------------------

    @app.post("/fhir/MedicationRequest", status_code=201, tags=["fhir"])
    async def fhir_request(request: Request, who: Who) -> JSONResponse:
        """A FHIR R4 MedicationRequest (application/fhir+json) becomes an order."""
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as exc:
            raise FhirProblems([Problem(("body",), f"not JSON: {exc}")]) from None
        record = await pharmacy.submit(order_from_request(body), who)
        return JSONResponse(status_code=201, content=order_out(record),
                            headers={"Location": f"/api/orders/{record.id}"})

    @app.get("/fhir/MedicationDispense/{fill_id}", tags=["fhir"])
    async def fhir_dispense(fill_id: int, _: Who) -> JSONResponse:
        """A filled vial as a FHIR R4 MedicationDispense."""
        fill = await store.fill(fill_id)
        if fill is None or fill.outcome != "filled":
            raise NotFound(f"no filled vial {fill_id}")
        order = await store.order(fill.order_id)
        drug = pharmacy.settings.formulary[order.ndc]
        content = dispense_of(order, fill, await store.fill_lots(fill.id),
                              await store.release(order.id), drug_name=drug.display_name,
                              unit=drug.dosage_form)
        return JSONResponse(content, media_type=FHIR_JSON)

    return app

