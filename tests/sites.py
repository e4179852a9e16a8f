"""A whole site for API tests: simulated robots and label printer, the supervisor, the
pharmacy and its REST API on a real socket, and people to sign in as."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from controller.domain.roles import Role
from controller.pharmacy.service import Pharmacy
from controller.robots.simulated import Simulator
from controller.robots.supervisor import Supervisor
from controller.site import api_server, label_printer, simulated_robots
from controller.store import sqlite_url
from simulators.label_printer.server import PrinterSimulator
from tests.floors import ATORVASTATIN, write_config
from tests.helpers import admin, open_store

OXYCODONE = "00406-0552-01"  # schedule II in the sample formulary
ALPRAZOLAM = "59762-3720-01"  # schedule IV
PASSWORD = "correct horse battery staple"
PEOPLE = {
    "tess": {Role.TECHNICIAN},
    "tom": {Role.TECHNICIAN},
    "phil": {Role.PHARMACIST},
    "pam": {Role.PHARMACIST},
    "bo": {Role.TECHNICIAN, Role.PHARMACIST},
    "al": {Role.ADMIN},
    "max": {Role.MAINTENANCE},
}
SITE_TOML = """
[mqtt]
broker = "off"
[printer]
url = "sim:tcp"
[api]
port = 0
"""
NPI = "1234567893"  # a valid check digit (CMS's example)
DEA = "BB1234563"  # B, the prescriber's initial B, a valid check digit


def robots() -> list[dict[str, object]]:
    """tc1 counts atorvastatin; tc2 oxycodone (C-II) and alprazolam (C-IV)."""
    return [
        {"id": "tc1", "url": "sim:pty", "seed": 1, "ndc": ATORVASTATIN, "on_hand": 600},
        {"id": "tc2", "url": "sim:pty", "seed": 2, "ndc": OXYCODONE, "on_hand": 300},
        {"id": "tc3", "url": "sim:pty", "seed": 3, "ndc": ALPRAZOLAM, "on_hand": 300},
    ]


_RX = itertools.count(8_000_001)


def order_body(ndc: str = ATORVASTATIN, quantity: Any = 30, **changes: Any) -> dict[str, Any]:
    """A valid order, as a prescribing system would post it: a prescription of its own unless
    ``rx_number`` says."""
    body: dict[str, Any] = {
        "rx_number": f"RX{next(_RX)}",
        "patient": {"id": "P-77", "name": "Ada Okafor", "birth_date": "1961-03-14",
                    "address": "4 Elm Street, Springfield, IL 62704"},
        "ndc": ndc, "quantity": quantity,
        "sig": "Take 1 tablet by mouth once daily.",
        "prescriber": {"name": "Grace Baker", "npi": NPI, "dea": DEA},
        "refills": 0, "days_supply": 30, "written": date.today().isoformat(),
    }
    body.update(changes)
    return body


def medication_request(ndc: str = "0093-7146-01", quantity: float = 30) -> dict[str, Any]:
    """A FHIR R4 MedicationRequest as an e-prescribing system sends it (a 10-digit NDC)."""
    return {
        "resourceType": "MedicationRequest",
        "status": "active", "intent": "order", "priority": "urgent",
        "identifier": [{"system": "urn:example:rx", "value": "RX9100001"}],
        "contained": [
            {"resourceType": "Patient", "id": "pat",
             "identifier": [{"value": "P-900"}],
             "name": [{"family": "Nakamura", "given": ["Ren"]}], "birthDate": "1984-09-02",
             "address": [{"line": ["9 Oak Avenue"], "city": "Springfield", "state": "IL",
                          "postalCode": "62704"}]},
            {"resourceType": "Practitioner", "id": "doc",
             "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": NPI},
                            {"system": "urn:oid:2.16.840.1.113883.4.814", "value": DEA}],
             "name": [{"family": "Baker", "given": ["Grace"]}]},
        ],
        "subject": {"reference": "#pat"}, "requester": {"reference": "#doc"},
        "authoredOn": date.today().isoformat(),
        "medicationCodeableConcept": {"coding": [
            {"system": "http://hl7.org/fhir/sid/ndc", "code": ndc}]},
        "dosageInstruction": [{"text": "Take 1 tablet by mouth at bedtime."}],
        "dispenseRequest": {"quantity": {"value": quantity, "unit": "tablet"},
                            "numberOfRepeatsAllowed": 3,
                            "expectedSupplyDuration": {"value": 30, "unit": "days",
                                                       "system": "http://unitsofmeasure.org",
                                                       "code": "d"}},
        "extension": [{"url": "urn:rxfill:fulfilment", "valueCode": "ship"}],
    }


@dataclass
class Site:
    """A running site and a way to speak to its API as each person."""

    url: str
    pharmacy: Pharmacy
    printer: PrinterSimulator
    tokens: dict[str, str]
    client: httpx.AsyncClient
    simulators: dict[str, Simulator]

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    async def post(self, path: str, who: str, body: Any = None) -> httpx.Response:
        return await self.client.post(path, json=body, headers=self.auth(who))

    async def get(self, path: str, who: str) -> httpx.Response:
        return await self.client.get(path, headers=self.auth(who))

    async def wait_state(self, order_id: int, *states: str, who: str = "tess") -> dict[str, Any]:
        """Poll the API until the order is in one of ``states``."""
        for _ in range(600):
            order: dict[str, Any] = (await self.get(f"/api/orders/{order_id}", who)).json()
            if order["state"] in states:
                return order
            await self.pharmacy.supervisor.wait_settled([order_id])
        raise AssertionError(f"order {order_id} stayed {order['state']}")


@asynccontextmanager
async def running_site(tmp_path: Path, *, pharmacist: str | None = "Pat Lee, RPh",
                       idle_minutes: float = 15, on_hand: dict[str, int] | None = None,
                       ) -> AsyncIterator[Site]:
    """Start everything, add the people, sign each in over the API. ``on_hand``: what some
    robots' bins hold instead (par is 50); ``idle_minutes``: the console's idle sign-out."""
    floor = [r | {"on_hand": (on_hand or {}).get(str(r["id"]), r["on_hand"])} for r in robots()]
    settings = write_config(tmp_path, floor, extra=SITE_TOML + f"idle_minutes = {idle_minutes}\n",
                            site_extra=f'pharmacist = "{pharmacist}"' if pharmacist else "")
    store = await open_store(sqlite_url(tmp_path / "site.sqlite"))
    for name, roles in PEOPLE.items():
        await store.people.add_user(name, frozenset(roles), PASSWORD, by=admin())
    try:
        async with (simulated_robots(settings, store) as sims,
                    label_printer(settings) as (printer, simulator)):
            assert simulator is not None
            supervisor = Supervisor(settings, store, urls={r: s.url for r, s in sims.items()})
            pharmacy = Pharmacy(settings, store, supervisor, printer=printer)
            pharmacy.simulated(sims)
            async with (supervisor, api_server(pharmacy, "127.0.0.1", 0) as url,
                        httpx.AsyncClient(base_url=url, timeout=30) as client):
                tokens = {}
                for name in PEOPLE:
                    reply = await client.post("/api/sign-in",
                                              json={"name": name, "password": PASSWORD})
                    assert reply.status_code == 200, reply.text
                    tokens[name] = reply.json()["token"]
                yield Site(url, pharmacy, simulator, tokens, client, sims)
                await pharmacy.close()
    finally:
        await store.close()


RXFILL = str(Path(sys.executable).with_name("rxfill"))


@asynccontextmanager
async def rxfill_run(config: Path, store: Path, log: Path) -> AsyncIterator[
        tuple[asyncio.subprocess.Process, str]]:
    """``rxfill run`` in its own process; (process, API url) once it serves."""
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            RXFILL, "run", "--config", str(config), "--store", str(store),
            stdout=asyncio.subprocess.PIPE, stderr=out,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert process.stdout is not None
    url = None
    async with asyncio.timeout(30):
        while url is None:
            line = (await process.stdout.readline()).decode()
            assert line, f"rxfill run stopped before serving; see {log}"
            if match := re.search(r"api (http://\S+) ", line):
                url = match[1]
    drain = asyncio.create_task(process.stdout.read())
    try:
        yield process, url
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        await drain
