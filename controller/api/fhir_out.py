"""FHIR R4 answers to a FHIR client: the order as the MedicationRequest it was, and a refusal
as an OperationOutcome whose issues point at the request's elements (FHIRPath).

Everything goes out validated by ``fhir.resources``.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.operationoutcome import OperationOutcome

from controller.api.fhir_in import (
    DEA_SYSTEMS,
    EASY_OPEN_URL,
    FILL_NUMBER_URL,
    FULFILMENT_URL,
    NDC_SYSTEM,
    NPI_SYSTEM,
)
from controller.domain.ndc import ndc11
from controller.domain.prescriptions import Problem
from controller.store import OrderRecord

_REQUEST = "MedicationRequest"
_PATIENT = f"{_REQUEST}.contained.ofType(Patient)"
_PRESCRIBER = f"{_REQUEST}.contained.ofType(Practitioner)"

ORDER_FIELDS: dict[tuple[str, ...], str] = {
    ("rx_number",): f"{_REQUEST}.identifier[0].value",
    ("ndc",): f"{_REQUEST}.medicationCodeableConcept.coding.where(system='{NDC_SYSTEM}').code",
    ("quantity",): f"{_REQUEST}.dispenseRequest.quantity.value",
    ("sig",): f"{_REQUEST}.dosageInstruction[0].text",
    ("refills",): f"{_REQUEST}.dispenseRequest.numberOfRepeatsAllowed",
    ("days_supply",): f"{_REQUEST}.dispenseRequest.expectedSupplyDuration",
    ("written",): f"{_REQUEST}.authoredOn",
    ("fill_number",): f"{_REQUEST}.extension.where(url='{FILL_NUMBER_URL}')",
    ("prescriber",): f"{_REQUEST}.requester",
    ("patient", "id"): f"{_PATIENT}.identifier[0].value",
    ("patient", "name"): f"{_PATIENT}.name",
    ("patient", "birth_date"): f"{_PATIENT}.birthDate",
    ("patient", "address"): f"{_PATIENT}.address",
    ("prescriber", "name"): f"{_PRESCRIBER}.name",
    ("prescriber", "npi"): f"{_PRESCRIBER}.identifier.where(system='{NPI_SYSTEM}').value",
    ("prescriber", "dea"): f"{_PRESCRIBER}.identifier.where(system='{DEA_SYSTEMS[0]}').value",
}
"""Where each field of an order came from in the MedicationRequest."""


def expression(problem: Problem) -> str:
    """The FHIRPath of the element ``problem`` is about.

    A problem found reading the resource names its path from ``MedicationRequest``
    (list indexes as numbers, a contained resource by its type); one found in the
    order names an order field, mapped back to where the request carried it.
    """
    field = problem.field
    if field and field[0] == _REQUEST:
        path = _REQUEST
        rest = list(field[1:])
        while rest:
            part = rest.pop(0)
            if part == "contained" and rest and rest[0] in ("Patient", "Practitioner"):
                path += f".contained.ofType({rest.pop(0)})"
            elif part.isdigit():
                path += f"[{part}]"
            else:
                path += f".{part}"
        return path
    if field == ("resourceType",) or field == ("body",):
        return _REQUEST
    return ORDER_FIELDS.get(field, _REQUEST)


def operation_outcome(problems: list[Problem]) -> dict[str, Any]:
    """Every problem as an error issue with its FHIRPath (validated OperationOutcome JSON)."""
    issues = [{"severity": "error",
               "code": "required" if "missing" in p.message else "invalid",
               "diagnostics": p.message, "expression": [expression(p)]} for p in problems]
    return OperationOutcome.model_validate(
        {"resourceType": "OperationOutcome", "issue": issues}).model_dump(
        mode="json", exclude_none=True)


def outcome_of(code: str, message: str) -> dict[str, Any]:
    """One error issue with no element to point at (a conflict, a forbidden step)."""
    return OperationOutcome.model_validate({
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": message}]}).model_dump(
        mode="json", exclude_none=True)


def request_of(order: OrderRecord) -> dict[str, Any]:
    """The stored order as the MedicationRequest it is (id: the order's), validated."""
    patient: dict[str, Any] = {
        "resourceType": "Patient", "id": "patient",
        "identifier": [{"value": order.patient_id}], "name": [{"text": order.patient_name}],
        "birthDate": order.patient_birth_date.isoformat()}
    if order.patient_address:
        patient["address"] = [{"text": order.patient_address}]
    contained = [patient]
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest", "id": str(order.id),
        "status": "cancelled" if order.state == "cancelled" else "active",
        "intent": "order", "identifier": [{"value": order.rx_number}],
        "priority": {"urgent": "urgent", "stat": "stat"}.get(order.priority, "routine"),
        "subject": {"reference": "#patient"},
        "medicationCodeableConcept": {"coding": [{"system": NDC_SYSTEM,
                                                  "code": ndc11(order.ndc)}]},
        "dispenseRequest": {"quantity": {"value": order.quantity},
                            "numberOfRepeatsAllowed": order.refills},
        "extension": [{"url": FULFILMENT_URL, "valueCode": order.fulfilment},
                      {"url": EASY_OPEN_URL, "valueBoolean": order.easy_open},
                      {"url": FILL_NUMBER_URL, "valueInteger": order.fill_number or 0}],
    }
    if order.sig:
        resource["dosageInstruction"] = [{"text": order.sig}]
    if order.days_supply:
        resource["dispenseRequest"]["expectedSupplyDuration"] = {
            "value": order.days_supply, "unit": "day", "system": "http://unitsofmeasure.org",
            "code": "d"}
    if order.written_on:
        resource["authoredOn"] = order.written_on.isoformat()
    if order.prescriber_name and order.prescriber_npi:
        ids = [{"system": NPI_SYSTEM, "value": order.prescriber_npi}]
        if order.prescriber_dea:
            ids.append({"system": DEA_SYSTEMS[0], "value": order.prescriber_dea})
        contained.append({"resourceType": "Practitioner", "id": "prescriber",
                          "identifier": ids, "name": [{"text": order.prescriber_name}]})
        resource["requester"] = {"reference": "#prescriber"}
    resource["contained"] = contained
    return MedicationRequest.model_validate(resource).model_dump(mode="json",
                                                                 exclude_none=True)
