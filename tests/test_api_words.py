"""Bad input to the API gets words and a 4xx, never a 500: ids, label codes, big or broken
bodies, control characters; and schemathesis, from the OpenAPI, finds no 500."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.sites import Site, medication_request, order_body, running_site

TOO_BIG = 2**63  # one past the largest 64-bit id


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with running_site(tmp_path) as running:
        yield running


async def test_an_id_outside_the_store_range_is_refused_in_words(site: Site) -> None:
    for bad in (TOO_BIG, 0, -1, 10**30):
        for method, path in [("GET", f"/api/orders/{bad}"),
                             ("POST", f"/api/orders/{bad}/cancel"),
                             ("POST", f"/api/orders/{bad}/retry"),
                             ("POST", f"/api/orders/{bad}/hand-count"),
                             ("POST", f"/api/orders/{bad}/label/print"),
                             ("POST", f"/api/orders/{bad}/label/scan"),
                             ("GET", f"/api/orders/{bad}/label.png"),
                             ("GET", f"/api/orders/{bad}/evidence"),
                             ("GET", f"/fhir/MedicationDispense/{bad}")]:
            who = "phil" if "evidence" in path else "tess"
            reply = await site.client.request(method, path, headers=site.auth(who), json={})
            assert reply.status_code in (404, 422), (path, reply.status_code, reply.text)
            if reply.status_code == 422:
                assert any(d["loc"][:1] == ["path"] for d in reply.json()["detail"]), reply.text


async def test_a_label_code_is_f_and_exactly_8_digits(site: Site) -> None:
    for bad in ("F123", "F000000001", "F0000000x", "G00000001", "f00000001",
                "F" + "9" * 30):
        reply = await site.get(f"/api/labels/{bad}", "phil")
        assert reply.status_code == 422, (bad, reply.text)
        assert "expected F and 8 digits" in reply.json()["detail"]
        assert (await site.get(f"/api/labels/{bad}", "tess")).status_code == 403  # role first
    reply = await site.get("/api/labels/F99999999", "phil")
    assert reply.status_code == 404 or reply.status_code == 409, reply.text


async def test_a_body_over_1_mib_is_413_before_it_is_read(site: Site) -> None:
    big = b'{"rx_number": "' + b"x" * (1024 * 1024) + b'"}'
    reply = await site.client.post("/api/orders", content=big, headers={
        **site.auth("tess"), "Content-Type": "application/json"})
    assert reply.status_code == 413 and "1 MiB" in reply.json()["detail"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: refused as it streams
        for _ in range(40):
            yield b" " * 65536

    reply = await site.client.post("/fhir/MedicationRequest", content=chunks(), headers={
        **site.auth("tess"), "Content-Type": "application/fhir+json"})
    assert reply.status_code == 413
    assert (await site.get("/api/orders", "tess")).json() == []


@pytest.mark.parametrize("raw", [b"{not json", b'{"a": 1', b"\xff\xfe", b"[1, 2,]"])
async def test_a_body_that_is_not_json_is_400_on_every_route(site: Site, raw: bytes) -> None:
    for path in ("/api/orders", "/fhir/MedicationRequest", "/api/orders/1/cancel",
                 "/api/sign-in"):
        reply = await site.client.post(path, content=raw, headers={
            **site.auth("tess"), "Content-Type": "application/json"})
        assert reply.status_code == 400, (path, raw, reply.text)
        assert "expected a JSON object in UTF-8" in reply.json()["detail"]


async def test_an_empty_body_is_a_missing_one_on_every_route(site: Site) -> None:
    for path in ("/api/orders", "/fhir/MedicationRequest"):
        reply = await site.client.post(path, content=b"", headers={
            **site.auth("tess"), "Content-Type": "application/json"})
        assert reply.status_code == 422, (path, reply.text)
        assert "is missing" in reply.text


async def test_an_unknown_label_preview_kind_is_404(site: Site) -> None:
    reply = await site.get("/api/orders/1/label.gif", "tess")
    assert reply.status_code == 404
    assert "label.zpl, label.png or label.pdf" in reply.json()["detail"]


@pytest.mark.parametrize("bad", ["\u0085", "\u009b", "\u2028", "\u2029", "\u202e", "\x7f",
                                 "\t", "\x00"])
async def test_text_with_any_control_character_is_refused_through_every_door(
    site: Site, bad: str,
) -> None:
    name = f"Barnaby{bad}Quixley"
    reply = await site.post("/api/orders", "tess", order_body(
        patient={"id": "P-1", "name": name, "birth_date": "1961-03-14"}))
    assert reply.status_code == 422, reply.text
    assert "patient.name" in {d["field"] for d in reply.json()["detail"]}
    fhir = medication_request()
    fhir["contained"][0]["name"] = [{"text": name}]
    reply = await site.client.post("/fhir/MedicationRequest", json=fhir, headers={
        **site.auth("tess"), "Content-Type": "application/fhir+json"})
    assert reply.status_code == 422, reply.text
    assert "patient.name" in {d["field"] for d in reply.json()["detail"]}
    assert (await site.get("/api/orders", "tess")).json() == []
    reply = await site.post("/api/orders/1/cancel", "tess", {"reason": f"wrong{bad}drug"})
    assert reply.status_code == 422, reply.text


async def test_the_status_says_what_keeps_failing(site: Site) -> None:
    reply = await site.get("/api/status", "tess")
    assert reply.status_code == 200, reply.text
    status: dict[str, Any] = reply.json()
    assert status["robots"] == {"tc1": "online", "tc2": "online", "tc3": "online"}
    assert status["mqtt"] == "off" and status["alarm_checks"] == "ok"


async def test_schemathesis_finds_no_500_in_the_openapi(site: Site) -> None:
    token = site.tokens["tess"]
    failures: list[str] = []
    calls: list[int] = []

    def run() -> None:  # in a thread: schemathesis is synchronous, the site runs in this loop
        schema = schemathesis.openapi.from_url(f"{site.url}/openapi.json")
        for operation in schema.get_all_operations():
            op = operation.ok()  # type: ignore[union-attr]  # our own schema: it is valid

            @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck),
                      database=None)
            @given(case=op.as_strategy())
            def check(case: Any) -> None:
                reply = case.call(headers={"Authorization": f"Bearer {token}"}, timeout=30)
                calls.append(reply.status_code)
                if reply.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path}: "
                                    f"{reply.status_code} {reply.text[:200]}")

            check()

    await asyncio.to_thread(run)
    assert failures == []
    assert len(calls) > 200 and {200, 422} <= set(calls)  # it did try, and got past the door
    async with httpx.AsyncClient(base_url=site.url) as client:
        assert (await client.get("/openapi.json")).status_code == 200
