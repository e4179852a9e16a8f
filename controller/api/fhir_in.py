"""FHIR R4 in and out: a MedicationRequest becomes an order; a filled vial reads as a
MedicationDispense. Models from ``fhir.resources.R4B`` (R4B's MedicationRequest and
MedicationDispense are R4's, field for field).

What a MedicationRequest must carry for us to fill it:
- ``identifier[0].value``: the prescription number;
- ``medicationCodeableConcept.coding`` with system ``http://hl7.org/fhir/sid/ndc``;
- ``subject`` referencing a *contained* Patient (identifier, name, birthDate,
  address for mail order);
- ``requester`` referencing a *contained* Practitioner with an NPI identifier
  (``http://hl7.org/fhir/sid/us-npi``) and, for a scheduled drug, a DEA number
  (``urn:oid:2.16.840.1.113883.4.814`` or ``http://hl7.org/fhir/sid/us-dea``);
- ``dosageInstruction[0].text``: the directions;
- ``dispenseRequest.quantity.value``, ``numberOfRepeatsAllowed`` (refills),
  ``expectedSupplyDuration`` in days (days' supply);
- optionally ``priority``, ``authoredOn``, and the extension
  ``urn:rxfill:fulfilment`` (valueCode ``pickup`` or ``ship``) and
  ``urn:rxfill:easy-open`` (valueBoolean), ``urn:rxfill:fill-number`` (valueInteger: 0 for
  the original fill, n for the n-th refill).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from fhir.resources.R4B.medicationdispense import MedicationDispense
from fhir.resources.R4B.medicationrequest import MedicationRequest
from pydantic import ValidationError

from controller.domain.ndc import NdcError, ndc11, parse_any_ndc
from controller.domain.orders import Fulfilment, Order, Patient, Prescriber, Priority
from controller.domain.prescriptions import MAX_REFILLS, Problem
from controller.store import FillRecord, OrderRecord
from controller.store.records import fill_code
from controller.store.verification import Release

NDC_SYSTEM = "http://hl7.org/fhir/sid/ndc"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
DEA_SYSTEMS = ("urn:oid:2.16.840.1.113883.4.814", "http://hl7.org/fhir/sid/us-dea")
FULFILMENT_URL = "urn:rxfill:fulfilment"
EASY_OPEN_URL = "urn:rxfill:easy-open"
FILL_NUMBER_URL = "urn:rxfill:fill-number"
RX_SYSTEM = "urn:rxfill:rx-number"
FILL_SYSTEM = "urn:rxfill:fill"
PRIORITIES = {"routine": Priority.ROUTINE, "urgent": Priority.URGENT, "asap": Priority.URGENT,
              "stat": Priority.STAT}


class FhirProblems(ValueError):
    """A resource that is not a MedicationRequest we can fill; ``problems`` names each path."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{'.'.join(p.field)}: {p.message}" for p in problems))
        self.problems = problems


