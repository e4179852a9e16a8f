"""Orders in: every field checked, every problem named, a bad order never stored; FHIR in and
out; no body at all can make the API fail."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.medicationdispense import MedicationDispense
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.operationoutcome import OperationOutcome
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.floors import ATORVASTATIN
from tests.sites import (
    ALPRAZOLAM,
    DEA,
    NPI,
    OXYCODONE,
    Site,
    medication_request,
    order_body,
    running_site,
)


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with running_site(tmp_path) as running:
        yield running


def fields(reply: httpx.Response) -> set[str]:
    assert reply.status_code == 422, reply.text
    body = reply.json()
    assert "nothing was stored" in body["message"]
    return {problem["field"] for problem in body["detail"]}


async def nothing_stored(site: Site) -> None:
    assert (await site.get("/api/orders", "tess")).json() == []
    assert not [e for e in await site.pharmacy.store.audit.audit_trail()
                if e.action == "order received"]


async def test_each_wrong_field_is_named_with_what_it_needs(site: Site) -> None:
    body = order_body(rx_number="RX 1!", ndc="0093-7146", quantity=0, colour="blue")
    body["patient"]["birth_date"] = "14/03/1961"
    body["prescriber"]["npi"] = "12345"
    del body["sig"]
    reply = await site.post("/api/orders", "tess", body)
    assert fields(reply) == {"rx_number", "ndc", "quantity", "colour", "patient.birth_date",
                             "prescriber.npi", "sig"}
    messages = {p["field"]: p["msg"] for p in reply.json()["detail"]}
    assert "5-4-2" in messages["ndc"] and messages["sig"] == "is missing; it is required"
    assert messages["colour"] == "is not a known field (misspelt?)"
    for quantity in ("30", True, 30.5, None):
        assert fields(await site.post("/api/orders", "tess",
                                      order_body(quantity=quantity))) == {"quantity"}
    named = order_body()
    named["patient"]["name"] = "Ada\nOkafor"
    assert fields(await site.post("/api/orders", "tess", named)) == {"patient.name"}
    await nothing_stored(site)


async def test_the_prescription_rules_are_checked_field_by_field(site: Site) -> None:
    body = order_body(OXYCODONE, 20, refills=2, fulfilment="ship")
    body["prescriber"] = {"name": "Grace Baker", "npi": "1234567890"}
    body["patient"]["address"] = None
    reply = await site.post("/api/orders", "tess", body)
    assert fields(reply) == {"prescriber.npi", "prescriber.dea", "refills", "patient.address"}
    messages = {p["field"]: p["msg"] for p in reply.json()["detail"]}
    assert "expected 3" in messages["prescriber.npi"]
    assert "schedule II drug may not be refilled" in messages["refills"]
    assert "schedule II drug needs the prescriber's DEA number" in messages["prescriber.dea"]
    assert fields(await site.post("/api/orders", "tess", order_body(
        ALPRAZOLAM, 30, refills=6))) == {"refills"}
    wrong_initial = order_body(ALPRAZOLAM, 30)
    wrong_initial["prescriber"]["name"] = "Grace Hopper"
    assert fields(await site.post("/api/orders", "tess", wrong_initial)) == {"prescriber.dea"}
    assert fields(await site.post("/api/orders", "tess", order_body(
        "12345-6789-01"))) == {"ndc"}
    future = (date.today() + timedelta(days=3)).isoformat()
    assert fields(await site.post("/api/orders", "tess", order_body(written=future))) == {
        "written"}
    await nothing_stored(site)


async def test_a_fhir_medication_request_is_filled_and_reads_back_as_a_dispense(
        site: Site) -> None:
    reply = await site.client.post("/fhir/MedicationRequest",
                                   content=json.dumps(medication_request()),
                                   headers={**site.auth("tess"),
                                            "Content-Type": "application/fhir+json"})
    assert reply.status_code == 201, reply.text
    order = reply.json()
    assert reply.headers["location"] == f"/api/orders/{order['id']}"
    assert (order["ndc"], order["quantity"], order["refills"], order["days_supply"]) == (
        ATORVASTATIN, 30, 3, 30)
    assert (order["priority"], order["fulfilment"]) == ("urgent", "ship")
    assert order["patient"] == {"id": "P-900", "name": "Ren Nakamura",
                                "birth_date": "1984-09-02",
                                "address": "9 Oak Avenue, Springfield, IL 62704",
                                "easy_open": False}
    assert order["prescriber"] == {"name": "Grace Baker", "npi": NPI, "dea": DEA}
    done = await site.wait_state(order["id"], "filled")
    fill = done["fills"][-1]
    dispense = MedicationDispense.model_validate(
        (await site.get(f"/fhir/MedicationDispense/{fill['id']}", "phil")).json())
    assert dispense.status == "in-progress"
    assert dispense.quantity is not None and dispense.quantity.value == 30
    medication = dispense.medicationCodeableConcept
    assert medication is not None and medication.coding
    assert (medication.coding[0].system, medication.coding[0].code) == (
        "http://hl7.org/fhir/sid/ndc", ATORVASTATIN.replace("-", ""))  # HL7's 11 digits
    assert dispense.dosageInstruction and (
        dispense.dosageInstruction[0].text == "Take 1 tablet by mouth at bedtime.")
    prescription = dispense.authorizingPrescription
    assert prescription and prescription[0].identifier is not None
    assert prescription[0].identifier.value == "RX9100001"
    missing = (await site.get("/fhir/MedicationDispense/999", "phil"))
    assert missing.status_code == 404


async def test_a_fhir_request_we_cannot_fill_is_refused_path_by_path(site: Site) -> None:
    request = medication_request(ndc="0093714601", quantity=30.5)
    request["contained"] = request["contained"][1:]  # no Patient
    del request["dosageInstruction"]
    reply = await site.post("/fhir/MedicationRequest", "tess", request)
    assert reply.status_code == 422
    paths = {p["field"] for p in reply.json()["detail"]}
    assert paths == {"MedicationRequest.medicationCodeableConcept.coding.code",
                     "MedicationRequest.subject", "MedicationRequest.dosageInstruction.text",
                     "MedicationRequest.dispenseRequest.quantity.value"}
    not_fhir = await site.post("/fhir/MedicationRequest", "tess", {"resourceType": "Patient"})
    assert not_fhir.status_code == 422
    garbled = medication_request()
    garbled["status"] = 7
    assert (await site.post("/fhir/MedicationRequest", "tess", garbled)).status_code == 422
    ruled = medication_request()
    ruled["contained"][1]["identifier"][0]["value"] = "1234567890"  # bad NPI check digit
    reply = await site.post("/fhir/MedicationRequest", "tess", ruled)
    assert reply.status_code == 422 and "prescriber.npi" in {
        p["field"] for p in reply.json()["detail"]}
    await nothing_stored(site)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=6)


@st.composite
def bad_bodies(draw: st.DrawFn) -> Any:
    """A valid order with some of its keys replaced by anything, removed or added."""
    body = order_body(rx_number=draw(st.from_regex(r"RX[0-9]{7}", fullmatch=True)))
    for _ in range(draw(st.integers(1, 4))):
        node = body
        path = draw(st.sampled_from([("rx_number",), ("ndc",), ("quantity",), ("sig",),
                                     ("refills",), ("days_supply",), ("priority",),
                                     ("fulfilment",), ("written",), ("patient",),
                                     ("patient", "name"), ("patient", "birth_date"),
                                     ("prescriber",), ("prescriber", "npi"),
                                     ("prescriber", "dea"), ("extra",)]))
        for key in path[:-1]:
            node = node[key] if isinstance(node.get(key), dict) else {}
        if draw(st.booleans()):
            node[path[-1]] = draw(JSON)
        else:
            node.pop(path[-1], None)
    return draw(st.one_of(st.just(body), JSON))


async def test_no_body_whatever_makes_the_api_fail(site: Site) -> None:
    headers = site.auth("tess")

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(bad_bodies(), st.sampled_from(["/api/orders", "/fhir/MedicationRequest",
                                          "/api/orders/1/reject", "/api/orders/1/hand-count",
                                          "/api/orders/1/release"]))
    def post(body: Any, path: str) -> None:
        with httpx.Client(base_url=site.url, timeout=30) as client:
            reply = client.post(path, json=body, headers=headers)
        assert reply.status_code < 500, reply.text
        assert reply.status_code in (201, 200) or "detail" in reply.json()

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.binary(max_size=200))
    def post_bytes(raw: bytes) -> None:
        with httpx.Client(base_url=site.url, timeout=30) as client:
            for path in ("/api/orders", "/fhir/MedicationRequest"):
                reply = client.post(path, content=raw, headers={
                    **headers, "Content-Type": "application/json"})
                assert reply.status_code in (400, 422), reply.text
                if reply.status_code == 400:
                    assert "expected a JSON object in UTF-8" in reply.json()["detail"]

    await asyncio.to_thread(post)
    await asyncio.to_thread(post_bytes)
    # JSON as Python writes it may hold NaN and Infinity: never a weight.
    for weight in ("NaN", "Infinity", "-Infinity", "1e999"):
        reply = await site.client.post("/api/orders/1/hand-count",
                                       headers={**headers,
                                                "Content-Type": "application/json"},
                                       content=f'{{"count": 30, "weight_mg": {weight}}}')
        assert reply.status_code == 422 and "weight_mg" in reply.text, reply.text


FHIR_HEADERS = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


async def test_a_fhir_client_is_answered_in_fhir(site: Site) -> None:
    headers = {**site.auth("tess"), **FHIR_HEADERS}
    reply = await site.client.post("/fhir/MedicationRequest",
                                   content=json.dumps(medication_request()), headers=headers)
    assert reply.status_code == 201, reply.text
    assert reply.headers["content-type"].startswith("application/fhir+json")
    created = MedicationRequest.model_validate(reply.json())
    location = reply.headers["location"]
    assert location == f"/fhir/MedicationRequest/{created.id}"
    again = await site.client.get(location, headers=site.auth("tess"))
    assert again.status_code == 200 and again.json() == reply.json()
    coding = created.medicationCodeableConcept.coding[0]  # type: ignore[union-attr,index]
    assert (coding.system, coding.code) == ("http://hl7.org/fhir/sid/ndc", "00093714601")
    assert created.identifier is not None and created.identifier[0].value == "RX9100001"
    same = await site.client.post("/fhir/MedicationRequest",
                                  content=json.dumps(medication_request()), headers=headers)
    assert same.status_code == 200 and same.headers["location"] == location


async def test_a_fhir_refusal_is_an_operation_outcome_pointing_at_each_element(
    site: Site,
) -> None:
    headers = {**site.auth("tess"), **FHIR_HEADERS}
    request = medication_request(quantity=30.5)
    del request["dosageInstruction"]
    reply = await site.client.post("/fhir/MedicationRequest", content=json.dumps(request),
                                   headers=headers)
    assert reply.status_code == 422, reply.text
    outcome = OperationOutcome.model_validate(reply.json())
    expressions = {e for issue in outcome.issue for e in issue.expression or []}
    assert expressions == {"MedicationRequest.dosageInstruction.text",
                           "MedicationRequest.dispenseRequest.quantity.value"}
    ruled = medication_request()
    ruled["contained"][1]["identifier"][0]["value"] = "1234567890"  # bad NPI check digit
    ruled["contained"][0]["name"] = [{"text": "Barnaby\u0085Quixley"}]
    reply = await site.client.post("/fhir/MedicationRequest", content=json.dumps(ruled),
                                   headers=headers)
    assert reply.status_code == 422, reply.text
    issues = OperationOutcome.model_validate(reply.json()).issue
    assert {e for issue in issues for e in issue.expression or []} == {
        "MedicationRequest.contained.ofType(Practitioner).identifier"
        ".where(system='http://hl7.org/fhir/sid/us-npi').value",
        "MedicationRequest.contained.ofType(Patient).name"}
    assert all(issue.severity == "error" and issue.diagnostics for issue in issues)
    await nothing_stored(site)
    created = await site.client.post("/fhir/MedicationRequest",
                                     content=json.dumps(medication_request()), headers=headers)
    assert created.status_code == 201
    other = medication_request(quantity=60)  # the same prescription fill, other content
    reply = await site.client.post("/fhir/MedicationRequest", content=json.dumps(other),
                                   headers=headers)
    assert reply.status_code == 409
    (issue,) = OperationOutcome.model_validate(reply.json()).issue
    assert issue.code == "conflict" and "quantity" in (issue.diagnostics or "")


ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
LABEL_PICTURE = (ROOT / "docs" / "label.png").is_file()


async def test_the_readmes_json_order_is_taken(site: Site) -> None:
    readme = README
    block = readme.split("```json\n", 1)[1].split("```", 1)[0]
    body = json.loads(block)
    body["written"] = date.today().isoformat()  # the README's date ages; the rest must not
    reply = await site.post("/api/orders", "tess", body)
    assert reply.status_code == 201, reply.text
    assert LABEL_PICTURE
    assert "docs/demo-table.svg" in readme and "docs/label.png" in readme
