"""Crash safety: ``rxfill run`` killed with SIGKILL again and again through a batch of fills.

The robots' simulators live in this test's process, as real robots outlive a
supervisor that dies: a job sent before the kill goes on without it. After
every restart the supervisor must reconcile with the robots before sending
anything. At the end: no order lost, no vial filled twice, every bin's
records equal to what is physically in it (the simulator's count) and to the
sum of its movements, and the audit chain intact.
"""

from __future__ import annotations

import asyncio
import random
import re
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller.domain.orders import FillOutcome
from controller.domain.roles import Role
from controller.robots.simulated import Simulator, start_simulators
from controller.store import sqlite_url
from tests.floors import ATORVASTATIN, LISINOPRIL, write_config
from tests.helpers import admin, open_store
from tests.sites import PASSWORD, order_body, rxfill_run

ROBOTS: list[dict[str, object]] = [
    {"id": "tc1", "url": "sim:tcp", "seed": 31, "ndc": ATORVASTATIN, "on_hand": 800},
    {"id": "fv1", "url": "sim:tcp", "seed": 32, "ndc": LISINOPRIL, "on_hand": 800,
     "kind": "vial-filler", "time_scale": 5},
]
SITE = '[mqtt]\nbroker = "off"\n[printer]\nurl = "sim:tcp"\n[api]\nport = 0\n'


async def token(client: httpx.AsyncClient) -> dict[str, str]:
    reply = await client.post("/api/sign-in", json={"name": "tess", "password": PASSWORD})
    reply.raise_for_status()
    return {"Authorization": f"Bearer {reply.json()['token']}"}


