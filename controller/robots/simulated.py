"""Simulators for the robots whose url is ``sim:pty`` or ``sim:tcp``, started in-process.

A tablet counter's simulator listens on a pty or TCP; a vial filler's speaks
Modbus RTU on a pty (``sim:pty``) or Modbus TCP (``sim:tcp``).
"""

from __future__ import annotations

from collections.abc import Mapping

from controller.config import Robot, Settings
from simulators.clock import MachineClock
from simulators.tablet_counter.device import TabletCounterDevice
from simulators.tablet_counter.parts import SimChannel
from simulators.tablet_counter.server import CounterSimulator
from simulators.vial_filler.device import VialFillerDevice
from simulators.vial_filler.parts import SimCell
from simulators.vial_filler.server import FillerSimulator

Simulator = CounterSimulator | FillerSimulator


async def start_simulators(
    settings: Settings, on_hand: Mapping[tuple[str, int], int] | None = None,
) -> dict[str, Simulator]:
    """Start one simulator per simulated robot; each bin holds its count.

    ``on_hand`` (robot, bin) → count overrides the configured counts, so that
    a simulator started against an existing store holds what the store says.
    """
    counts = on_hand or {}
    simulators: dict[str, Simulator] = {}
    try:
        for robot in settings.config.robots:
            if not robot.simulated:
                continue
            if robot.kind == "tablet-counter":
                counter = _counter(settings, robot, counts)
                simulators[robot.id] = counter
                await (counter.listen_pty() if robot.url == "sim:pty" else counter.listen_tcp())
            else:
                filler = _filler(settings, robot, counts)
                simulators[robot.id] = filler
                await (filler.listen_rtu_pty() if robot.url == "sim:pty"
                       else filler.listen_tcp())
    except BaseException:
        for sim in simulators.values():
            await sim.close()
        raise
    return simulators


def _counter(settings: Settings, robot: Robot,
             counts: Mapping[tuple[str, int], int]) -> CounterSimulator:
    channels = []
    for channel in robot.channels:
        drug = settings.formulary[channel.ndc]
        channels.append(SimChannel(
            channel.channel, stock=counts.get((robot.id, channel.channel), channel.on_hand),
            sensitivity=channel.calibration.sensitivity,
            gate_ms=channel.calibration.gate_ms or 0, unit_mass_mg=drug.unit_mass_mg,
            spread_pct=drug.unit_mass_spread_pct))
    return CounterSimulator(channels=channels, seed=robot.simulator.seed,
                            time_scale=robot.simulator.time_scale,
                            baud=getattr(robot.driver, "baud", 115200),
                            scale_noise_mg=robot.simulator.scale_noise_mg)


def _filler(settings: Settings, robot: Robot,
            counts: Mapping[tuple[str, int], int]) -> FillerSimulator:
    configured = {c.channel: c for c in robot.channels}
    cells = []
    for number in range(1, max(configured) + 1):
        channel = configured.get(number)
        if channel is None:  # a cell the configuration does not use: empty, not calibrated
            cells.append(SimCell(number, stock=0, sensitivity=0))
            continue
        drug = settings.formulary[channel.ndc]
        cells.append(SimCell(
            number, stock=counts.get((robot.id, number), channel.on_hand),
            sensitivity=channel.calibration.sensitivity, unit_mass_mg=drug.unit_mass_mg,
            spread_pct=drug.unit_mass_spread_pct, cal_unit_dmg=round(drug.unit_mass_mg * 10)))
    unit = getattr(robot.driver, "unit", 1)
    device = VialFillerDevice(cells=cells, seed=robot.simulator.seed,
                              clock=MachineClock(robot.simulator.time_scale),
                              scale_noise_mg=robot.simulator.scale_noise_mg,
                              vials=robot.simulator.vials)
    return FillerSimulator(devices={unit: device}, baud=getattr(robot.driver, "baud", 19200))


def pour(simulators: Mapping[str, Simulator], robot: str, number: int, quantity: int) -> None:
    """A person poured ``quantity`` tablets into a simulated robot's bin (a real robot's
    bin gets them from the person's hands): its simulator holds them too."""
    sim = simulators.get(robot)
    if isinstance(sim, CounterSimulator):
        sim.device.set_stock(number, sim.device.channels[number].stock + quantity)
    elif sim is not None:
        sim.device.set_stock(number, sim.device.cells[number].stock + quantity)


class SimulatedHands:
    """A person's hands at a simulated robot: the simulator's world takes the masses put on
    its scale, and the samples poured back into a channel."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    async def put(self, mass_mg: int) -> None:
        self._sim.device.place_mass(mass_mg)

    async def take_off(self) -> None:
        self._sim.device.place_mass(0)

    async def return_sample(self, channel: int) -> None:
        device = self._sim.device
        if isinstance(device, TabletCounterDevice):
            tablets = device.chute.tablets if device.chute else 0
            device.set_stock(channel, device.channels[channel].stock + tablets)
        else:
            device.take_vial()
            device.set_stock(channel, device.cells[channel].stock + device.bay_tablets)


def sample_hands(simulators: Mapping[str, Simulator], robot: str) -> SimulatedHands | None:
    """The hands that pour a calibration's samples back at a simulated robot (None at a real
    one: a person's)."""
    sim = simulators.get(robot)
    return SimulatedHands(sim) if sim is not None else None
