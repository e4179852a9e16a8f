"""FHIR R4: a MedicationRequest in becomes an order; orders and vials out as FHIR."""

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from controller.api.bodies import order_out
from controller.api.deps import FillId, OrderId, Site, Who
from controller.api.errors import not_json
from controller.api.fhir_in import FhirProblems, dispense_of, order_from_request
from controller.api.fhir_out import operation_outcome, outcome_of, request_of
from controller.domain.orders import FillOutcome
from controller.domain.prescriptions import Problem
from controller.domain.roles import WorkflowError
from controller.pharmacy.refusals import NotFound, OrderInvalid

FHIR_JSON = "application/fhir+json"

router = APIRouter(tags=["fhir"])


def _fhir(status: int, content: dict[str, Any],
          headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(content, status_code=status, media_type=FHIR_JSON, headers=headers)


@router.post("/fhir/MedicationRequest", status_code=201)
async def fhir_request(request: Request, who: Who, pharmacy: Site) -> JSONResponse:
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
            return not_json(str(exc))
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


@router.get("/fhir/MedicationRequest/{order_id}")
async def fhir_request_of(order_id: OrderId, _: Who, pharmacy: Site) -> JSONResponse:
    """An order as the FHIR R4 MedicationRequest it is."""
    return _fhir(200, request_of(await pharmacy.order(order_id)))


@router.get("/fhir/MedicationDispense/{fill_id}")
async def fhir_dispense(fill_id: FillId, _: Who, pharmacy: Site) -> JSONResponse:
    """A filled vial as a FHIR R4 MedicationDispense."""
    store = pharmacy.store
    fill = await store.orders.fill(fill_id)
    if fill is None or fill.outcome is not FillOutcome.FILLED:
        raise NotFound(f"no filled vial {fill_id}")
    order = await store.orders.order(fill.order_id)
    drug = pharmacy.settings.formulary[order.ndc]
    content = dispense_of(order, fill, await store.orders.fill_lots(fill.id),
                          await store.verification.release(order.id), drug_name=drug.display_name,
                          unit=drug.dosage_form)
    return JSONResponse(content, media_type=FHIR_JSON)
