"""A driver's wire, traced: frames (serial) and register exchanges (Modbus) as they happen,
``rxfill diag trace`` writing them, and recorded traces played back against the driver as the
robot that made them (the two in tests/traces/, recorded as tests/traces/record.py says)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from drivers.base import Calibration, JobEnded, JobOutcome, ScaleReading
from drivers.errors import ExceptionReply, ReplyTimeout
from drivers.filler_types import CapType, FillerFault, FillerState, VialEnd
from drivers.tablet_counter.driver import SerialTabletCounter
from drivers.trace import RX, TX, Frame, printable, unprintable
from drivers.vial_filler.driver import ModbusVialFiller
from simulators.modbus_replay import FillerReplay
from simulators.replay import CounterReplay, read_trace
from simulators.tablet_counter.server import CounterSimulator
from simulators.vial_filler.server import FillerSimulator
from tests.test_scales import rxfill_at
from tests.traces.record import JOB

TRACES = Path(__file__).parent / "traces"


def test_a_frame_is_written_and_read_back_as_it_was() -> None:
    raw = b"<0C OK 0 1*0C\r\n\x00\xff"
    assert unprintable(printable(raw)) == raw
    frame = Frame(1796092481.13, "tc1", RX, printable(raw))
    assert Frame.from_json(frame.to_json()) == frame
    assert frame.line().endswith("tc1      ← <0C OK 0 1*0C\\r\\n\\x00\\xff")
    with pytest.raises(ValueError, match="not a trace line"):
        Frame.from_json(json.dumps({"direction": "sideways"}))


async def test_a_counters_frames_are_traced_while_someone_listens(
        counter: CounterSimulator) -> None:
    frames: list[Frame] = []
    async with SerialTabletCounter(name="tc", url=counter.url) as tc:
        stop = tc.trace.listen(frames.append)
        await tc.read_calibration(2)
        stop()
        await tc.status()
    assert [(f.direction, f.text.split(" ", 1)[1]) for f in frames] == [
        (TX, frames[0].text.split(" ", 1)[1]), (RX, "OK 50 40" + frames[1].text[-7:])]
    assert frames[0].text.startswith(">") and " CR 2*" in frames[0].text
    assert frames[1].text.startswith("<") and frames[1].text.endswith("\\r\\n")


async def test_a_fillers_register_reads_and_writes_are_traced(filler: FillerSimulator) -> None:
    frames: list[Frame] = []
    async with ModbusVialFiller(name="fv", url=filler.url, parity="N") as fv:
        stop = fv.trace.listen(frames.append)
        await fv.read_calibration(2)
        await fv.write_calibration(2, await fv.read_calibration(2))
        stop()
    said = [f.text for f in frames]
    assert "read hr:102-103 (unit 1)" in said
    assert "hr:102-103 = 50 2500" in said
    assert "write hr:102-103 = 50 2500 (unit 1)" in said and "hr:102-103: written" in said
    assert [f.direction for f in frames[:2]] == [TX, RX]


async def test_a_fillers_heartbeat_is_traced(filler: FillerSimulator) -> None:
    beats: list[Frame] = []
    written = asyncio.Event()

    def heard(frame: Frame) -> None:
        if "hr:8-8" in frame.text:
            beats.append(frame)
            if len(beats) >= 2:
                written.set()
    async with ModbusVialFiller(name="fv", url=filler.url, parity="N",
                                heartbeat_interval=0.02) as fv:
        fv.trace.listen(heard)
        async with asyncio.timeout(10):
            await written.wait()
    assert beats[0].direction == TX and beats[0].text.startswith("write hr:8-8 = ")
    assert (beats[1].direction, beats[1].text) == (RX, "hr:8-8: written")


async def _ended(tc: SerialTabletCounter, job: str) -> JobEnded:
    events = tc.events()
    await tc.count(job, 1, 30)
    async for event in events:
        if isinstance(event, JobEnded):
            return event
    raise AssertionError("the link closed before the job ended")


async def test_a_jam_recorded_at_a_site_replays_against_the_driver() -> None:
    replay = CounterReplay(read_trace(TRACES / "jam-mid-count.jsonl"))
    await replay.listen_tcp()
    try:
        async with SerialTabletCounter(name="tc1", url=replay.url) as tc:
            ended = await _ended(tc, "RX1001")
            assert (ended.report.outcome, ended.report.count) == (JobOutcome.JAM, 12)
            report = await tc.job("RX1001")
            assert (report.outcome, report.count) == (JobOutcome.JAM, 12)
            assert report.weight_mg > 12 * 150
            await tc.clear()
    finally:
        await replay.close()
    assert replay.mismatches == [] and replay.done


async def test_lost_and_garbled_replies_recorded_at_a_site_are_retried() -> None:
    replay = CounterReplay(read_trace(TRACES / "lost-and-garbled-replies.jsonl"))
    await replay.listen_tcp()
    try:
        async with SerialTabletCounter(name="tc1", url=replay.url) as tc:
            await tc.status()
            assert await tc.read_calibration(2) == Calibration(50, 40)  # after a lost reply
            assert await tc.weigh() == ScaleReading(0, True)  # after a garbled one
            await tc.status()
    finally:
        await replay.close()
    assert replay.mismatches == [] and replay.done


async def test_a_driver_that_strays_from_the_trace_is_caught() -> None:
    replay = CounterReplay(read_trace(TRACES / "jam-mid-count.jsonl"))
    await replay.listen_tcp()
    try:
        async with SerialTabletCounter(name="tc1", url=replay.url, retries=0) as tc:
            with pytest.raises(ReplyTimeout):
                await tc.read_calibration(1)
    finally:
        await replay.close()
    assert replay.mismatches == ["the host sent CR 1; the trace has CT RX1001 1 30 next"]
    assert not replay.done


async def test_a_fillers_jam_recorded_at_a_site_replays_against_the_driver() -> None:
    replay = FillerReplay(read_trace(TRACES / "filler-jam.jsonl"))
    await replay.listen_tcp()
    try:
        async with ModbusVialFiller(name="fv1", url=replay.url, heartbeat_interval=0.05,
                                    poll_interval=0.05) as fv:
            events = fv.events()
            await fv.start(JOB, 1, 20, 6, CapType.EASY_OPEN)
            async for status in events:
                if status.state is FillerState.FAULT:
                    break
            stopped = await fv.job(JOB)
            assert stopped.stopped and stopped.fault is FillerFault.JAM and stopped.count == 5
            await fv.reset_fault()
            async for status in events:
                if status.last_job == JOB:
                    break
            ended = await fv.job(JOB)
            assert (ended.end, ended.count) == (VialEnd.JAM, 5)
            await fv.output_taken()
    finally:
        await replay.close()
    assert replay.mismatches == [] and replay.done


async def test_a_filler_driver_that_strays_from_its_trace_is_caught() -> None:
    replay = FillerReplay(read_trace(TRACES / "filler-jam.jsonl"))
    await replay.listen_tcp()
    try:
        async with ModbusVialFiller(name="fv1", url=replay.url, heartbeat_interval=0.05) as fv:
            with pytest.raises(ExceptionReply, match="exception 4"):
                await fv.start(JOB, 2, 20, 6, CapType.EASY_OPEN)  # cell 2, not 1
    finally:
        await replay.close()
    assert replay.mismatches == [
        "the host wrote hr:0 = [1, 1, 4465, 2, 20, 6, 1, 0, 0]; the trace has write hr:0 = "
        "[1, 1, 4465, 1, 20, 6, 1, 0, 0] next"]


async def test_rxfill_diag_trace_shows_and_writes_a_robots_frames(tmp_path: Path) -> None:
    out = tmp_path / "tc1.jsonl"
    done = await asyncio.to_thread(rxfill_at, tmp_path, "diag", "trace", "tc1", "--seconds",
                                   "0.6", "--interval", "0.2", "--file", str(out))
    assert done.returncode == 0, done.stderr
    shown = done.stdout.splitlines()
    assert any("tc1      → >" in line and " ST*" in line for line in shown)
    assert any("tc1      ← <" in line and " OK IDLE" in line for line in shown)
    frames = read_trace(out)
    assert len(frames) == len(shown) >= 4 and f"{len(frames)} frames" in done.stderr
    replay = CounterReplay(frames)  # what was written plays back
    await replay.listen_tcp()
    try:
        async with SerialTabletCounter(name="tc1", url=replay.url) as tc:
            for _ in range(len(replay.steps) - 1):
                await tc.status()
    finally:
        await replay.close()
    assert replay.mismatches == [] and replay.done