async def technician(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """What the technician does: takes each vial or chute's tablets waiting in a robot's
    output; after a restart, a vial filler whose heartbeat stopped with the supervisor went
    to SAFE (as its ICD says) and is cleared; an order that went to exception meanwhile is
    sent to the robots again."""
    for robot in (await client.get("/api/robots", headers=headers)).json():
        if robot["attention"]:
            reply = await client.post(f"/api/robots/{robot['id']}/clear", headers=headers)
            assert reply.status_code in (200, 409), reply.text  # 409: cleared meanwhile
        elif robot["output"]:
            reply = await client.post(f"/api/robots/{robot['id']}/take", headers=headers)
            assert reply.status_code in (200, 409, 503), reply.text  # taken meanwhile
    for order in (await client.get("/api/orders?state=exception", headers=headers)).json():
        reply = await client.post(f"/api/orders/{order['id']}/retry", json={},
                                  headers=headers)
        assert reply.status_code in (200, 409), reply.text


@pytest.mark.timeout(240)
def _at_the_simulators(site: Path, sims: dict[str, Simulator], out: Path) -> Path:
    """The same site, with the robots at the simulators' addresses (they are not ours).

    The robots' clocks run 5 times fast, the filler's heartbeat watchdog too (5 s of machine
    time): a real filler's supervisor beats every second, this one faster. The counter runs
    slower than other tests' so that kills land in the middle of fills."""
    text = site.read_text()
    for robot, sim in sims.items():
        text = re.sub(rf'(id = "{robot}"\nkind = "[a-z-]+"\nurl = )"sim:tcp"',
                      rf'\1"{sim.url}"', text)
        assert sim.url in text, robot
    text = text.replace('name = "modbus-filler", parity = "N"',
                        'name = "modbus-filler", parity = "N", heartbeat_s = 0.1')
    out.write_text(text.replace("time_scale = 50", "time_scale = 5"))
    return out


async def _nothing_lost_nothing_twice(store_file: Path, sims: dict[str, Simulator],
                                      taken: list[int], orders: list[dict[str, Any]]) -> None:
    """Every order the API took is there, filled once with what was asked; every bin's
    records, movements and the robot's own stock agree; the audit chain holds."""
    store = await open_store(sqlite_url(store_file))
    try:
        assert sorted(o["id"] for o in orders) == sorted(taken)
        assert [o["state"] for o in orders] == ["filled"] * len(taken), orders
        for order_id in taken:
            filled = [f for f in await store.orders.fills(order_id)
                      if f.outcome is FillOutcome.FILLED]
            assert len(filled) == 1, (order_id, filled)
            assert filled[0].counted == (await store.orders.order(order_id)).quantity
        for b in await store.stock.bins():
            assert b.on_hand == sum(m.quantity for m in await store.stock.movements(b.id))
            sim = sims[b.robot]
            physical = (sim.device.channels[b.bin].stock if hasattr(sim.device, "channels")
                        else sim.device.cells[b.bin].stock)
            assert b.on_hand == physical, (b.robot, b.bin, b.on_hand, physical)
        assert await store.audit.verify_audit() == []
    finally:
        await store.close()


async def test_sigkill_at_many_points_loses_nothing_and_fills_nothing_twice(
        tmp_path: Path) -> None:
    settings = write_config(tmp_path, ROBOTS, extra=SITE,
                            site_extra='pharmacist = "Pat Lee, RPh"')
    sims = await start_simulators(settings)
    try:
        config = _at_the_simulators(settings.path, sims, tmp_path / "site.toml")
        store_file, log = tmp_path / "site.sqlite", tmp_path / "supervisor.log"
        store = await open_store(sqlite_url(store_file))
        await store.people.add_user("tess", frozenset({Role.TECHNICIAN}), PASSWORD, by=admin())
        await store.close()

        rng = random.Random(5)
        taken: list[int] = []
        # Quantities the scale can check (above ~80 it asks for a count by hand).
        batches = [[(ATORVASTATIN, 50), (LISINOPRIL, 40), (ATORVASTATIN, 60)],
                   [(LISINOPRIL, 50), (ATORVASTATIN, 45), (LISINOPRIL, 35)],
                   [(ATORVASTATIN, 55), (LISINOPRIL, 50)], [], [(ATORVASTATIN, 40)], [], []]
        for batch in batches:
            async with rxfill_run(config, store_file, log) as (process, url), \
                    httpx.AsyncClient(base_url=url, timeout=10) as client:
                headers = await token(client)
                await asyncio.sleep(0.3)  # the robots report in
                await technician(client, headers)
                for ndc, quantity in batch:
                    body = order_body(ndc, quantity, rx_number=f"RX{len(taken) + 1:07d}")
                    reply = await client.post("/api/orders", json=body, headers=headers)
                    assert reply.status_code == 201, reply.text
                    taken.append(reply.json()["id"])
                at = asyncio.get_running_loop().time() + rng.uniform(0.2, 1.5)
                while asyncio.get_running_loop().time() < at:  # the technician goes round
                    await technician(client, headers)
                    await asyncio.sleep(0.1)
                process.send_signal(signal.SIGKILL)

        # A last start, to the end of the batch, stopped cleanly.
        async with rxfill_run(config, store_file, log) as (process, url), \
                httpx.AsyncClient(base_url=url, timeout=10) as client:
            headers = await token(client)
            orders: list[dict[str, Any]] = []
            async with asyncio.timeout(60):
                while True:
                    await technician(client, headers)
                    orders = (await client.get("/api/orders", headers=headers)).json()
                    if all(o["state"] == "filled" for o in orders):
                        break
                    await asyncio.sleep(0.3)
            process.send_signal(signal.SIGTERM)
            assert await process.wait() == 0

        await _nothing_lost_nothing_twice(store_file, sims, taken, orders)
        lines = log.read_text().splitlines()
        reconciled = sum(1 for line in lines if "fill reconciled" in line
                         or "fill resumed" in line)
        print(f"{len(batches)} kills; {reconciled} fill(s) open at a kill, reconciled with "
              f"their robot after the restart")
        assert reconciled >= 2, "the kills all fell between fills: the test proved little"
    finally:
        for sim in sims.values():
            await sim.close()
