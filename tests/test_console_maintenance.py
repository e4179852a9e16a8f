"""The console's Maintenance section at a running site: a robot's wire, live, and its bins'
calibrations with the guided runs drawn, for maintenance staff only."""

from __future__ import annotations

import json
from pathlib import Path

from tests.console_client import visitor
from tests.helpers import maint
from tests.sites import running_site

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
