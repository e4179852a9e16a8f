"""Record the traces in this folder (``python -m tests.traces.record``): a driver's wire, tapped
as ``rxfill diag trace --file`` taps it, while a simulated counter does what a site saw.

- ``jam-mid-count.jsonl``: 30 tablets asked of channel 1; the channel jams after 12; the host
  asks the job's fate and a person clears the robot.
- ``lost-and-garbled-replies.jsonl``: a reply lost and one garbled on a noisy line; the host
  sends each request again with the same SEQ, and the device answers from memory.
- ``filler-jam.jsonl``: a vial filler (Modbus TCP) asked for 20 tablets of cell 1 jams after
  5; the host reads the job's fate, resets the fault once a person cleared it, and is told
  the vial left the bay.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from drivers.base import JobEnded
from drivers.filler_types import CapType, FillerState
from drivers.tablet_counter.driver import SerialTabletCounter
from drivers.trace import Frame
from drivers.vial_filler.driver import ModbusVialFiller
from simulators.tablet_counter.parts import SimChannel
from simulators.tablet_counter.server import CounterSimulator
from simulators.vial_filler.parts import SimCell
from simulators.vial_filler.server import FillerSimulator

HERE = Path(__file__).parent
JOB = 70001


async def jam_mid_count(tc: SerialTabletCounter, sim: CounterSimulator) -> None:
    sim.device.faults.jam_after = 12
    events = tc.events()
    await tc.count("RX1001", 1, 30)
    async for event in events:
        if isinstance(event, JobEnded):
            break
    await tc.job("RX1001")
    await tc.clear()


async def lost_and_garbled_replies(tc: SerialTabletCounter, sim: CounterSimulator) -> None:
    await tc.status()
    sim.drop_replies(1)
    await tc.read_calibration(2)
    sim.garble_replies(1)
    await tc.weigh()
    await tc.status()


async def filler_jam(fv: ModbusVialFiller, sim: FillerSimulator) -> None:
    sim.device.faults.jam_after = 5
    events = fv.events()
    await fv.start(JOB, 1, 20, 6, CapType.EASY_OPEN)
    async for status in events:
        if status.state is FillerState.FAULT:
            break
    await fv.job(JOB)
    await fv.reset_fault()
    async for status in events:
        if status.last_job == JOB:
            break
    await fv.job(JOB)
    sim.device.take_vial()
    await fv.output_taken()


async def record_filler(name: str) -> None:
    sim = FillerSimulator(cells=[SimCell(1, stock=200, unit_mass_mg=155.0, cal_unit_dmg=1550)],
                          seed=4, time_scale=20)
    await sim.listen_tcp()
    frames: list[Frame] = []
    async with sim:
        fv = ModbusVialFiller(name="fv1", url=sim.url, heartbeat_interval=0.05,
                              poll_interval=0.05)
        fv.trace.listen(frames.append)
        async with fv:
            await filler_jam(fv, sim)
    (HERE / name).write_text("".join(f.to_json() + "\n" for f in frames), encoding="utf-8")


async def record(name: str, scenario: object) -> None:
    sim = CounterSimulator(channels=[SimChannel(n, stock=200, unit_mass_mg=155.0)
                                     for n in (1, 2)], seed=3, time_scale=20)
    await sim.listen_tcp()
    frames: list[Frame] = []
    async with sim:
        tc = SerialTabletCounter(name="tc1", url=sim.url)
        tc.trace.listen(frames.append)
        async with tc:
            await scenario(tc, sim)  # type: ignore[operator]
    (HERE / name).write_text("".join(f.to_json() + "\n" for f in frames), encoding="utf-8")


async def main() -> None:
    await record("jam-mid-count.jsonl", jam_mid_count)
    await record("lost-and-garbled-replies.jsonl", lost_and_garbled_replies)
    await record_filler("filler-jam.jsonl")


if __name__ == "__main__":
    asyncio.run(main())
