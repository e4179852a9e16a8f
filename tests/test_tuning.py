"""Guided channel calibration: the rules (domain.tuning), the simulators' sensors that miscount
as a real one does when tuned badly, and the procedure at a simulated robot over a real
socket: it converges from bad starting values, proposes nothing when runs disagree, and
leaves the channel's own calibration on the device until a person accepts."""

from __future__ import annotations

import random

import pytest

from controller.domain.tuning import Plan, Run, Setting, adjusted, decide
from controller.robots.simulated import SimulatedHands
from controller.robots.tuning import Tuned, TuningRefused, tune_channel
from drivers.base import Calibration
from drivers.filler_types import CellCalibration
from drivers.tablet_counter.driver import SerialTabletCounter
from drivers.vial_filler.driver import ModbusVialFiller
from simulators.sensor import Tuning, counts_for_one, error_rates
from simulators.tablet_counter.parts import SimChannel
from simulators.tablet_counter.server import CounterSimulator
from simulators.vial_filler.server import FillerSimulator

UNIT = 250.0
PLAN = Plan(sample=100, agree=3, most_runs=12)


def run(sensitivity: int, gate: int | None, counted: int, weighed: int) -> Run:
    return Run(Setting(sensitivity, gate), counted, round(weighed * UNIT), UNIT)


# -- the rules ----------------------------------------------------------------------------------


def test_misses_raise_the_sensitivity_and_shorten_the_gate() -> None:
    missed = adjusted(run(30, 80, 100, 120), PLAN)  # 20 tablets fell uncounted
    assert missed.sensitivity > 30 and missed.gate_ms is not None and missed.gate_ms < 80
    doubled = adjusted(run(80, 20, 100, 90), PLAN)  # ten counted twice
    assert doubled.sensitivity < 80 and doubled.gate_ms is not None and doubled.gate_ms > 20
    assert adjusted(run(50, 40, 100, 101), PLAN) == Setting(50, 40)  # within tolerance
    assert adjusted(run(50, None, 100, 110), PLAN).gate_ms is None  # a filler's cell


def test_a_proposal_needs_k_runs_in_a_row_at_the_same_settings() -> None:
    good = run(55, 40, 100, 100)
    assert decide([good, good], PLAN).proposal is None
    assert decide([good, good, good], PLAN).proposal == Setting(55, 40)
    other = run(54, 40, 100, 100)
    assert decide([good, other, good], PLAN).proposal is None  # settings changed between
    assert decide([good, run(55, 40, 100, 103), good, good], PLAN).proposal is None


def test_runs_that_never_agree_propose_nothing_and_say_why() -> None:
    flapping = [run(55, 40, 100, 103 if n % 2 else 97) for n in range(12)]
    decision = decide(flapping, PLAN)
    assert decision.next is None and decision.proposal is None
    assert "12 runs and never 3 in a row within ±1 tablets" in decision.why
    assert "the count is not steady" in decision.why


def test_a_plan_is_checked() -> None:
    with pytest.raises(ValueError, match="10-9999 tablets"):
        Plan(sample=5)
    with pytest.raises(ValueError, match="runs that must agree"):
        Plan(agree=13, most_runs=12)


# -- the simulated sensor -------------------------------------------------------------------------


def test_the_sensor_errs_more_the_further_from_its_ideal() -> None:
    ideal = Tuning(55, 40)
    assert error_rates(ideal, 55, 40) == error_rates(ideal, 58, 44) == error_rates(ideal, 55)
    assert error_rates(ideal, 55, 40).miss == error_rates(ideal, 55, 40).double == 0.0
    low, lower = error_rates(ideal, 40, 40), error_rates(ideal, 25, 40)
    assert 0 < low.miss < lower.miss and low.double == lower.double == 0.0
    high = error_rates(ideal, 80, 40)
    assert high.double > 0 and high.miss == 0
    assert error_rates(ideal, 55, 90).miss > 0  # a long gate misses
    assert error_rates(ideal, 55, 10).double > 0  # a short one sees double
    rng = random.Random(1)
    seen = [counts_for_one(error_rates(ideal, 25, 90), rng) for _ in range(1000)]
    assert 0.3 < seen.count(0) / 1000 < 0.6 and 2 not in seen


async def test_a_badly_tuned_simulated_channel_counts_fewer_than_fall() -> None:
    channel = SimChannel(1, stock=500, sensitivity=30, gate_ms=40, unit_mass_mg=UNIT,
                         ideal=Tuning(55, 40))
    sim = CounterSimulator(channels=[channel], seed=3, time_scale=50)
    await sim.listen_tcp()
    async with sim, SerialTabletCounter(name="tc", url=sim.url) as tc:
        ended = tc.events()
        await tc.count("J1", 1, 100)
        while not (report := await tc.job("J1")).finished:
            await anext(ended)
    truly = sim.device.jobs["J1"].tablets
    assert report.count == 100 and truly > 110  # the vial would hold more than the label says
    assert abs(report.weight_mg - truly * UNIT) < UNIT * truly * 0.05


# -- the procedure at a simulated robot -----------------------------------------------------------


def _counter(sensitivity: int, gate_ms: int) -> CounterSimulator:
    channel = SimChannel(1, stock=600, sensitivity=sensitivity, gate_ms=gate_ms,
                         unit_mass_mg=UNIT, spread_pct=2.0, ideal=Tuning(55, 40))
    return CounterSimulator(channels=[channel], seed=5, time_scale=100)


async def _tune(sim: CounterSimulator, hands: SimulatedHands, **start: int) -> Tuned:
    async with SerialTabletCounter(name="tc", url=sim.url) as tc:
        return await tune_channel(tc, channel=1, unit_mass_mg=UNIT, unit_volume_mm3=200,
                                  plan=PLAN, hands=hands, say=lambda r, n: None, **start)


