"""What a filled vial costs the supervisor's process in CPU, polling included, against the
time the machine takes to fill it.

A site of one vial filler: the supervisor in this process (MQTT off), the filler a simulator in
a process of its own (``rxfill simulate filler`` on TCP, at half speed: a vial of
``QUANTITY`` tablets takes about 20 s, a long fill at a real machine; more tablets would be
more than the weight check can tell apart). The figure: this process's CPU seconds from the
order's submission to its vial filled, ÷ those seconds of wall time, in percent. The short
form runs the machine twice as fast (5 s), its polls at their real rate all the same.

    make bench        (python -m bench.idle_cost for this one alone)
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import date
from pathlib import Path

from bench.apart import simulator
from bench.table import Figure, table
from controller.cli.common import DEMO_CONFIG
from controller.config import load_config
from controller.domain.orders import Order, OrderState, Patient
from controller.logs import configure_logging
from controller.robots.supervisor import Supervisor
from controller.store import Store, sqlite_url

NDC = "00093-7146-01"
QUANTITY = 60
"""Tablets: picking 1.5 s, counting at 8 a second, weighing 0.4 s, capping 1 s: 10.4 s of
machine time, 20.8 s at half speed."""
BEFORE_PCT = 1.36
"""Issue 16's measure of the driver before (5 Hz polls whatever the state)."""

CONFIG = """
formulary = "{formulary}"

[site]
id = "bench"
name = "Bench"
address = "1 Bench Road"
phone = "(217) 555-0100"
pharmacist = "Bench, RPh"

[mqtt]
broker = "off"

[logging]
level = "warning"

[[robots]]
id = "fv1"
kind = "vial-filler"
url = "{url}"
driver = {{ name = "modbus-filler", unit = 1, heartbeat_s = {heartbeat} }}
scale_noise_mg = 1.0

[[robots.channels]]
channel = 1
ndc = "{ndc}"
lot = "AT24190"
expiry = 2099-11-30
on_hand = 500
par = 100
capacity = 600
calibration = {{ sensitivity = 50 }}
"""


async def one_vial(folder: Path, scale: float) -> tuple[float, float]:
    """(CPU seconds, wall seconds) from one order's submission to its vial filled."""
    async with simulator("filler", "--listen", "modbus-tcp://127.0.0.1:0", "--cells", "1",
                         "--drug", f"1={NDC}", "--formulary",
                         str(DEMO_CONFIG.parent / "formulary.csv"), "--time-scale",
                         str(scale)) as url:
        config = folder / f"site-{scale}.toml"
        config.write_text(CONFIG.format(formulary=DEMO_CONFIG.parent / "formulary.csv",
                                        url=url, ndc=NDC, heartbeat=min(1.0, 1.0 / scale)))
        settings = load_config(config)
        store = await Store.open(sqlite_url(folder / f"site-{scale}.sqlite"),
                                 formulary=settings.formulary)
        try:
            async with Supervisor(settings, store) as supervisor:
                order = Order(f"RX{int(scale * 100):07d}", Patient(
                    "P-1", "Bench Patient", date(1970, 1, 1)), NDC, QUANTITY)
                cpu, wall = time.process_time(), time.perf_counter()
                record = await supervisor.submit(order)
                (done,) = await supervisor.wait_settled([record.id])
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                if done.state is not OrderState.FILLED:
                    raise RuntimeError(f"the bench's vial ended {done.state}: {done.reason}")
        finally:
            await store.close()
    return cpu, wall


async def figures(quick: bool = False) -> list[Figure]:
    """The supervisor's CPU a vial."""
    configure_logging("warning", "console")
    with tempfile.TemporaryDirectory() as folder:
        cpu, wall = await one_vial(Path(folder), 2.0 if quick else 0.5)
    pct = 100 * cpu / wall
    return [Figure("supervisor: CPU a filled vial ÷ the machine's time filling it", pct, "%",
                   0.25, at_least=False, ours=f"{cpu * 1e3:.0f} ms CPU over {wall:.1f} s",
                   baseline=f"{BEFORE_PCT} % before (issue 16)")]


if __name__ == "__main__":
    print(table(asyncio.run(figures())))
