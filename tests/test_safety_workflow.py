"""Issue 11, items 1-5: the workflow's rules at every door (the REST API over a running site,
and direct calls of the pharmacy service and of the store's public functions).

1. A filled vial leaves the workflow only through a pharmacist, who says what became of it.
2. A label names one vial: a label of a vial that is no longer its order's is refused with why.
3. Separation of duties and the schedule II witness come from the store's own records.
4. The same prescription fill is never filled twice by a retry.
5. The verification station is the pharmacist's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.domain.drugs import Formulary
from controller.domain.orders import FillOutcome, OrderState
from controller.domain.roles import Person, Role, RoleError, WorkflowError
from controller.domain.workflow import NotTheVial
from controller.store import FillResult, Store, fill_code, sqlite_url
from tests.floors import ATORVASTATIN
from tests.helpers import PHARM, TECH, formulary, open_store
from tests.sites import OXYCODONE, Site, order_body, running_site
from tests.test_api import filled, submit
from tests.test_verification import PAM, filled_order

# -- over the REST API ----------------------------------------------------------------------


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with running_site(tmp_path) as running:
        yield running


async def labelled(site: Site, body: dict[str, Any] | None = None) -> tuple[int, str]:
    order_id, code = await filled(site, body)
    scanned = await site.post(f"/api/orders/{order_id}/label/scan", "tess", {"scanned": code})
    assert scanned.status_code == 200, scanned.text
    return order_id, code


@pytest.mark.parametrize("ndc", [ATORVASTATIN, OXYCODONE])
async def test_a_technician_cannot_cancel_a_labelled_vial_and_a_pharmacist_says_where_it_went(
        site: Site, ndc: str) -> None:
    # Before: a technician's cancel of a LABELED order answered 200, its tablets vanished
    # from the bin's record and the vial from every list.
    order_id, code = await labelled(site, order_body(ndc, 20))
    fill_id = int(code[1:])
    store = site.pharmacy.store
    bin_before = next(b for b in await store.stock.bins() if b.ndc == ndc)
    refused = await site.post(f"/api/orders/{order_id}/cancel", "tess",
                              {"reason": "patient moved", "tablets": "returned"})
    assert refused.status_code == 403 and "needs the pharmacist role" in refused.text
    unsaid = await site.post(f"/api/orders/{order_id}/cancel", "phil",
                             {"reason": "patient moved"})
    assert unsaid.status_code == 409 and "what became of the vial's tablets" in unsaid.text
    assert (await store.orders.order(order_id)).state is OrderState.LABELED
    done = await site.post(f"/api/orders/{order_id}/cancel", "phil",
                           {"reason": "patient moved", "tablets": "returned"})
    assert done.status_code == 200 and done.json()["state"] == "cancelled", done.text
    bin_after = await store.stock.bin(bin_before.robot, bin_before.bin)
    assert bin_after.on_hand == bin_before.on_hand + 20  # back on the bin, lot by lot
    (vial,) = [v for v in await store.vials.set_aside_vials() if v.fill_id == fill_id]
    assert (vial.cause, vial.disposition, vial.disposed_by, vial.count) == (
        "cancelled", "returned", "phil", 20)
    trail = [(e.who, e.action, e.subject) for e in await store.audit.audit_trail()]
    assert ("phil", "cancelled vial returned", f"fill:{fill_id}") in trail
    # Its label now says why it goes nowhere.
    gone = await site.get(f"/api/labels/{code}", "pam")
    assert gone.status_code == 409 and "was cancelled" in gone.text


async def test_a_verified_vial_is_cancelled_only_by_a_pharmacist_and_wasted_stays_off(
        site: Site) -> None:
    order_id, code = await labelled(site)
    await site.post(f"/api/labels/{code}/verify", "phil")
    before = (await site.pharmacy.store.stock.bin("tc1", 1)).on_hand
    tech = await site.post(f"/api/orders/{order_id}/cancel", "tom",
                           {"reason": "dropped", "tablets": "wasted"})
    assert tech.status_code == 403
    done = await site.post(f"/api/orders/{order_id}/cancel", "pam",
                           {"reason": "dropped", "tablets": "wasted"})
    assert done.json()["state"] == "cancelled"
    assert (await site.pharmacy.store.stock.bin("tc1", 1)).on_hand == before


async def test_a_rejected_vials_label_is_refused_with_why_never_another_vials_evidence(
        site: Site) -> None:
    # Before: scanning the rejected vial's label showed the evidence of the order's new vial,
    # and verify/release by order went on with whatever vial the order had.
    order_id, old = await labelled(site)
    rejected = await site.post(f"/api/labels/{old}/reject", "phil",
                               {"reason": "tablets chipped", "fill_again": True,
                                "tablets": "wasted"})
    assert rejected.status_code == 200, rejected.text
    order = await site.wait_state(order_id, "filled")
    new = fill_code([f for f in order["fills"] if f["outcome"] == "filled"][-1]["id"])
    assert new != old
    for method, path, body in (("GET", f"/api/labels/{old}", None),
                               ("POST", f"/api/labels/{old}/verify", None),
                               ("POST", f"/api/labels/{old}/witness", {"count": 30}),
                               ("POST", f"/api/labels/{old}/release",
                                {"destination": "pickup"})):
        reply = await (site.get(path, "pam") if method == "GET"
                       else site.post(path, "pam", body))
        assert reply.status_code == 409, (path, reply.text)
        assert f"{old} was rejected" in reply.text and f"vial is {new}" in reply.text, reply.text
    # The technician's scan of the old label at the new vial is refused too.
    wrong = await site.post(f"/api/orders/{order_id}/label/scan", "tess", {"scanned": old})
    assert wrong.status_code == 409 and "wrong label" in wrong.text
    await site.post(f"/api/orders/{order_id}/label/scan", "tess", {"scanned": new})
    evidence = (await site.get(f"/api/labels/{new}", "pam")).json()
    assert evidence["label"] == new and evidence["labelled_by"] == "tess"
    missing = await site.get("/api/labels/F09999999", "pam")
    assert missing.status_code == 404 and "no vial F09999999" in missing.text


async def test_the_verification_station_is_the_pharmacists(site: Site) -> None:
    # Before: a technician read any vial's evidence (200).
    order_id, code = await labelled(site)
    # A technician learns nothing there, not even whether a label still names a vial.
    for path in (f"/api/labels/{code}", f"/api/orders/{order_id}/evidence",
                 "/api/labels/F09999999", "/api/labels/not-a-label"):
        assert (await site.get(path, "tess")).status_code == 403, path
    for path in (f"/api/labels/{code}", f"/api/orders/{order_id}/evidence"):
        tech = await site.get(path, "tess")
        assert tech.status_code == 403 and "needs the pharmacist role" in tech.text, tech.text
        assert (await site.get(path, "phil")).status_code == 200
    # The technician's own steps show what they need: the drug, the count, the label.
    shown = (await site.get(f"/api/orders/{order_id}", "tess")).json()
    assert shown["drug"] == "atorvastatin 20 mg tablet"
    (vial,) = [f for f in shown["fills"] if f["outcome"] == "filled"]
    assert (vial["label"], vial["counted"], vial["labelled_by"]) == (code, 30, "tess")
    preview = await site.get(f"/api/orders/{order_id}/label.png", "tess")
    assert preview.status_code == 200 and preview.content.startswith(b"\x89PNG")


async def test_the_same_prescription_fill_is_one_order_never_a_second_vial(site: Site) -> None:
    # Before: a retried submission made a second order and a second vial.
    body = order_body(rx_number="RX4242", refills=2)
    first = await site.post("/api/orders", "tess", body)
    again = await site.post("/api/orders", "tom", body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    order = await site.wait_state(first.json()["id"], "filled")
    assert len(order["fills"]) == 1
    changed = await site.post("/api/orders", "tess", {**body, "quantity": 60})
    assert changed.status_code == 409 and "differs in quantity" in changed.text
    refill = await site.post("/api/orders", "tess", {**body, "fill_number": 1})
    assert refill.status_code == 201 and refill.json()["id"] != first.json()["id"]
    too_many = await site.post("/api/orders", "tess", {**body, "fill_number": 3})
    assert too_many.status_code == 422 and "fill_number" in too_many.text
    other = await submit(site)
    found = (await site.get("/api/orders?rx_number=RX4242", "tess")).json()
    assert sorted(o["fill_number"] for o in found) == [0, 1]
    assert other not in [o["id"] for o in found]
    # A misspelt filter never lists everything.
    typo = await site.get("/api/orders?rx_numbr=RX4242", "tess")
    assert typo.status_code == 422 and "rx_numbr" in typo.text


# -- the store's public functions, called directly --------------------------------------------


async def test_no_store_function_moves_an_order_past_filled_without_the_person_and_checks(
        store: Store) -> None:
    # Before: move_order did LABELED → VERIFIED → RELEASED on the transition table alone.
    order_id, fill_id = await filled_order(store)
    for target in (OrderState.LABELED, OrderState.VERIFIED, OrderState.RELEASED,
                   OrderState.CANCELLED):
        with pytest.raises(WorkflowError):
            await store.orders.move_order(order_id, target)
    await store.verification.label_scanned(order_id, fill_code(fill_id), TECH)
    for target in (OrderState.VERIFIED, OrderState.QUEUED, OrderState.CANCELLED):
        with pytest.raises(WorkflowError):
            await store.orders.move_order(order_id, target)
    with pytest.raises(RoleError):
        await store.handwork.cancel_order(order_id, TECH, "changed my mind")
    assert (await store.orders.order(order_id)).state is OrderState.LABELED


async def test_schedule_is_the_orders_own_from_intake_and_the_witness_is_a_second_person(
        tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "rx.sqlite")
    store = await open_store(url)
    try:
        order_id, fill_id = await filled_order(store, 20, OXYCODONE)
        await store.verification.label_scanned(order_id, fill_code(fill_id), TECH)
    finally:
        await store.close()
    # The formulary changes its mind about the drug: the order keeps what it was taken as.
    text = formulary_text().replace(",II,oxyCODONE", ",,oxyCODONE")
    store = await open_store(url, formulary=parse(text))
    try:
        assert (await store.orders.order(order_id)).schedule == "II"
        await store.verification.verify_vial(fill_id, PHARM)
        with pytest.raises(WorkflowError, match="second count witnessed"):
            await store.verification.release_vial(fill_id, PHARM, "pickup")
        # Before: the pharmacist who verified could witness their own check.
        with pytest.raises(WorkflowError, match="two different people"):
            await store.verification.witness_count(fill_id, 20, PHARM)
        await store.verification.witness_count(fill_id, 20, PAM)
        with pytest.raises(WorkflowError, match="witnessed already"):
            await store.verification.witness_count(fill_id, 20, PAM)
        assert await store.verification.release_vial(fill_id, PHARM,
                                                     "pickup") is OrderState.RELEASED
    finally:
        await store.close()


async def test_a_rejected_or_superseded_vial_is_never_acted_on_through_the_store(
        store: Store) -> None:
    order_id, old = await filled_order(store)
    await store.verification.label_scanned(order_id, fill_code(old), TECH)
    await store.verification.reject_vial(old, PHARM, "wrong cap", fill_again=True,
                                         tablets="returned")
    (bin_record,) = await store.stock.bins()
    again = await store.orders.start_fill(order_id, bin_record.id)
    await store.orders.finish_fill(again.id, FillResult(FillOutcome.FILLED, 30, None, None, "ok"))
    for act in (store.verification.verify_vial(old, PAM),
                store.verification.witness_count(old, 30, PAM),
                store.verification.release_vial(old, PAM, "pickup"),
                store.verification.reject_vial(old, PAM, "x", fill_again=False, tablets="wasted")):
        with pytest.raises(NotTheVial, match=f"{fill_code(old)} was rejected"):
            await act
    vial, order = await store.vials.vial(again.id)
    assert (vial.id, order.id) == (again.id, order_id)


async def test_a_prescription_fill_submitted_twice_to_the_store_is_one_order(
        store: Store) -> None:
    from tests.floors import order
    first, new = await store.orders.receive_order(order(ATORVASTATIN, 30, rx="RX777"))
    second, again = await store.orders.receive_order(order(ATORVASTATIN, 30, rx="RX777"))
    assert (new, again, second.id) == (True, False, first.id)
    assert len(await store.orders.orders(rx_number="RX777")) == 1


async def test_the_pharmacy_service_refuses_a_technician_the_evidence(site: Site) -> None:
    _, code = await labelled(site)
    fill_id = await site.pharmacy.vial_for_label(code)
    with pytest.raises(RoleError):
        await site.pharmacy.evidence(fill_id, Person("tom", frozenset({Role.TECHNICIAN})))


def formulary_text() -> str:
    from tests.helpers import FORMULARY
    return FORMULARY.read_text(encoding="utf-8")


def parse(text: str) -> Formulary:
    from controller.domain.drugs import parse_formulary
    assert parse_formulary(text) != formulary()
    return parse_formulary(text)


@given(st.text(max_size=24))
def test_no_scanned_text_names_a_vial_but_its_own_label(scanned: str) -> None:
    # Whatever a scanner (or a person) types, it names one vial, by its exact label, or none.
    from controller.store.verification import parse_fill_code
    try:
        fill_id = parse_fill_code(scanned)
    except WorkflowError:
        return
    text = scanned.strip()
    digits = text[1:]
    # Only F and ASCII digits name a vial (no other script's digits, nothing else around).
    assert text[0] == "F" and digits.isascii() and digits.isdigit() and int(digits) == fill_id
