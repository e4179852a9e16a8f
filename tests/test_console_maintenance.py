"""The console's Maintenance section at a running site: a robot's wire, live, and its bins'
calibrations with the guided runs drawn, for maintenance staff only."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from drivers.trace import Frame
from simulators.tablet_counter.server import CounterSimulator
from tests.console_client import visitor
from tests.floors import ATORVASTATIN
from tests.helpers import eventually, maint
from tests.sites import order_body, running_site

RUNS = [{"sensitivity": 30, "gate_ms": 80, "counted": 100, "weight_mg": 18600, "weighed": 120,
         "error": -20}] + [{"sensitivity": 52, "gate_ms": 41, "counted": 100,
                            "weight_mg": 15500, "weighed": 100, "error": 0}] * 3


async def test_maintenance_sees_a_robots_wire_live_and_its_calibrations(
        tmp_path: Path) -> None:
    async with running_site(tmp_path) as site, visitor(site) as max_, visitor(site) as tess:
        store = site.pharmacy.store
        await store.calibration.record_guided("tc1", 1, RUNS, {"sensitivity": 52, "gate_ms": 41},
                                              "", by=maint())
        await max_.sign_in("max")
        page = await max_.client.get("/maintenance?robot=tc1")
        assert page.status_code == 200
        assert 'href="/maintenance"' in page.text and "Wire, live" in page.text
        assert "Guided calibration 1" in page.text and "<polyline" in page.text
        assert "Count error per run, in percent: -16.7, +0.0, +0.0, +0.0" in page.text
        assert "rxfill calibrate accept tc1/1 1" in page.text
        assert "Never calibrated here (rxfill calibrate scale tc1)" in page.text
        missing = await max_.client.get("/maintenance?robot=zz")
        assert missing.status_code == 404 and "no robot &#39;zz&#39;" in missing.text
        lines: list[str] = []
        async with max_.client.stream("GET", "/maintenance/tc1/trace") as stream:
            assert stream.status_code == 200
            async for line in stream.aiter_lines():
                if line.startswith("data: ") and "tc1" in line:
                    lines.append(json.loads(line.removeprefix("data: ")))
                if len(lines) >= 2:
                    break
        assert any("tc1      → >" in line and " ST*" in line for line in lines)  # its poll
        await tess.sign_in("tess")
        assert 'href="/maintenance"' not in (await tess.client.get("/")).text
        refused = await tess.client.get("/maintenance")
        assert refused.status_code == 403 and "needs the maintenance role" in refused.text
        assert (await tess.client.get("/maintenance/tc1/trace")).status_code == 403
        assert (await tess.client.get("/fragments/guided?robot=tc1")).status_code == 403


async def test_a_guided_calibration_runs_on_the_sites_link_and_is_accepted_there(
        tmp_path: Path) -> None:
    async with running_site(tmp_path) as site, visitor(site) as max_:
        maintenance = site.pharmacy.maintenance
        await max_.sign_in("max")
        await max_.post("/maintenance/tc1/guided", bin="1", from_sensitivity="25",
                        from_gate_ms="90")
        (said,) = await max_.said("/maintenance?robot=tc1")
        assert said == "Refused: tc1 is in service: take it out of service first (it takes " \
            "no fill while it is calibrated)"
        await max_.post("/robots/tc1/service", in_service="no", reason="calibration")
        assert "tc1" in await site.pharmacy.store.alarms.out_of_service()
        await site.pharmacy.store.calibration.record_scale_check(
            "tc1", False, {"check_mg": 2500, "check_read_mg": 2450}, by=maint())
        await max_.post("/maintenance/tc1/guided", bin="1")
        assert (await max_.said("/maintenance?robot=tc1"))[-1].startswith(
            "Refused: a guided calibration weighs its samples: tc1's scale failed its check")
        await site.pharmacy.store.calibration.record_scale_check(
            "tc1", True, {"check_mg": 2500, "check_read_mg": 2500}, by=maint())
        await max_.post("/maintenance/tc1/guided", bin="1", from_sensitivity="25",
                        from_gate_ms="90", sample="5")
        assert (await max_.said("/maintenance?robot=tc1"))[-1].startswith(
            "Refused: guided calibration: a reference sample is 10-9999 tablets")
        await max_.post("/maintenance/tc1/guided", bin="1", from_sensitivity="25",
                        from_gate_ms="90")
        running = maintenance.running["tc1"]
        await max_.post("/maintenance/tc1/guided", bin="2")
        assert "runs (max): let it end first" in (await max_.said("/maintenance?robot=tc1"))[-1]
        assert running.task is not None
        await running.task
        assert running.error is None and running.made is not None, running.error
        assert running.runs[0].error < -20 and running.made.proposal is not None
        sim = site.simulators["tc1"]
        assert isinstance(sim, CounterSimulator)
        channel = sim.device.channels[1]
        assert (channel.sensitivity, channel.gate_ms) == (50, 40)  # its own, until accepted
        page = (await max_.client.get("/maintenance?robot=tc1")).text
        assert "Proposal ready (guided calibration 1)" in page
        assert "Accept guided calibration 1" in page
        fragment = (await max_.client.get("/fragments/guided?robot=tc1")).text
        assert "Runs so far, count error in percent: " in fragment
        await max_.post("/maintenance/tc1/bins/1/accept/1")
        (said,) = await max_.said("/maintenance?robot=tc1")
        proposal = running.made.proposal
        assert said.startswith(f"tc1/1 calibrated for NDC {ATORVASTATIN}: gate_ms "
                               f"{proposal['gate_ms']}, sensitivity {proposal['sensitivity']}")
        assert (channel.sensitivity, channel.gate_ms) == (proposal["sensitivity"],
                                                          proposal["gate_ms"])
        newest = (await site.pharmacy.store.calibration.calibration_history("tc1", 1))[0]
        assert (newest.source, newest.who) == ("guided", "max")


async def test_at_a_real_robot_each_sample_waits_for_the_person_to_pour_it_back(
        tmp_path: Path) -> None:
    async with running_site(tmp_path) as site, visitor(site) as max_:
        maintenance = site.pharmacy.maintenance
        maintenance.sample_hands = lambda robot: None  # as at a real robot
        sim = site.simulators["tc2"]
        assert isinstance(sim, CounterSimulator)
        await max_.sign_in("max")
        await max_.post("/robots/tc2/service", in_service="no", reason="calibration")
        await max_.post("/maintenance/tc2/guided", bin="1", sample="20")
        running = maintenance.running["tc2"]
        await max_.post("/maintenance/tc2/poured")
        assert (await max_.said("/maintenance?robot=tc2"))[-1] == \
            "Refused: no sample of tc2 waits to be poured back"  # the first run counts still
        for _ in range(3):
            await eventually(lambda: running.waiting)
            assert "Poured back" in (await max_.client.get("/fragments/guided?robot=tc2")).text
            device = sim.device
            assert device.chute is not None
            device.set_stock(1, device.channels[1].stock + device.chute.tablets)  # the person
            await max_.post("/maintenance/tc2/poured")
            await eventually(lambda: not running.waiting)
        assert running.task is not None
        await running.task
        assert running.made is not None and running.made.state == "proposed"
        assert len(running.runs) == 3  # tuned already: three runs agree


async def test_no_fill_starts_on_a_robot_while_it_is_calibrated_even_back_in_service(
        tmp_path: Path) -> None:
    async with running_site(tmp_path) as site, visitor(site) as max_:
        maintenance = site.pharmacy.maintenance
        maintenance.sample_hands = lambda robot: None  # a person pours each sample back
        sim = site.simulators["tc1"]
        assert isinstance(sim, CounterSimulator)
        await max_.sign_in("max")
        await max_.post("/robots/tc1/service", in_service="no", reason="calibration")
        await max_.post("/maintenance/tc1/guided", bin="1", sample="20",
                        from_sensitivity="30")  # trial settings far from the drug's
        running = maintenance.running["tc1"]
        await eventually(lambda: running.waiting)
        await max_.post("/robots/tc1/service", in_service="yes")  # too soon, by mistake
        order = (await site.post("/api/orders", "tess", order_body())).json()
        probes = asyncio.Event()
        heard: list[Frame] = []

        def probe(frame: Frame) -> None:
            heard.append(frame)
            if sum(" ST*" in f.text for f in heard) >= 4:
                probes.set()
        stop = maintenance.tap("tc1", maint()).listen(probe)
        async with asyncio.timeout(30):
            await probes.wait()  # the worker looked at the robot, again and again
        stop()
        assert (await site.get(f"/api/orders/{order['id']}", "tess")).json()["state"] == "queued"
        assert all(job.startswith("CAL") for job in sim.device.started_jobs)
        while not running.over:
            await eventually(lambda: running.waiting or running.over, seconds=30)
            if running.waiting:
                device = sim.device
                assert device.chute is not None
                device.set_stock(1, device.channels[1].stock + device.chute.tablets)
                await max_.post("/maintenance/tc1/poured")
                await eventually(lambda: not running.waiting)
        await site.wait_state(order["id"], "filled")
        assert sim.device.started_jobs[-1] not in {j for j in sim.device.started_jobs[:-1]}
        assert not sim.device.started_jobs[-1].startswith("CAL")  # after the calibration
        assert all(j.startswith("CAL") for j in sim.device.started_jobs[:-1])


async def test_a_stale_proposal_is_refused_before_anything_reaches_the_robot(
        tmp_path: Path) -> None:
    async with running_site(tmp_path) as site, visitor(site) as max_:
        store = site.pharmacy.store
        stale = await store.calibration.record_guided("tc1", 1, RUNS, {"sensitivity": 52,
                                                                       "gate_ms": 41}, "",
                                                      by=maint())
        await store.calibration.record_calibration("tc1", 1, {"sensitivity": 50, "gate_ms": 40},
                                                   by=maint(), reason="by hand, since")
        await max_.sign_in("max")
        await max_.post("/robots/tc1/service", in_service="no", reason="calibration")
        await max_.post(f"/maintenance/tc1/bins/1/accept/{stale.id}")
        said = (await max_.said("/maintenance?robot=tc1"))[-1]
        assert said == (f"Refused: tc1/1 was calibrated again since guided calibration "
                        f"{stale.id} ran: run it again")
        sim = site.simulators["tc1"]
        assert isinstance(sim, CounterSimulator)
        assert (sim.device.channels[1].sensitivity, sim.device.channels[1].gate_ms) == (50, 40)
