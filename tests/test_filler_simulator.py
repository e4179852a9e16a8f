"""The vial filler simulator's machine: physics that the wire tests do not pin."""

from __future__ import annotations

import asyncio

from drivers.vial_filler import protocol as wire
from simulators.clock import MachineClock
from simulators.vial_filler.device import VialFillerDevice
from simulators.vial_filler.parts import SimCell


def device(*, noise_mg: float = 1.0, drift_mg_per_min: float = 0.5) -> VialFillerDevice:
    cells = [SimCell(1, stock=100, unit_mass_mg=200.0, cal_unit_dmg=2000)]
    return VialFillerDevice(cells=cells, clock=MachineClock(6000),  # a minute in 10 ms
                            scale_noise_mg=noise_mg, scale_drift_mg_per_min=drift_mg_per_min)


async def test_the_scale_drifts_until_tared() -> None:
    filler = device(noise_mg=0.0, drift_mg_per_min=5.0)
    await asyncio.sleep(0.03)  # three minutes of machine time
    drifted = filler.reading_mg(1000.0)
    filler.write_holding(0, [wire.Command.TARE])
    tared = filler.reading_mg(1000.0)
    assert drifted >= 1014 and abs(tared - 1000) <= 1


async def test_the_same_seed_fills_the_same_vial() -> None:
    async def fill(seed: int) -> tuple[int, int]:
        filler = VialFillerDevice(cells=[SimCell(1, stock=100)], seed=seed,
                                  clock=MachineClock(500))
        block = wire.CommandBlock(wire.Command.START, 1, 1, 20, 8).registers()
        filler.write_holding(0, block)
        while filler.state is not wire.State.DONE:
            filler.write_holding(wire.Holding.HEARTBEAT, [filler.params[8] + 1])
            await asyncio.sleep(0.001)
        return filler.last_count, filler.last_weight_mg

    assert await fill(3) == await fill(3)
    assert await fill(3) != await fill(4)


def test_cmd_reads_zero_once_taken_up_and_results_show_in_inputs() -> None:
    filler = device()
    filler.write_holding(0, wire.CommandBlock(wire.Command.START, 5, 9, 10, 8).registers())
    inputs = wire.Inputs.decode(filler.inputs())
    assert filler.holding(0, 1) == [0]
    assert inputs.cmd_result is wire.CmdResult.BAD_CELL and inputs.state is wire.State.IDLE
    filler.stop()


def test_hopper_low_shows_on_its_discrete_input() -> None:
    filler = device()
    assert filler.discrete_inputs() == [True, False, False, False]
    filler.set_vials(40, 19)
    assert filler.discrete_inputs()[wire.Discrete.HOPPER_LOW]
