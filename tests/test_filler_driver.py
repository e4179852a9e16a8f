"""The Modbus vial filler driver against the simulator, over real TCP and RTU on a pty.

What every VialFiller must do (every command, fault, idempotence, reconnect) is
the conformance kit's (tests/conformance/test_vial_filler_kit.py); here is what
is this driver's own: CMD_RESULT to errors, the heartbeat, timeouts and
retries, the link, and units sharing an RTU line.
"""

from __future__ import annotations

import asyncio

import pytest

from drivers import errors
from drivers.filler_types import CapType, FillerState, VialEnd, VialReport
from drivers.vial_filler.driver import ModbusVialFiller
from simulators.vial_filler.server import FillerSimulator

CR = CapType.CHILD_RESISTANT


def driver(sim: FillerSimulator, **kwargs: float) -> ModbusVialFiller:
    # A pty carries no parity; the simulator times 8E1 characters all the same.
    settings: dict[str, float] = {"heartbeat_interval": 0.02, "poll_interval": 0.02} | kwargs
    return ModbusVialFiller(name="fv-test", url=sim.url, parity="N", **settings)  # type: ignore[arg-type]


async def until(fv: ModbusVialFiller, job: int, *, finished: bool = True) -> VialReport:
    """Poll ``job`` until it ends (or, with finished=False, until it stops or ends)."""
    async with asyncio.timeout(10):
        while True:
            report = await fv.job(job)
            if report.finished or (not finished and report.stopped):
                return report
            await asyncio.sleep(0.02)


@pytest.mark.parametrize(("prepare", "args", "error"), [
    (None, (9, 1, 10, 7, CR), errors.BadRequest),        # 7 drams is no vial size
    (None, (9, 9, 10, 8, CR), errors.NoSuchChannel),     # there is no cell 9
    (None, (9, 1, 10_000, 8, CR), errors.BadRequest),    # quantity over 9999
    (None, (9, 4, 10, 8, CR), errors.NotCalibrated),
    ("door", (9, 1, 10, 8, CR), errors.DoorOpen),
    ("bay", (9, 1, 10, 8, CR), errors.OutputOccupied),
])
async def test_start_refusals_become_typed_errors(
        filler: FillerSimulator, prepare: str | None, args: tuple[int, int, int, int, CapType],
        error: type[errors.DeviceError]) -> None:
    if prepare == "door":
        filler.device.open_door()
    elif prepare == "bay":
        filler.device.vial_in_bay = True
    async with driver(filler) as fv:
        with pytest.raises(error) as caught:
            await fv.start(*args)
    assert filler.device.started_jobs == []
    assert caught.value.device == "fv-test" and caught.value.reply is not None


async def test_heartbeat_loss_gives_safe(filler: FillerSimulator) -> None:
    # A heartbeat every 10 s never keeps up with the device's 5 s (0.25 s at time scale 20).
    async with driver(filler, heartbeat_interval=10.0) as fv:
        await fv.start(60, 1, 200, 30, CR)
        report = await until(fv, 60, finished=False)
    assert report.state is FillerState.SAFE and report.count < 200
    assert "heartbeat lost" in filler.device.faults.log


async def test_heartbeat_keeps_a_long_job_running(filler: FillerSimulator) -> None:
    async with driver(filler) as fv:
        await fv.start(61, 1, 120, 30, CR)  # 15 s of machine time, three watchdog periods
        report = await until(fv, 61)
        echo = (await fv.status()).heartbeat_echo
    assert report.end is VialEnd.DONE and echo > 0


async def test_calls_before_open_fail_at_once() -> None:
    fv = ModbusVialFiller(name="fv-test", url="modbus-tcp://127.0.0.1:1")
    with pytest.raises(errors.NotConnectedError):
        await fv.status()
    with pytest.raises(errors.NotConnectedError, match="cannot connect"):
        await fv.open()


async def test_a_silent_device_is_a_reply_timeout(filler: FillerSimulator) -> None:
    async with driver(filler, timeout=0.2) as fv:
        filler.drop_replies(10)
        with pytest.raises(errors.ReplyTimeout):
            await fv.job(1)
        assert not fv.connected


async def test_dropped_replies_are_retried(filler: FillerSimulator) -> None:
    async with driver(filler, timeout=0.3) as fv:
        filler.drop_replies(1)
        identity = await fv.identify()
    assert identity.cells == 4


async def test_slow_replies_within_the_timeout_are_fine(filler: FillerSimulator) -> None:
    async with driver(filler, timeout=1.0) as fv:
        filler.reply_delay_s = 0.15
        status = await fv.status()
    assert status.state is FillerState.IDLE


async def test_a_cut_link_ends_the_event_stream_and_reconnects(
        tcp_filler: FillerSimulator) -> None:
    fv = driver(tcp_filler)
    await fv.open()
    events = fv.events()
    tcp_filler.cut_link()
    with pytest.raises(StopAsyncIteration):
        async with asyncio.timeout(5):
            while True:
                await anext(events)
    assert not fv.connected
    await fv.close()
    async with driver(tcp_filler) as again:
        assert (await again.identify()).cells == 4


async def test_units_on_one_rtu_bus_share_the_line() -> None:
    from simulators.clock import MachineClock
    from simulators.vial_filler.device import VialFillerDevice

    devices = {unit: VialFillerDevice(cells=3, seed=unit, clock=MachineClock(20))
               for unit in (1, 2)}
    async with FillerSimulator(devices=devices) as sim:
        url = await sim.listen_rtu_pty()
        one = ModbusVialFiller(name="a", url=url, unit=1, parity="N", poll_interval=0.02,
                               heartbeat_interval=0.02)
        two = ModbusVialFiller(name="b", url=url, unit=2, parity="N", poll_interval=0.02,
                               heartbeat_interval=0.02)
        async with one, two:
            await asyncio.gather(one.start(1, 1, 10, 8, CR), two.start(1, 2, 12, 8, CR))
            first, second = await asyncio.gather(until(one, 1), until(two, 1))
    assert (first.count, second.count) == (10, 12)
    assert devices[1].cells[1].stock == 490 and devices[2].cells[2].stock == 488


async def test_a_tcp_url_without_a_port_means_the_icd_default_502() -> None:
    fv = ModbusVialFiller(name="fv", url="modbus-tcp://192.0.2.7")
    client = fv._make_client()
    try:
        assert (client.comm_params.host, client.comm_params.port) == ("192.0.2.7", 502)
    finally:
        client.close()


async def test_an_idle_filler_is_polled_slowly_and_a_command_is_seen_at_once(
        filler: FillerSimulator) -> None:
    # Idle, the next poll is an hour away: only the command's own hurry can show its effect.
    async with driver(filler, idle_poll_interval=3600) as fv:
        assert fv.last_status is not None and fv.last_status.state is FillerState.IDLE
        events = fv.events()
        await fv.start(41, 1, 12, 8, CR)
        seen = []
        async with asyncio.timeout(10):
            async for status in events:  # busy now: polled at poll_interval to its end
                seen.append(status.state)
                if status.state is FillerState.DONE:
                    break
        assert seen[0] is not FillerState.IDLE and seen[-1] is FillerState.DONE
        assert fv.polls is not None and fv.polls.runs >= len(seen)


def test_the_idle_poll_is_never_faster_than_the_busy_one() -> None:
    fv = ModbusVialFiller(name="fv", url="modbus-tcp://127.0.0.1:1", poll_interval=0.5,
                          idle_poll_interval=0.1)
    assert fv.idle_poll_interval == 0.5