def order_from_request(body: Any) -> Order:
    """The order a MedicationRequest (parsed JSON) asks for, or FhirProblems."""
    if not isinstance(body, dict) or body.get("resourceType") != "MedicationRequest":
        raise FhirProblems([Problem(("resourceType",), "expected a MedicationRequest")])
    try:
        request = MedicationRequest.model_validate(body)
    except ValidationError as exc:
        raise FhirProblems([Problem(("MedicationRequest", *map(str, e["loc"])), e["msg"])
                            for e in exc.errors(include_url=False)]) from None
    problems: list[Problem] = []

    def need(path: str, message: str) -> None:
        problems.append(Problem(("MedicationRequest", *path.split(".")), message))

    contained = {f"#{r.id}": r for r in (request.contained or []) if r.id}
    patient_res = contained.get(getattr(request.subject, "reference", None) or "")
    prescriber_res = contained.get(getattr(request.requester, "reference", None) or "")
    if request.status != "active":
        need("status", f"status {request.status!r}: only an active request is filled")
    if request.intent not in ("order", "original-order", "instance-order"):
        need("intent", f"intent {request.intent!r}: expected order")
    rx = next((i.value for i in (request.identifier or []) if i.value), None)
    if rx is None:
        need("identifier", "the prescription number (identifier[0].value) is missing")
    ndc = _ndc(request, need)
    patient = None
    if patient_res is None or patient_res.get_resource_type() != "Patient":
        need("subject", "expected a reference to a contained Patient (#id)")
    else:
        patient = _patient(patient_res, need)
    prescriber = None
    if prescriber_res is None or prescriber_res.get_resource_type() != "Practitioner":
        need("requester", "expected a reference to a contained Practitioner (#id)")
    else:
        prescriber = _prescriber(prescriber_res, need)
    dosage = request.dosageInstruction[0] if request.dosageInstruction else None
    sig = (dosage.text or dosage.patientInstruction or "") if dosage else ""
    if not sig.strip():
        need("dosageInstruction.text", "the directions are missing")
    dispense = request.dispenseRequest
    quantity, days = _amounts(request, need)
    fulfilment, easy_open, fill_number = _extensions(request, need)
    if problems or rx is None or ndc is None or patient is None or quantity is None:
        raise FhirProblems(problems)
    written = request.authoredOn
    return Order(
        rx_number=rx, patient=patient, ndc=ndc, quantity=int(quantity), easy_open=easy_open,
        sig=sig.strip(), prescriber=prescriber,
        refills=int(dispense.numberOfRepeatsAllowed or 0) if dispense else 0,
        days_supply=days, priority=PRIORITIES.get(request.priority or "routine",
                                                  Priority.ROUTINE),
        fulfilment=fulfilment,
        written=written.date() if isinstance(written, datetime) else (
            written if isinstance(written, date) else None), fill_number=fill_number)


Need = Callable[[str, str], None]
"""Records a problem at a MedicationRequest path."""


def _ndc(request: MedicationRequest, need: Need) -> str | None:
    """The NDC of the coding with the NDC system, or None (and a problem)."""
    codings = request.medicationCodeableConcept.coding if request.medicationCodeableConcept else []
    code = next((c.code for c in codings or [] if c.system == NDC_SYSTEM and c.code), None)
    if code is None:
        need("medicationCodeableConcept", f"no coding with system {NDC_SYSTEM}")
        return None
    try:
        return parse_any_ndc(code)
    except NdcError as exc:
        need("medicationCodeableConcept.coding.code", str(exc))
        return None


def _amounts(request: MedicationRequest, need: Need) -> tuple[Any, int | None]:
    """The quantity to dispense, and the days it lasts (None when not said)."""
    dispense = request.dispenseRequest
    quantity = dispense.quantity.value if dispense and dispense.quantity else None
    if quantity is None or quantity != int(quantity):
        need("dispenseRequest.quantity.value", f"expected a whole number of units, got "
                                               f"{quantity}")
    days = None
    if dispense and dispense.expectedSupplyDuration:
        duration = dispense.expectedSupplyDuration
        if duration.code != "d" or duration.value is None or duration.value != int(
                duration.value):
            need("dispenseRequest.expectedSupplyDuration", "expected whole days (code d)")
        else:
            days = int(duration.value)
    return quantity, days


def _extensions(request: MedicationRequest, need: Need) -> tuple[Fulfilment, bool, int]:
    """Our extensions: pickup or ship, an easy-open cap, which fill of the prescription."""
    extensions = {e.url: e for e in request.extension or []}
    fulfilment = Fulfilment.PICKUP
    if FULFILMENT_URL in extensions:
        value = extensions[FULFILMENT_URL].valueCode
        if value not in ("pickup", "ship"):
            need("extension", f"{FULFILMENT_URL}: {value!r}; expected pickup or ship")
        else:
            fulfilment = Fulfilment(value)
    easy_open = bool(EASY_OPEN_URL in extensions and extensions[EASY_OPEN_URL].valueBoolean)
    fill_number = 0
    if FILL_NUMBER_URL in extensions:
        number = extensions[FILL_NUMBER_URL].valueInteger
        if not isinstance(number, int) or not 0 <= number <= MAX_REFILLS:
            need("extension", f"{FILL_NUMBER_URL}: {number!r}; expected a whole number 0 (the "
                              f"original fill) to {MAX_REFILLS} (valueInteger)")
        else:
            fill_number = number
    return fulfilment, easy_open, fill_number