async def _error_pct(sim: CounterSimulator, calibration: Calibration, job: str) -> float:
    """How far a 300-tablet count at ``calibration`` is from the tablets that truly fell."""
    async with SerialTabletCounter(name="tc", url=sim.url) as tc:
        await tc.write_calibration(1, calibration)
        ended = tc.events()
        await tc.count(job, 1, 300)
        while not (await tc.job(job)).finished:
            await anext(ended)
        await SimulatedHands(sim).return_sample(1)
        await tc.take(job)
    truly = sim.device.jobs[job].tablets
    return 100.0 * abs(300 - truly) / truly


@pytest.mark.parametrize(("sensitivity", "gate_ms"), [(25, 90), (90, 15)])
async def test_a_counters_channel_converges_from_a_bad_start(sensitivity: int,
                                                             gate_ms: int) -> None:
    sim = _counter(sensitivity, gate_ms)
    await sim.listen_tcp()
    async with sim:
        before = await _error_pct(sim, Calibration(sensitivity, gate_ms), "B1")
        tuned = await _tune(sim, SimulatedHands(sim))
        assert tuned.decision is not None and tuned.decision.proposal is not None
        proposal = tuned.decision.proposal
        channel = sim.device.channels[1]
        assert (channel.sensitivity, channel.gate_ms) == (sensitivity, gate_ms)  # put back
        assert channel.stock == 600  # every sample went back into the canister
        assert proposal.gate_ms is not None
        after = await _error_pct(sim, Calibration(proposal.sensitivity, proposal.gate_ms), "A1")
    assert before > 10 and after < 1.5, (before, after, tuned.runs)
    assert 4 <= len(tuned.runs) <= PLAN.most_runs
    assert all(r.setting == proposal for r in tuned.runs[-3:])


class Unsteady(SimulatedHands):
    """A sample with chips in it: each run's count is thrown off, one way then the other."""

    runs = 0

    async def return_sample(self, channel: int) -> None:
        await super().return_sample(channel)
        self.runs += 1
        self._sim.device.faults.miscount = 3 if self.runs % 2 else -3


async def test_runs_that_disagree_propose_nothing() -> None:
    sim = _counter(55, 40)
    await sim.listen_tcp()
    async with sim:
        sim.device.faults.miscount = -3
        tuned = await _tune(sim, Unsteady(sim))
    assert tuned.decision is not None and tuned.decision.proposal is None
    assert len(tuned.runs) == PLAN.most_runs and "not steady" in tuned.decision.why
    assert (sim.device.channels[1].sensitivity, sim.device.channels[1].gate_ms) == (55, 40)


async def test_a_busy_counter_is_refused_and_an_ended_sample_stops_it() -> None:
    sim = _counter(55, 40)
    await sim.listen_tcp()
    async with sim:
        async with SerialTabletCounter(name="tc", url=sim.url) as tc:
            await tc.count("J9", 1, 50)
            with pytest.raises(TuningRefused, match="a channel is calibrated only when"):
                await tune_channel(tc, channel=1, unit_mass_mg=UNIT, unit_volume_mm3=200,
                                   plan=PLAN, hands=SimulatedHands(sim), say=lambda r, n: None)
            await tc.abort()
            await SimulatedHands(sim).return_sample(1)
            await tc.take("J9")
        sim.device.set_stock(1, 40)  # runs empty during the first sample
        with pytest.raises(TuningRefused, match=r"ended empty at \d+: clear the robot"):
            await _tune(sim, SimulatedHands(sim), start_sensitivity=30)
        assert sim.device.channels[1].sensitivity == 55


async def test_a_fillers_cell_converges_and_keeps_its_own_until_accepted(
        filler: FillerSimulator) -> None:
    cell = filler.device.cells[2]
    cell.ideal = Tuning(50)
    async with ModbusVialFiller(name="fv", url=filler.url, parity="N",
                                heartbeat_interval=0.02) as fv:
        tuned = await tune_channel(fv, channel=2, unit_mass_mg=UNIT, unit_volume_mm3=200,
                                   plan=PLAN, hands=SimulatedHands(filler),
                                   say=lambda r, n: None, start_sensitivity=20)
        assert await fv.read_calibration(2) == CellCalibration(50, UNIT)
    assert tuned.runs[0].error < -10  # 20 is far too low: tablets missed
    assert tuned.decision is not None and tuned.decision.proposal is not None
    assert abs(tuned.decision.proposal.sensitivity - 50) <= 5
    assert cell.stock == 300  # every sample went back into the cell


async def test_a_fillers_sample_stopped_safe_stops_the_calibration(
        tcp_filler: FillerSimulator) -> None:
    async with ModbusVialFiller(name="fv", url=tcp_filler.url, parity="N",
                                heartbeat_interval=10.0) as fv:  # the watchdog will fire
        with pytest.raises(TuningRefused, match=r"the sample's vial stopped \(safe\)"):
            await tune_channel(fv, channel=1, unit_mass_mg=UNIT, unit_volume_mm3=200,
                               plan=PLAN, hands=SimulatedHands(tcp_filler),
                               say=lambda r, n: None, start_sensitivity=20)


async def test_a_channel_with_no_calibration_needs_a_start() -> None:
    sim = _counter(55, 40)
    sim.device.channels[1].sensitivity = 0  # never calibrated
    await sim.listen_tcp()
    async with sim:
        with pytest.raises(TuningRefused, match="holds no calibration to start from"):
            await _tune(sim, SimulatedHands(sim))
        tuned = await _tune(sim, SimulatedHands(sim), start_sensitivity=50, start_gate_ms=40)
    assert tuned.decision is not None and tuned.decision.proposal is not None
