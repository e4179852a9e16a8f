"""How a guided calibration converges in the simulator from bad starting values, written to
docs/convergence.txt (``python docs/convergence.py``).

A simulated counter's channel whose ideal settings are sensitivity 55 and gate 40 ms (the demo's
tc1/1, atorvastatin: 155 mg ± 1.8 %) is calibrated from each start, ten times with another
seed, through the driver over a real socket (time scale 200). The count's error is measured
before and after as a 300-tablet count's distance from the tablets that truly fell.
"""

from __future__ import annotations

import asyncio
import statistics
from pathlib import Path

from controller.domain.tuning import Plan, Setting
from controller.robots.simulated import SimulatedHands
from controller.robots.tuning import tune_channel
from drivers.base import Calibration, JobEnded
from drivers.tablet_counter.driver import SerialTabletCounter
from simulators.sensor import Tuning
from simulators.tablet_counter.parts import SimChannel
from simulators.tablet_counter.server import CounterSimulator

STARTS = [(25, 90), (90, 15), (30, 40), (80, 40), (55, 90), (55, 12), (85, 90), (55, 40)]
SEEDS = range(10)
UNIT = 155.0


async def _error_pct(sim: CounterSimulator, tc: SerialTabletCounter, setting: Setting,
                     job: str) -> float:
    assert setting.gate_ms is not None
    await tc.write_calibration(1, Calibration(setting.sensitivity, setting.gate_ms))
    events = tc.events()
    await tc.count(job, 1, 300)
    async for event in events:
        if isinstance(event, JobEnded):
            break
    truly = sim.device.jobs[job].tablets
    await SimulatedHands(sim).return_sample(1)
    await tc.take(job)
    return 100.0 * abs(300 - truly) / truly


async def once(start: tuple[int, int], seed: int) -> tuple[int, bool, float, float]:
    """Runs taken, whether it proposed, and the error before and after (percent)."""
    channel = SimChannel(1, stock=2000, sensitivity=start[0], gate_ms=start[1],
                         unit_mass_mg=UNIT, spread_pct=1.8, ideal=Tuning(55, 40))
    sim = CounterSimulator(channels=[channel], seed=seed, time_scale=200)
    await sim.listen_tcp()
    async with sim, SerialTabletCounter(name="tc1", url=sim.url) as tc:
        before = await _error_pct(sim, tc, Setting(*start), "B")
        tuned = await tune_channel(tc, channel=1, unit_mass_mg=UNIT, unit_volume_mm3=128,
                                   plan=Plan(), hands=SimulatedHands(sim),
                                   say=lambda run, n: None)
        assert tuned.decision is not None
        proposal = tuned.decision.proposal
        after = await _error_pct(sim, tc, proposal, "A") if proposal else float("nan")
    return len(tuned.runs), proposal is not None, before, after


async def main() -> str:
    lines = ["start (sens, gate)  runs: median  max  proposed  error before  error after",
             "------------------  ------------------------  ------------  -----------"]
    for start in STARTS:
        results = [await once(start, seed) for seed in SEEDS]
        runs = [r[0] for r in results]
        proposed = [r for r in results if r[1]]
        after = statistics.mean(r[3] for r in proposed) if proposed else float("nan")
        lines.append(f"{start[0]:>4}, {start[1]:>3} ms       {statistics.median(runs):>6.1f}  "
                     f"{max(runs):>3}  {len(proposed):>4}/{len(results)}  "
                     f"{statistics.mean(r[2] for r in results):>10.1f} %  {after:>9.2f} %")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    table = asyncio.run(main())
    (Path(__file__).parent / "convergence.txt").write_text(table, encoding="utf-8")
    print(table, end="")