def _full_name(resource: Any) -> str:
    """A Patient's or Practitioner's first HumanName as one line: its text, or given family."""
    name = (resource.name or [None])[0]
    if name is None:
        return ""
    return str(name.text or " ".join([*(name.given or []), name.family or ""]).strip())


def _patient(resource: Any, need: Any) -> Patient | None:
    ident = next((i.value for i in resource.identifier or [] if i.value), None) or resource.id
    full = _full_name(resource)
    address = (resource.address or [None])[0]
    where = None
    if address is not None:
        where = address.text or ", ".join(
            part for part in [*(address.line or []), address.city, " ".join(
                p for p in (address.state, address.postalCode) if p)] if part)
    if not full:
        need("contained.Patient.name", "the patient's name is missing")
    if resource.birthDate is None:
        need("contained.Patient.birthDate", "the patient's birth date is missing")
    if not full or resource.birthDate is None:
        return None
    return Patient(str(ident), full, resource.birthDate, where or None)


def _prescriber(resource: Any, need: Any) -> Prescriber | None:
    ids = {i.system: i.value for i in resource.identifier or []}
    full = _full_name(resource)
    npi = ids.get(NPI_SYSTEM)
    if npi is None:
        need("contained.Practitioner.identifier", f"no NPI (system {NPI_SYSTEM})")
    if not full:
        need("contained.Practitioner.name", "the prescriber's name is missing")
    if npi is None or not full:
        return None
    dea = next((ids[s] for s in DEA_SYSTEMS if s in ids), None)
    return Prescriber(full, npi, dea)


def dispense_of(order: OrderRecord, fill: FillRecord, lots: list[tuple[str, date]],
                release: Release | None, *, drug_name: str, unit: str) -> dict[str, Any]:
    """The filled vial as a MedicationDispense (validated), as JSON."""
    status = {"released": "completed", "cancelled": "cancelled"}.get(order.state,
                                                                     "in-progress")
    resource: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "id": str(fill.id),
        "identifier": [{"system": FILL_SYSTEM, "value": fill_code(fill.id)}],
        "status": status,
        "medicationCodeableConcept": {
            "coding": [{"system": NDC_SYSTEM, "code": ndc11(order.ndc), "display": drug_name}],
            "text": drug_name},
        "subject": {"identifier": {"value": order.patient_id}, "display": order.patient_name},
        "authorizingPrescription": [{"identifier": {"system": RX_SYSTEM,
                                                    "value": order.rx_number}}],
        "quantity": {"value": fill.counted, "unit": unit},
        "performer": [{"actor": {"display": (f"counted by hand by {fill.counted_by}"
                                             if fill.counted_by else
                                             f"robot {fill.robot} bin {fill.bin}")}}],
        "note": [{"text": "lot " + ", ".join(f"{lot} (expires {expiry:%Y-%m-%d})"
                                             for lot, expiry in lots)}],
        "dosageInstruction": [{"text": order.sig}] if order.sig else None,
        "daysSupply": ({"value": order.days_supply, "unit": "day",
                        "system": "http://unitsofmeasure.org", "code": "d"}
                       if order.days_supply else None),
        "whenPrepared": (fill.ended_at or fill.started_at).isoformat(),
        "whenHandedOver": release.at.isoformat() if release else None,
    }
    resource = {k: v for k, v in resource.items() if v is not None}
    return MedicationDispense.model_validate(resource).model_dump(mode="json",
                                                                  exclude_none=True)
