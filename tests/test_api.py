"""The REST API over a running site: simulated robots and printer, real sockets, real SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.medicationdispense import MedicationDispense

from controller.store.records import fill_code
from drivers.label_printer.protocol import parse_fields
from tests.floors import ATORVASTATIN
from tests.helpers import maint
from tests.sites import OXYCODONE, Site, order_body, running_site


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with running_site(tmp_path) as running:
        yield running


async def submit(site: Site, body: dict[str, Any] | None = None, who: str = "tess") -> int:
    reply = await site.post("/api/orders", who, body or order_body())
    assert reply.status_code == 201, reply.text
    return int(reply.json()["id"])


async def filled(site: Site, body: dict[str, Any] | None = None) -> tuple[int, str]:
    """An order the robots filled and whose label printed: (order id, its label's code)."""
    order_id = await submit(site, body)
    order = await site.wait_state(order_id, "filled", "exception")
    assert order["state"] == "filled", order
    fill = [f for f in order["fills"] if f["outcome"] == "filled"][-1]
    for _ in range(100):  # the label prints as soon as the vial is filled
        if site.printer.printed:
            break
        await site.pharmacy.supervisor.clock.sleep(0.05)
    return order_id, fill_code(fill["id"])


async def test_an_order_goes_from_intake_to_release_by_the_right_people(site: Site) -> None:
    order_id, code = await filled(site)
    # The label printed by itself, for this vial, naming the pharmacist in charge.
    (zpl,) = site.printer.printed
    texts = [data for _, _, _, data in parse_fields(zpl)]
    assert code in texts and "Pharmacist Pat Lee, RPh" in texts
    assert "Take 1 tablet by mouth once daily." in texts and "Ada Okafor" in texts

    wrong = await site.post(f"/api/orders/{order_id}/label/scan", "tess",
                            {"scanned": fill_code(999)})
    assert wrong.status_code == 409 and "wrong label, nothing changed" in wrong.text
    assert (await site.get(f"/api/orders/{order_id}", "tess")).json()["state"] == "filled"
    scanned = await site.post(f"/api/orders/{order_id}/label/scan", "tess", {"scanned": code})
    assert scanned.status_code == 200 and scanned.json()["state"] == "labeled"

    # The verification station scans the label and sees the evidence.
    evidence = (await site.get(f"/api/labels/{code}", "phil")).json()
    assert evidence["order"]["id"] == order_id and evidence["ndc"] == ATORVASTATIN
    assert evidence["lots"] == [{"lot": "L1", "expiry": "2030-01-01"}]
    assert evidence["counted"] == evidence["quantity_asked"] == 30
    assert evidence["weight"]["verdict"] == "agrees" and evidence["weight"]["tolerance_mg"] > 0
    assert evidence["filled_by"] == "robot tc1 bin 1" and evidence["labelled_by"] == "tess"
    assert [x["copy"] for x in evidence["labels"]] == [1]

    refused = await site.post(f"/api/labels/{code}/verify", "tess")
    assert refused.status_code == 403 and "needs the pharmacist role" in refused.text
    assert (await site.post(f"/api/labels/{code}/verify", "phil")).json()[
        "state"] == "verified"
    no_tracking = await site.post(f"/api/labels/{code}/release", "phil",
                                  {"destination": "shipping", "carrier": "UPS"})
    assert no_tracking.status_code == 409
    released = await site.post(f"/api/labels/{code}/release", "phil",
                               {"destination": "pickup"})
    assert released.status_code == 200 and released.json()["state"] == "released"
    # Closed for changes.
    late = await site.post(f"/api/orders/{order_id}/cancel", "phil", {"reason": "oops"})
    assert late.status_code == 409 and "released" in late.text

    fill_id = int(code[1:])
    reply = await site.get(f"/fhir/MedicationDispense/{fill_id}", "phil")
    assert reply.headers["content-type"].startswith("application/fhir+json")
    dispense = MedicationDispense.model_validate(reply.json())
    assert dispense.status == "completed"
    assert dispense.quantity is not None and dispense.quantity.value == 30
    medication = dispense.medicationCodeableConcept
    assert medication is not None and medication.coding
    assert medication.coding[0].code == ATORVASTATIN.replace("-", "")  # HL7: 11 digits
    assert dispense.whenHandedOver is not None
    assert await site.pharmacy.store.audit.verify_audit() == []


async def test_who_labelled_or_counted_never_verifies_or_witnesses(site: Site) -> None:
    order_id, code = await filled(site, order_body(OXYCODONE, 20))
    await site.post(f"/api/orders/{order_id}/label/scan", "bo", {"scanned": code})
    own = await site.post(f"/api/labels/{code}/verify", "bo")
    assert own.status_code == 409 and "bo filled, counted or labelled" in own.text
    witness_own = await site.post(f"/api/labels/{code}/witness", "bo", {"count": 20})
    assert witness_own.status_code == 409
    assert (await site.post(f"/api/labels/{code}/verify", "phil")).status_code == 200
    early = await site.post(f"/api/labels/{code}/release", "phil",
                            {"destination": "pickup"})
    assert early.status_code == 409 and "second count witnessed" in early.text
    miscount = await site.post(f"/api/labels/{code}/witness", "pam", {"count": 19})
    assert miscount.status_code == 409 and "disagrees" in miscount.text
    assert (await site.post(f"/api/labels/{code}/witness", "pam",
                            {"count": 20})).status_code == 200
    assert (await site.post(f"/api/labels/{code}/release", "phil",
                            {"destination": "pickup"})).json()["state"] == "released"


async def test_a_rejected_vial_is_filled_again_and_its_tablets_go_back(site: Site) -> None:
    order_id, code = await filled(site)
    await site.post(f"/api/orders/{order_id}/label/scan", "tess", {"scanned": code})
    before = (await site.pharmacy.store.stock.bin("tc1", 1)).on_hand
    no_reason = await site.post(f"/api/labels/{code}/reject", "phil",
                                {"reason": "", "fill_again": True, "tablets": "returned"})
    assert no_reason.status_code == 422
    rejected = await site.post(f"/api/labels/{code}/reject", "phil",
                               {"reason": "tablets chipped", "fill_again": True,
                                "tablets": "returned"})
    assert rejected.status_code == 200, rejected.text
    order = await site.wait_state(order_id, "filled")
    assert len([f for f in order["fills"] if f["outcome"] == "filled"]) == 2
    # 30 returned, 30 taken again.
    assert (await site.pharmacy.store.stock.bin("tc1", 1)).on_hand == before


async def test_reprints_need_a_reason_and_a_printer_that_can_print(site: Site) -> None:
    order_id, _ = await filled(site)
    bare = await site.post(f"/api/orders/{order_id}/label/print", "tess", {})
    assert bare.status_code == 409 and "reprint needs a reason" in bare.text
    # Printing a label is a duty like any other: an admin dispenses nothing.
    admin = await site.post(f"/api/orders/{order_id}/label/print", "al",
                            {"reason": "label smudged"})
    assert admin.status_code == 403, admin.text
    assert "al may not print a vial's label: it needs the pharmacist or technician role" in (
        admin.text)
    assert len(site.printer.printed) == 1
    site.printer.faults.paper_out = True
    out = await site.post(f"/api/orders/{order_id}/label/print", "tess",
                          {"reason": "label smudged"})
    assert out.status_code == 503 and "out of labels" in out.text
    site.printer.faults.paper_out = False
    again = await site.post(f"/api/orders/{order_id}/label/print", "tess",
                            {"reason": "label smudged"})
    assert again.status_code == 200 and again.json()["copy"] == 2
    assert len(site.printer.printed) == 2 and "REPRINT 2" in site.printer.printed[1]
    evidence = (await site.get(f"/api/orders/{order_id}/evidence", "phil")).json()
    assert [(x["copy"], x["outcome"]) for x in evidence["labels"]] == [
        (1, "printed"), (2, "refused"), (2, "printed")]
    png = await site.get(f"/api/orders/{order_id}/label.png", "tess")
    assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")
    pdf = await site.get(f"/api/orders/{order_id}/label.pdf", "tess")
    assert pdf.content.startswith(b"%PDF-")


async def test_an_exception_is_counted_by_hand_or_cancelled(site: Site) -> None:
    order_id = await submit(site, order_body(ATORVASTATIN, 700))  # more than the bin holds
    order = await site.wait_state(order_id, "exception")
    assert "not enough" in order["reason"] or "holds" in order["reason"], order["reason"]
    cancel = await site.post(f"/api/orders/{order_id}/cancel", "tess", {"reason": "no stock"})
    assert cancel.json()["state"] == "cancelled"

    second = await submit(site, order_body(ATORVASTATIN, 700, rx_number="RX9000002"))
    await site.wait_state(second, "exception")
    wrong = await site.post(f"/api/orders/{second}/hand-count", "tom",
                            {"count": 700, "weight_mg": 690 * 155, "robot": "tc1", "bin": 1})
    assert wrong.status_code == 409  # the bin holds 600: it cannot have given 700
    other = await site.post(f"/api/orders/{second}/hand-count", "tom",
                            {"count": 700, "weight_mg": 700 * 155, "robot": "tc2", "bin": 1})
    assert other.status_code == 409 and "not the order's" in other.text


async def test_a_hand_count_fills_the_vial_and_its_counter_may_not_verify(site: Site) -> None:
    await site.pharmacy.supervisor.desk.set_in_service("tc1", maint("maintenance"), False)
    order_id = await submit(site)
    order = await site.wait_state(order_id, "exception")
    assert "out of service" in order["reason"]
    light = await site.post(f"/api/orders/{order_id}/hand-count", "bo",
                            {"count": 30, "weight_mg": 29 * 155, "robot": "tc1", "bin": 1})
    assert light.status_code == 409 and "count again" in light.text
    before = (await site.pharmacy.store.stock.bin("tc1", 1)).on_hand
    counted = await site.post(f"/api/orders/{order_id}/hand-count", "bo",
                              {"count": 30, "weight_mg": 30 * 155 + 12, "robot": "tc1",
                               "bin": 1})
    assert counted.status_code == 200 and counted.json()["state"] == "filled"
    assert (await site.pharmacy.store.stock.bin("tc1", 1)).on_hand == before - 30
    (zpl,) = site.printer.printed  # its label printed at once
    code = next(data for kind, _, _, data in parse_fields(zpl) if kind == "code128")
    await site.post(f"/api/orders/{order_id}/label/scan", "tess", {"scanned": code})
    evidence = (await site.get(f"/api/labels/{code}", "phil")).json()
    assert evidence["filled_by"] == "counted by hand by bo"
    assert any("out of service" in (h["reason"] or "") for h in evidence["history"])
    own = await site.post(f"/api/labels/{code}/verify", "bo")
    assert own.status_code == 409 and "bo filled, counted or labelled" in own.text
    assert (await site.post(f"/api/labels/{code}/verify", "phil")).status_code == 200


async def test_the_api_says_who_may_do_what(site: Site) -> None:
    anonymous = await site.client.get("/api/orders")
    assert anonymous.status_code == 401 and "sign in" in anonymous.text
    forged = await site.client.get("/api/orders", headers={"Authorization": "Bearer nope"})
    assert forged.status_code == 401
    admin = await site.post("/api/orders", "al", order_body())
    assert admin.status_code == 403 and "pharmacist or technician role" in admin.text
    duty = await site.post("/api/duty", "tess")
    assert duty.status_code == 403
    assert (await site.post("/api/duty", "pam")).json() == {"pharmacist_on_duty": "pam"}
    bad = await site.client.post("/api/sign-in", json={"name": "phil", "password": "guess"})
    assert bad.status_code == 401
    assert (await site.client.get("/docs")).status_code == 200
    schema = (await site.client.get("/openapi.json")).json()
    assert "/api/orders" in schema["paths"] and "/fhir/MedicationRequest" in schema["paths"]


async def test_a_vial_too_big_for_the_scale_is_counted_by_hand_not_filled_twice(
        site: Site) -> None:
    before = (await site.pharmacy.store.stock.bin("tc1", 1)).on_hand
    order_id = await submit(site, order_body(ATORVASTATIN, 100))
    order = await site.wait_state(order_id, "exception")
    assert "count by hand" in order["reason"]
    unsaid = await site.post(f"/api/orders/{order_id}/hand-count", "tom",
                             {"count": 100, "weight_mg": 100 * 155})
    assert unsaid.status_code == 409 and "count the tablets in it" in unsaid.text
    counted = await site.post(f"/api/orders/{order_id}/hand-count", "tom",
                              {"count": 100, "weight_mg": 100 * 155 + 30, "found": 100})
    assert counted.status_code == 200, counted.text
    # The robot's vial was recounted, not a second one taken from the bin.
    assert (await site.pharmacy.store.stock.bin("tc1", 1)).on_hand == before - 100
    assert await site.pharmacy.store.audit.verify_audit() == []


async def test_no_label_without_a_pharmacist_on_duty_and_the_refusal_is_recorded(
        tmp_path: Path) -> None:
    async with running_site(tmp_path, pharmacist=None) as site:
        order_id = await submit(site)
        await site.wait_state(order_id, "filled")
        await site.pharmacy.idle()
        assert site.printer.printed == []
        evidence = (await site.get(f"/api/orders/{order_id}/evidence", "phil")).json()
        assert [(x["outcome"], x["reason"][:28]) for x in evidence["labels"]] == [
            ("refused", "no pharmacist is on duty: a ")]
        assert (await site.post("/api/duty", "pam")).status_code == 200
        printed = await site.post(f"/api/orders/{order_id}/label/print", "tess", {})
        assert printed.status_code == 200 and printed.json()["copy"] == 1
        (zpl,) = site.printer.printed
        assert "Pharmacist pam" in [data for _, _, _, data in parse_fields(zpl)]
