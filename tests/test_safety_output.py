"""Issue 11, item 6: the robot's output is emptied by a person, as both ICDs say.

The supervisor no longer says ``DN`` / ``OUTPUT_TAKEN`` by itself once a fill is recorded (which
defeated the bay interlock): the robot holds its output and takes no new job until the
technician scans the vial's label at it, or records it taken; after ``[alarms]
output_waiting_s`` an ``output_waiting`` alarm is raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from controller.domain.alarms import AlarmState, AlarmType
from controller.domain.orders import OrderState
from controller.robots.simulated import Simulator, start_simulators
from controller.robots.supervisor import Supervisor
from controller.store import Store, fill_code
from simulators.tablet_counter.server import CounterSimulator
from simulators.vial_filler.server import FillerSimulator
from tests.floors import ATORVASTATIN, order, write_config
from tests.helpers import eventually
from tests.sites import Site, order_body, running_site
from tests.test_api import submit


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with running_site(tmp_path) as running:
        yield running


async def test_a_counters_tablets_wait_in_the_chute_until_their_label_is_scanned_at_it(
        site: Site) -> None:
    # Before: the supervisor sent DN itself as soon as the fill was recorded.
    first = await submit(site, order_body(ATORVASTATIN, 30))
    await site.wait_state(first, "filled")
    second = await submit(site, order_body(ATORVASTATIN, 20))
    sup = site.pharmacy.supervisor
    worker = sup.robots["tc1"]
    await eventually(lambda: worker.output is not None)
    sim = site.simulators["tc1"]
    assert isinstance(sim, CounterSimulator)
    assert sim.device.chute is not None  # no DN: the tablets are still there
    robots = {r["id"]: r for r in (await site.get("/api/robots", "tess")).json()}
    assert robots["tc1"]["state"] == "output_waiting"
    code = robots["tc1"]["output"]["label"]
    assert robots["tc1"]["output"]["order"] == first and robots["tc1"]["output"]["complete"]
    await asyncio.sleep(0.3)  # the robot takes no new job meanwhile
    assert (await site.get(f"/api/orders/{second}", "tess")).json()["state"] == "queued"
    scanned = await site.post(f"/api/orders/{first}/label/scan", "tess", {"scanned": code})
    assert scanned.status_code == 200 and scanned.json()["state"] == "labeled"
    await site.wait_state(second, "filled")
    trail = [(e.who, e.action, e.subject, (e.after or {}).get("via"))
             for e in await site.pharmacy.store.audit.audit_trail()]
    assert ("tess", "output taken", "robot:tc1", "label scanned at the robot") in trail


async def test_a_person_records_a_vial_taken_and_the_filler_hears_it_then(
        tmp_path: Path, store: Store) -> None:
    settings = write_config(tmp_path, [
        {"id": "fv1", "kind": "vial-filler", "url": "sim:tcp", "seed": 3, "ndc": ATORVASTATIN,
         "on_hand": 400}], extra="[alarms]\noutput_waiting_s = 0.5\n")
    sims = await start_simulators(settings)
    filler = sims["fv1"]
    assert isinstance(filler, FillerSimulator)
    try:
        async with Supervisor(settings, store,
                              urls={r: s.url for r, s in sims.items()}) as sup:
            one = await sup.submit(order(ATORVASTATIN, 30))
            two = await sup.submit(order(ATORVASTATIN, 30))
            async with asyncio.timeout(20):
                await sup.wait_settled([one.id])
            worker = sup.robots["fv1"]
            await eventually(lambda: worker.output is not None)
            assert filler.device.vial_in_bay and worker.state == "output_waiting"
            # Past [alarms] output_waiting_s, the alarm, without patient data.
            async with asyncio.timeout(10):
                while not [a for a in await store.alarms.alarms()
                           if a.type is AlarmType.OUTPUT_WAITING]:
                    sup.watch.poke()
                    await asyncio.sleep(0.1)
            (alarm,) = [a for a in await store.alarms.alarms()
                        if a.type is AlarmType.OUTPUT_WAITING]
            assert alarm.id == "output-waiting-fv1"
            assert fill_code((await store.orders.fills(one.id))[0].id) in alarm.text("message")
            assert (await store.orders.order(two.id)).state is OrderState.QUEUED
            with pytest.raises(ValueError, match="not fill 99"):
                await sup.take_output("fv1", "tess", fill_id=99)
            assert filler.device.vial_in_bay
            await sup.take_output("fv1", "tess")
            assert not filler.device.vial_in_bay
            async with asyncio.timeout(20):
                (second,) = await sup.wait_settled([two.id])
            assert second.state is OrderState.FILLED
            async with asyncio.timeout(10):
                while [a for a in await store.alarms.alarms() if a.type is AlarmType.OUTPUT_WAITING
                       and a.state is not AlarmState.UNACK_RTN]:
                    sup.watch.poke()
                    await asyncio.sleep(0.1)
    finally:
        for sim in sims.values():
            await sim.close()


async def test_a_restarted_supervisor_leaves_a_waiting_output_for_the_person(
        tmp_path: Path, store: Store) -> None:
    # Before: a restart found the recorded vial in the bay and released it by itself.
    settings = write_config(tmp_path, [
        {"id": "tc1", "url": "sim:tcp", "seed": 3, "ndc": ATORVASTATIN, "on_hand": 400}])
    sims: dict[str, Simulator] = await start_simulators(settings)
    counter = sims["tc1"]
    assert isinstance(counter, CounterSimulator)
    try:
        sup = Supervisor(settings, store, urls={r: s.url for r, s in sims.items()})
        async with sup:
            record = await sup.submit(order(ATORVASTATIN, 30))
            async with asyncio.timeout(20):
                await sup.wait_settled([record.id])
            await eventually(lambda: sup.robots["tc1"].output is not None)
        async with Supervisor(settings, store,
                              urls={r: s.url for r, s in sims.items()}) as again:
            await eventually(lambda: again.robots["tc1"].output is not None)
            assert counter.device.chute is not None
            output = again.robots["tc1"].output
            assert output is not None and output.order_id == record.id
            await again.clear("tc1", "tess")  # clearing a robot takes its output too
            assert again.robots["tc1"].output is None and counter.device.chute is None
        (cleared,) = [e for e in await store.audit.audit_trail() if e.action == "robot cleared"]
        assert (cleared.who, cleared.subject) == ("tess", "robot:tc1")
        assert cleared.after is not None and cleared.after["output_taken"] == {
            "fill": output.fill_id, "order": record.id}
    finally:
        for sim in sims.values():
            await sim.close()


async def test_only_a_technician_or_maintenance_records_an_output_taken(site: Site) -> None:
    order_id = await submit(site, order_body(ATORVASTATIN, 30))
    await site.wait_state(order_id, "filled")
    await eventually(lambda: site.pharmacy.supervisor.robots["tc1"].output is not None)
    refused = await site.post("/api/robots/tc1/take", "phil")
    assert refused.status_code == 403
    empty = await site.post("/api/robots/tc2/take", "tess")
    assert empty.status_code == 409 and "nothing to take" in empty.text
    taken = await site.post("/api/robots/tc1/take", "tess")
    assert taken.status_code == 200 and taken.json()["output"] is None
