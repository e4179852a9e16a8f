"""What taking an order costs, against a bare FastAPI endpoint that parses the same body.

Both servers run uvicorn on loopback in this process and receive the same
valid orders from one httpx client, in alternating rounds: the bare one
validates the body with the same pydantic model and answers 201; ours also
checks the token, the prescription rules against the formulary, stores the
order durably in a real SQLite file (synchronous=FULL: three commits, for
RECEIVED, QUEUED and the audit trail with them) and routes it to a robot's
queue (the robots are not started, so nothing is filled). The result is the
ratio of their median times per order.

    make bench
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from bench.table import Figure, table
from controller.api.bodies import OrderIn
from controller.cli.common import DEMO_CONFIG
from controller.config import load_config
from controller.domain.roles import Person, Role
from controller.logs import configure_logging
from controller.pharmacy.service import Pharmacy
from controller.robots.floor import bin_specs
from controller.robots.supervisor import Supervisor
from controller.site import api_server, serve_app
from controller.store import Store, sqlite_url

ROUNDS = 5
ORDERS = 100
PASSWORD = "bench password 1234"


def body(n: int) -> dict[str, Any]:
    return {
        "rx_number": f"RX{n:07d}",
        "patient": {"id": f"P-{n}", "name": "Bench Patient", "birth_date": "1970-01-01"},
        "ndc": "00093-7146-01", "quantity": 1, "sig": "Take 1 tablet by mouth daily.",
        "prescriber": {"name": "Grace Baker, MD", "npi": "1234567893"},
    }


def bare_app() -> FastAPI:
    app = FastAPI()

    @app.post("/api/orders", status_code=201)
    async def take(order: OrderIn) -> dict[str, Any]:
        return {"rx_number": order.rx_number, "state": "received"}

    return app


async def post_all(client: httpx.AsyncClient, start: int, headers: dict[str, str],
                   orders: int = ORDERS) -> float:
    began = time.perf_counter()
    for n in range(start, start + orders):
        reply = await client.post("/api/orders", json=body(n), headers=headers)
        if reply.status_code != 201:
            raise RuntimeError(reply.text)
    return (time.perf_counter() - began) / orders


async def figures(quick: bool = False) -> list[Figure]:
    """The API's row: orders taken through POST /api/orders against a bare FastAPI app."""
    rounds, orders = (2, 20) if quick else (ROUNDS, ORDERS)
    configure_logging("warning", "console")
    settings = load_config(DEMO_CONFIG)
    with tempfile.TemporaryDirectory() as scratch:
        store = await Store.open(sqlite_url(Path(scratch) / "bench.sqlite"),
                                 formulary=settings.formulary)
        await store.stock.ensure_bins(bin_specs(settings))
        await store.people.add_user("bench", frozenset({Role.TECHNICIAN}), PASSWORD,
                                    by=Person("al", frozenset({Role.ADMIN})))
        urls = {r.id: "socket://127.0.0.1:9" if r.kind == "tablet-counter"
                else "modbus-tcp://127.0.0.1:9" for r in settings.config.robots}
        supervisor = Supervisor(settings, store, urls=urls)  # never started: nothing fills
        pharmacy = Pharmacy(settings, store, supervisor)
        ours_times, bare_times = [], []
        async with api_server(pharmacy, "127.0.0.1", 0) as url, \
                serve_app(bare_app(), "127.0.0.1", 0) as bare_url, \
                httpx.AsyncClient(base_url=url) as ours, \
                httpx.AsyncClient(base_url=bare_url) as plain:
            token = (await ours.post("/api/sign-in", json={"name": "bench",
                                                           "password": PASSWORD})).json()
            headers = {"Authorization": f"Bearer {token['token']}"}
            await post_all(plain, 0, {}, orders)  # warm both up
            await post_all(ours, 0, headers, orders)
            for r in range(1, rounds + 1):
                bare_times.append(await post_all(plain, r * ORDERS, {}, orders))
                ours_times.append(await post_all(ours, r * ORDERS, headers, orders))
        await store.close()
    b, o = statistics.median(bare_times), statistics.median(ours_times)
    return [Figure("api: orders/s through POST /api/orders ÷ a bare FastAPI app", b / o, "",
                   ours=f"{1 / o:,.0f}/s stored", baseline=f"{1 / b:,.0f}/s bare")]


if __name__ == "__main__":
    print(table(asyncio.run(figures())))
