"""Simulators for the robots whose url is ``sim:pty`` or ``sim:tcp``, started in-process."""

from __future__ import annotations

from collections.abc import Mapping

from controller.config import Settings
from simulators.tablet_counter.device import SimChannel
from simulators.tablet_counter.server import CounterSimulator


async def start_simulators(
    settings: Settings, on_hand: Mapping[tuple[str, int], int] | None = None,
) -> dict[str, CounterSimulator]:
    """Start one simulator per simulated robot; each canister holds its bin's count.

    ``on_hand`` (robot, bin) → count overrides the configured counts, so that
    a simulator started against an existing store holds what the store says.
    """
    counts = on_hand or {}
    simulators: dict[str, CounterSimulator] = {}
    try:
        for robot in settings.config.robots:
            if not robot.simulated:
                continue
            channels = []
            for channel in robot.channels:
                drug = settings.formulary[channel.ndc]
                channels.append(SimChannel(
                    channel.channel, stock=counts.get((robot.id, channel.channel),
                                                      channel.on_hand),
                    sensitivity=channel.calibration.sensitivity,
                    gate_ms=channel.calibration.gate_ms, unit_mass_mg=drug.unit_mass_mg,
                    spread_pct=drug.unit_mass_spread_pct))
            sim = CounterSimulator(
                channels=channels, seed=robot.simulator.seed,
                time_scale=robot.simulator.time_scale, baud=robot.driver.baud,
                scale_noise_mg=robot.simulator.scale_noise_mg)
            simulators[robot.id] = sim
            if robot.url == "sim:pty":
                await sim.listen_pty()
            else:
                await sim.listen_tcp()
    except BaseException:
        for sim in simulators.values():
            await sim.close()
        raise
    return simulators
