"""The tablet counter itself, as the ICD describes it: state, jobs, channels, scale.

This is the machine, not a mock of the driver. It answers requests (already
decoded) with replies, counts tablets on machine time, and sends events. The
link that carries frames lives in :mod:`simulators.tablet_counter.server`.
"""

from __future__ import annotations

import asyncio
import random
from collections import OrderedDict
from collections.abc import Callable

from drivers.tablet_counter import protocol as wire
from drivers.tablet_counter.protocol import DeviceState, ErrorCode, JobState
from simulators.clock import MachineClock
from simulators.sensor import counts_for_one, error_rates
from simulators.tablet_counter.parts import Faults, SimChannel, SimJob

FIRMWARE = "1.4.2"
TABLETS_PER_SECOND = 12.0
SETTLE_S = 0.300
PROGRESS_EVERY_S = 0.250
PROGRESS_EVERY_TABLETS = 25


class TabletCounterDevice:
    """The counter's logic and physics; ``emit`` sends an event to the link."""

    def __init__(
        self,
        *,
        channels: int | list[SimChannel] = 8,
        seed: int = 0,
        clock: MachineClock | None = None,
        scale_noise_mg: float = 1.0,
        serial: str | None = None,
    ) -> None:
        if isinstance(channels, int):
            channels = [SimChannel(n) for n in range(1, channels + 1)]
        if not 1 <= len(channels) <= wire.MAX_CHANNELS:
            raise ValueError(f"a counter has 1-{wire.MAX_CHANNELS} channels, not {len(channels)}")
        self.channels = {c.number: c for c in channels}
        self.clock = clock or MachineClock()
        self.faults = Faults()
        self.scale_noise_mg = scale_noise_mg
        self.serial = serial or f"SN{seed:06d}"
        self.emit: Callable[[wire.Event], None] = lambda event: None
        self._physics = random.Random(f"{seed}-physics")
        self._sensor = random.Random(f"{seed}-sensor")
        self.state = DeviceState.IDLE
        self.jobs: OrderedDict[str, SimJob] = OrderedDict()
        self.current: SimJob | None = None
        self.chute: SimJob | None = None
        self.door_open = False
        self.powered = True
        self.scale_offset_mg = 0.0
        self.scale_gain = 1.0
        """The load cell's true gain: 1.0 for a scale in span; a test mistunes it."""
        self.span_factor = 1.0
        """What the last SP set, so that the reference mass read as itself."""
        self.placed_mg = 0.0
        """A reference mass a person put on the scale (maintenance)."""
        self.settled_at = 0.0
        self.started_jobs: list[str] = []
        """Every job that really started counting, in order: a test's proof of no repeats."""
        self._counting: asyncio.Task[None] | None = None
        self._settling: set[asyncio.Task[None]] = set()
        self._last: tuple[int, wire.Reply] | None = None

    # -- requests ----------------------------------------------------------

    def handle(self, request: wire.Request) -> wire.Reply | None:
        """Answer one request; None while powered off (no answer at all)."""
        if not self.powered:
            return None
        if self._last is not None and self._last[0] == request.seq:
            return self._last[1]
        args = self._answer(request.verb, request.args)
        reply = (wire.Reply(request.seq, False, args[1:]) if args and args[0] == "ER"
                 else wire.Reply(request.seq, True, args))
        self._last = (request.seq, reply)
        return reply

    def _answer(self, verb: str, args: tuple[str, ...]) -> tuple[str, ...]:
        arity = wire.VERB_ARITY.get(verb)
        if arity is None or arity != len(args):
            return ("ER", ErrorCode.BAD_REQUEST)
        handler = getattr(self, f"_verb_{verb.lower()}")
        result: tuple[str, ...] = handler(*args)
        return result

    def _verb_id(self) -> tuple[str, ...]:
        return ("RXSIM", "TC-64", self.serial, FIRMWARE, str(len(self.channels)))

    def _verb_st(self) -> tuple[str, ...]:
        job = self.current or self.chute
        return (self.state, job.job if job else "-", str(job.count if job else 0))

    def _verb_ct(self, job_id: str, ch: str, qty: str) -> tuple[str, ...]:
        known = self.jobs.get(job_id)
        if known is not None:
            same = (str(known.channel), str(known.quantity)) == (ch, qty)
            return () if same else ("ER", ErrorCode.JOB_CONFLICT)
        channel_no, quantity = _number(ch, 1, wire.MAX_CHANNELS), _number(qty, 1, 9999)
        if not wire.is_job_id(job_id) or channel_no is None or quantity is None:
            return ("ER", ErrorCode.BAD_ARGUMENT)
        channel = self.channels.get(channel_no)
        if channel is None:
            return ("ER", ErrorCode.NO_SUCH_CHANNEL)
        if self.state is DeviceState.COUNTING:
            return ("ER", ErrorCode.BUSY)
        if self.chute is not None:
            return ("ER", ErrorCode.CHUTE_NOT_EMPTY)
        if self.door_open or self.state is DeviceState.DOOR:
            return ("ER", ErrorCode.DOOR_OPEN)
        if self.state in (DeviceState.JAM, DeviceState.EMPTY):
            return ("ER", ErrorCode.JAMMED_OR_EMPTY)
        if channel.sensitivity == 0 or channel.gate_ms == 0:
            return ("ER", ErrorCode.NOT_CALIBRATED)
        self._start(SimJob(job_id, channel_no, quantity))
        return ()

    def _verb_jb(self, job_id: str) -> tuple[str, ...]:
        job = self.jobs.get(job_id)
        if job is None:
            return ("ER", ErrorCode.UNKNOWN_JOB)
        return (job.state, str(job.count), str(job.weight_mg))

    def _verb_ab(self) -> tuple[str, ...]:
        job = self.current
        if job is None:
            return ("-", "0")
        self._stop(job, JobState.ABORTED)
        return (job.job, str(job.count))

    def _verb_cl(self) -> tuple[str, ...]:
        if self.state is DeviceState.COUNTING:
            return ("ER", ErrorCode.BUSY)
        if self.door_open:
            return ("ER", ErrorCode.DOOR_OPEN)
        self.state = DeviceState.DONE if self.chute else DeviceState.IDLE
        return ()

    def _verb_dn(self, job_id: str) -> tuple[str, ...]:
        job = self.jobs.get(job_id)
        if job is None:
            return ("ER", ErrorCode.UNKNOWN_JOB)
        if job is self.current:
            return ("ER", ErrorCode.BUSY)
        if self.chute is job:
            self.chute = None
            if self.state is DeviceState.DONE:
                self.state = DeviceState.IDLE
        return ()

    def _verb_cr(self, ch: str) -> tuple[str, ...]:
        channel = self._channel(ch)
        if isinstance(channel, tuple):
            return channel
        return (str(channel.sensitivity), str(channel.gate_ms))

    def _verb_cw(self, ch: str, sens: str, gate: str) -> tuple[str, ...]:
        sensitivity, gate_ms = _number(sens, 1, 100), _number(gate, 1, 500)
        channel = self._channel(ch)
        if isinstance(channel, tuple):
            return channel
        if sensitivity is None or gate_ms is None:
            return ("ER", ErrorCode.BAD_ARGUMENT)
        channel.sensitivity, channel.gate_ms = sensitivity, gate_ms
        return ()

    def _verb_wt(self) -> tuple[str, ...]:
        return (str(self.reading_mg()), "1" if self.stable else "0")

    def _verb_tz(self) -> tuple[str, ...]:
        if self.state is DeviceState.COUNTING:
            return ("ER", ErrorCode.BUSY)
        if self.chute is not None:
            return ("ER", ErrorCode.CHUTE_NOT_EMPTY)
        if not self.stable:
            return ("ER", ErrorCode.SCALE_NOT_STABLE)
        self.scale_offset_mg = -self._scaled(self.placed_mg)  # what is on it now reads 0
        return ()

    def _verb_sp(self, mass: str) -> tuple[str, ...]:
        if _number(mass, 1, 999_999) is None:
            return ("ER", ErrorCode.BAD_ARGUMENT)
        if self.state is DeviceState.COUNTING:
            return ("ER", ErrorCode.BUSY)
        if not self.stable:
            return ("ER", ErrorCode.SCALE_NOT_STABLE)
        if self.placed_mg <= 0:
            return ("ER", ErrorCode.BAD_ARGUMENT)  # nothing on the scale to span on
        self.span_factor = int(mass) / (self.placed_mg * self.scale_gain)
        return ()

    def _channel(self, ch: str) -> SimChannel | tuple[str, ...]:
        number = _number(ch, 1, wire.MAX_CHANNELS)
        if number is None:
            return ("ER", ErrorCode.BAD_ARGUMENT)
        channel = self.channels.get(number)
        return ("ER", ErrorCode.NO_SUCH_CHANNEL) if channel is None else channel

    # -- the scale ---------------------------------------------------------

    @property
    def stable(self) -> bool:
        """The scale has settled since the last tablet fell."""
        return self.clock.now() >= self.settled_at

    def reading_mg(self) -> int:
        """The scale now: the chute's true mass, its offset and noise."""
        mass = self.chute.mass_mg if self.chute else 0.0
        noise = self._physics.gauss(0.0, self.scale_noise_mg)
        return max(0, round(self._scaled(mass + self.placed_mg) + self.scale_offset_mg + noise))

    def _scaled(self, mass_mg: float) -> float:
        """What the load cell makes of ``mass_mg``, after its span."""
        return mass_mg * self.scale_gain * self.span_factor

    # -- counting ----------------------------------------------------------

    def _start(self, job: SimJob) -> None:
        self.jobs[job.job] = job
        while len(self.jobs) > wire.JOB_MEMORY:
            self.jobs.popitem(last=False)
        self.current = self.chute = job
        self.state = DeviceState.COUNTING
        self.started_jobs.append(job.job)
        self._counting = asyncio.get_running_loop().create_task(self._count(job))

    async def _count(self, job: SimJob) -> None:
        channel = self.channels[job.channel]
        miscount, self.faults.miscount = self.faults.miscount, 0
        last_progress_time, last_progress_count = self.clock.now(), 0
        while job.count < job.quantity:
            await self.clock.sleep(1.0 / TABLETS_PER_SECOND)
            if self.faults.jam_after is not None and job.tablets >= self.faults.jam_after:
                self.faults.jam_after = None
                self.faults.log.append(f"jam {job.job} at {job.tablets}")
                self._stop(job, JobState.JAM)
                return
            if channel.stock == 0:
                self._stop(job, JobState.EMPTY)
                return
            channel.stock -= 1
            job.tablets += 1
            job.mass_mg += self._physics.gauss(
                channel.unit_mass_mg, channel.unit_mass_mg * channel.spread_pct / 100)
            job.count = min(job.quantity, job.count + self._seen(channel))
            if miscount > 0 and job.count < job.quantity:
                job.count += 1  # a fragment seen as a tablet
                miscount -= 1
            elif miscount < 0 and job.count > 0:
                job.count -= 1  # two tablets seen as one
                miscount += 1
            self.settled_at = self.clock.now() + SETTLE_S
            now = self.clock.now()
            if (job.count - last_progress_count >= PROGRESS_EVERY_TABLETS
                    or now - last_progress_time >= PROGRESS_EVERY_S):
                self.emit(wire.Event(wire.EventName.PROGRESS, (job.job, str(job.count))))
                last_progress_time, last_progress_count = now, job.count
        self._stop(job, JobState.DONE)

    def _seen(self, channel: SimChannel) -> int:
        """What the channel's sensor counts for one tablet, as tuned now."""
        assert channel.ideal is not None
        rates = error_rates(channel.ideal, channel.sensitivity, channel.gate_ms)
        return counts_for_one(rates, self._sensor) if rates.miss or rates.double else 1

    def _stop(self, job: SimJob, outcome: JobState) -> None:
        """End ``job``: the count stops now; EN follows once the scale settles."""
        if self.current is not job:
            return
        self.current = None
        task, self._counting = self._counting, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        if outcome is JobState.JAM:
            self.state = DeviceState.JAM
        elif outcome is JobState.EMPTY:
            self.state = DeviceState.EMPTY
        elif self.state is DeviceState.COUNTING:
            self.state = DeviceState.DONE
        if job.tablets == 0:
            self.chute = None
            if self.state is DeviceState.DONE:
                self.state = DeviceState.IDLE
        job.weight_mg = round(job.mass_mg)
        settle = asyncio.get_running_loop().create_task(self._settle(job, outcome))
        self._settling.add(settle)
        settle.add_done_callback(self._settling.discard)

    async def _settle(self, job: SimJob, outcome: JobState) -> None:
        await self.clock.sleep(max(0.0, self.settled_at - self.clock.now()))
        noise = self._physics.gauss(0.0, self.scale_noise_mg)
        job.weight_mg = max(0, round(self._scaled(job.mass_mg) + self.scale_offset_mg + noise))
        job.state = outcome
        self.emit(wire.Event(wire.EventName.END,
                             (job.job, outcome, str(job.count), str(job.weight_mg))))

    # -- the physical world ------------------------------------------------

    def open_door(self) -> None:
        """Someone opens the door: a running count stops (ABORTED)."""
        self.door_open = True
        self.emit(wire.Event(wire.EventName.DOOR, ("OPEN",)))
        if self.current is not None:
            self._stop(self.current, JobState.ABORTED)
        self.state = DeviceState.DOOR

    def close_door(self) -> None:
        """The door closes; the device stays in DOOR until CL."""
        self.door_open = False
        self.emit(wire.Event(wire.EventName.DOOR, ("CLOSED",)))

    def place_mass(self, mass_mg: float) -> None:
        """A person puts a reference mass on the scale (0 takes it off)."""
        self.placed_mg = mass_mg
        self.settled_at = self.clock.now() + 0.2

    def set_stock(self, channel: int, tablets: int) -> None:
        """Put ``tablets`` in a channel's canister (0 makes it run empty)."""
        self.channels[channel].stock = tablets

    def take_chute(self) -> None:
        """A person empties the chute by hand."""
        self.chute = None

    async def power_cycle(self, off_s: float = 0.5) -> None:
        """Lose power: a running count stops (ABORTED), jobs are kept, then PW."""
        self.powered = False
        if self.current is not None:
            job = self.current
            self.current = None
            if self._counting is not None:
                self._counting.cancel()
            job.state, job.weight_mg = JobState.ABORTED, round(job.mass_mg)
        self.faults.log.append("power cycle")
        await self.clock.sleep(off_s)
        self._last = None
        self.state = DeviceState.DONE if self.chute else DeviceState.IDLE
        self.powered = True
        self.emit(wire.Event(wire.EventName.POWER, (FIRMWARE,)))

    def stop(self) -> None:
        """Stop counting and settling (the simulator is shutting down)."""
        for task in (self._counting, *self._settling):
            if task is not None:
                task.cancel()


def _number(text: str, low: int, high: int) -> int | None:
    if not text.isdigit() or len(text) > 7:
        return None
    value = int(text)
    return value if low <= value <= high else None
