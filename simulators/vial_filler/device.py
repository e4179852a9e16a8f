"""The vial filler itself, as the ICD describes it: registers, jobs, cells, hoppers, scale.

This is the machine, not a mock of the driver. It holds the truth; the
Modbus server in :mod:`simulators.vial_filler.server` shows its registers to
the wire and hands it every write. Durations are machine time (a
:class:`MachineClock`), so a test can run a minute of filling in a second.
"""

from __future__ import annotations

import asyncio
import random

from drivers.vial_filler import protocol as wire
from drivers.vial_filler.protocol import (
    Cap,
    CmdResult,
    Command,
    Fault,
    Holding,
    LastStatus,
    State,
)
from simulators.clock import MachineClock
from simulators.sensor import counts_for_one, error_rates
from simulators.vial_filler.parts import FillerFaults, SimCell, SimJob

FIRMWARE = 213
"""Firmware 2.13, as FIRMWARE reports it (version × 100)."""
PICK_S = 1.5
TABLETS_PER_SECOND = 8.0
WEIGH_S = 0.4
CAP_S = 1.0
HEARTBEAT_TIMEOUT_S = 5.0
DEFAULT_VIALS = 200


class VialFillerDevice:
    """The filler's logic and physics behind its registers."""

    def __init__(
        self, *, cells: int | list[SimCell] = 12, seed: int = 0,
        clock: MachineClock | None = None, scale_noise_mg: float = 1.0,
        scale_drift_mg_per_min: float = 0.5, vials: int | dict[int, int] = DEFAULT_VIALS,
    ) -> None:
        if isinstance(cells, int):
            cells = [SimCell(n) for n in range(1, cells + 1)]
        if not 1 <= len(cells) <= 240:
            raise ValueError(f"a vial filler has 1-240 cells, not {len(cells)}")
        numbers = sorted(c.number for c in cells)
        if numbers != list(range(1, len(cells) + 1)):
            raise ValueError(f"cells must be numbered 1-{len(cells)}, not {numbers}")
        self.cells = {c.number: c for c in cells}
        self.clock = clock or MachineClock()
        self.faults = FillerFaults()
        self.scale_noise_mg = scale_noise_mg
        self.scale_drift_mg_per_min = scale_drift_mg_per_min
        self.hoppers = ({size: vials for size in wire.VIAL_SIZES} if isinstance(vials, int)
                        else {size: vials.get(size, 0) for size in wire.VIAL_SIZES})
        self._physics = random.Random(f"{seed}-physics")
        self._sensor = random.Random(f"{seed}-sensor")
        self._scale = random.Random(f"{seed}-scale")
        self.params = [0] * wire.COMMAND_BLOCK
        """Holding registers 0–8 as last written (CMD reads 0 once taken up)."""
        self.state = State.IDLE
        self.fault = Fault.NONE
        self.cmd_result = CmdResult.ACCEPTED
        self.job: SimJob | None = None
        self.jobs_done = 0
        self.last_job = 0
        self.last_status = LastStatus.DONE
        self.last_count = 0
        self.last_weight_mg = 0
        self.weight_mg = 0
        self.door_closed = True
        self.vial_in_bay = False
        self.bay_tablets = 0
        self.estop = False
        self.started_jobs: list[int] = []
        """Every job that really took a vial, in order: a test's proof of no repeats."""
        self.heartbeat_changed_at = self.clock.now()
        self._tare_at = self.clock.now()
        self._drift_mg = 0.0
        self._zero_mg = 0.0
        self.scale_gain = 1.0
        """The load cell's true gain: 1.0 for a scale in span; a test mistunes it."""
        self.span_factor = 1.0
        """What the last SPAN set, so that the reference mass read as itself."""
        self.placed_mg = 0.0
        """A reference mass a person put in the empty bay (maintenance)."""
        self._running: asyncio.Task[None] | None = None

    # -- the registers, as the wire sees them ------------------------------

    def inputs(self) -> list[int]:
        """Input registers 0–27 now."""
        job = self.job
        return wire.Inputs(
            state=self.state, job=job.job if job else self.last_job,
            count=job.count if job else self.last_count if self.vial_in_bay else 0,
            weight_mg=(self.weight_mg if job or self.vial_in_bay
                       else self.reading_mg(0.0) if self.placed_mg else 0),
            fault=self.fault, cmd_result=self.cmd_result, cells=len(self.cells),
            firmware=FIRMWARE, jobs_done=self.jobs_done, last_job=self.last_job,
            last_status=self.last_status, last_count=self.last_count,
            last_weight_mg=self.last_weight_mg, heartbeat_echo=self.params[Holding.HEARTBEAT],
            vials_left=tuple(self.hoppers[s] for s in wire.VIAL_SIZES),
        ).registers()

    def discrete_inputs(self) -> list[bool]:
        """Discrete inputs 0–3 now."""
        return [self.door_closed, self.vial_in_bay, self.estop,
                any(n < wire.HOPPER_LOW_BELOW for n in self.hoppers.values())]

    def holding(self, address: int, count: int) -> list[int]:
        """Holding registers ``address`` … ``address + count - 1`` (all mapped)."""
        return [self._holding(a) for a in range(address, address + count)]

    def _holding(self, address: int) -> int:
        if address < wire.COMMAND_BLOCK:
            return self.params[address]
        cell = self.cells[(address - wire.CAL_BASE) // 2 + 1]
        return cell.sensitivity if (address - wire.CAL_BASE) % 2 == 0 else cell.cal_unit_dmg

    def is_mapped_holding(self, address: int) -> bool:
        """True for the addresses of the holding map."""
        return (0 <= address < wire.COMMAND_BLOCK
                or wire.CAL_BASE <= address < wire.CAL_BASE + 2 * len(self.cells))

    def write_holding(self, address: int, values: list[int]) -> None:
        """A host's write; a write that includes CMD runs the command it carries."""
        for offset, value in enumerate(values):
            self._write(address + offset, value)
        if address == Holding.CMD:
            command = self.params[Holding.CMD]
            self.params[Holding.CMD] = 0
            self._run(command)

    def _write(self, address: int, value: int) -> None:
        if address < wire.COMMAND_BLOCK:
            if address == Holding.HEARTBEAT and value != self.params[address]:
                self.heartbeat_changed_at = self.clock.now()
            self.params[address] = value
            return
        cell = self.cells[(address - wire.CAL_BASE) // 2 + 1]
        if (address - wire.CAL_BASE) % 2 == 0:
            cell.sensitivity = value
        else:
            cell.cal_unit_dmg = value

    # -- commands ------------------------------------------------------------

    def _run(self, command: int) -> None:
        block = self.params
        match command:
            case Command.START:
                self.cmd_result = self._start(wire.join32(block[1], block[2]), block[3],
                                              block[4], block[5], block[6])
            case Command.ABORT:
                self.cmd_result = self._abort()
            case Command.RESET_FAULT:
                self.cmd_result = self._reset()
            case Command.TARE:
                self.cmd_result = self._tare()
            case Command.SPAN:
                self.cmd_result = self._span(block[Holding.SPAN_REF] * 10)
            case Command.OUTPUT_TAKEN:
                self.cmd_result = self._output_taken()
            case _:
                # The ICD lists no result for an unknown command; nothing is done.
                self.cmd_result = CmdResult.BUSY if self.job is not None else CmdResult.ACCEPTED

    def _start(self, job_id: int, cell: int, quantity: int, vial: int, cap: int) -> CmdResult:
        current = self.job.job if self.job is not None else None
        if job_id != 0 and job_id in (current, self.last_job):
            return CmdResult.DUPLICATE_JOB
        if self.job is not None or self.state in (State.FAULT, State.SAFE):
            return CmdResult.BUSY
        if self.vial_in_bay:
            return CmdResult.OUTPUT_OCCUPIED
        if not self.door_closed:
            return CmdResult.DOOR_OPEN
        if cell not in self.cells:
            return CmdResult.BAD_CELL
        if not 1 <= quantity <= wire.MAX_QTY:
            return CmdResult.BAD_QUANTITY
        if vial not in wire.VIAL_SIZES:
            return CmdResult.BAD_VIAL
        if self.cells[cell].sensitivity not in wire.SENSITIVITY:
            return CmdResult.NOT_CALIBRATED  # 0, or a value outside 1-100 the map took
        if job_id == 0:
            # The ICD has no result for a job id of 0 (outside 1-4,294,967,295); this
            # simulator calls it a bad quantity, as the nearest parameter error. Our driver
            # never sends it.
            return CmdResult.BAD_QUANTITY
        if cap not in (Cap.CHILD_RESISTANT, Cap.EASY_OPEN):
            return CmdResult.BAD_VIAL  # likewise: no code for a cap outside 0-1
        self.job = SimJob(job_id, cell, quantity, vial, Cap(cap))
        self.weight_mg = 0
        self.state = State.FILLING
        self.fault = Fault.NONE
        self.started_jobs.append(job_id)
        self._running = asyncio.get_running_loop().create_task(self._fill(self.job))
        return CmdResult.ACCEPTED

    def _abort(self) -> CmdResult:
        job = self.job
        if job is None or self.state not in (State.FILLING, State.CAPPING):
            return CmdResult.ACCEPTED
        self._halt()
        self._finish(job, LastStatus.ABORTED)
        self.vial_in_bay = True  # the partial vial goes out, uncapped, for a person to take
        self.state = State.DONE
        return CmdResult.ACCEPTED

    def _reset(self) -> CmdResult:
        if self.state not in (State.FAULT, State.SAFE):
            return CmdResult.ACCEPTED
        if self.estop or not self.door_closed:
            return CmdResult.DOOR_OPEN if not self.door_closed else CmdResult.BUSY
        job = self.job
        if job is not None:
            status = (LastStatus.SAFE if self.state is State.SAFE
                      else wire.FAULT_ENDS_AS[self.fault])
            self._finish(job, status)
        self.fault = Fault.NONE
        self.state = State.DONE if self.vial_in_bay else State.IDLE
        return CmdResult.ACCEPTED

    def _tare(self) -> CmdResult:
        if self.job is not None:
            return CmdResult.BUSY
        self._drift_mg = 0.0
        self._tare_at = self.clock.now()
        self._zero_mg = self._scaled(self.placed_mg)  # what is on it now reads 0
        return CmdResult.ACCEPTED

    def _span(self, reference_mg: int) -> CmdResult:
        if self.job is not None:
            return CmdResult.BUSY
        if reference_mg == 0 or self.placed_mg <= 0:
            return CmdResult.BAD_QUANTITY  # no reference, or nothing on the scale to span on
        self.span_factor = reference_mg / (self.placed_mg * self.scale_gain)
        return CmdResult.ACCEPTED

    def _scaled(self, mass_mg: float) -> float:
        """What the load cell makes of ``mass_mg``, after its span."""
        return mass_mg * self.scale_gain * self.span_factor

    def place_mass(self, mass_mg: float) -> None:
        """A person puts a reference mass in the empty bay's scale (0 takes it off)."""
        self.placed_mg = mass_mg

    def _output_taken(self) -> CmdResult:
        self.vial_in_bay = False
        if self.state is State.DONE:
            self.state = State.IDLE
        return CmdResult.ACCEPTED

    def _finish(self, job: SimJob, status: LastStatus) -> None:
        self.last_job = job.job
        self.last_status = status
        self.last_count = job.count
        self.bay_tablets = job.tablets
        self.last_weight_mg = self.weight_mg
        self.jobs_done = (self.jobs_done + 1) & 0xFFFF
        self.job = None

    # -- the job, on machine time --------------------------------------------

    async def _fill(self, job: SimJob) -> None:
        await self.clock.sleep(PICK_S)
        if self.hoppers[job.vial] == 0:
            self._stop(Fault.NO_VIAL)
            return
        self.hoppers[job.vial] -= 1
        cell = self.cells[job.cell]
        miscount, self.faults.miscount = self.faults.miscount, 0
        while job.count < job.quantity:
            await self.clock.sleep(1.0 / TABLETS_PER_SECOND)
            if self.faults.jam_after is not None and job.tablets >= self.faults.jam_after:
                self.faults.jam_after = None
                self.faults.log.append(f"jam {job.job} at {job.tablets}")
                self._stop(Fault.JAM)
                return
            if cell.stock == 0:
                self._stop(Fault.CELL_EMPTY)
                return
            cell.stock -= 1
            job.tablets += 1
            job.mass_mg += self._physics.gauss(cell.unit_mass_mg,
                                               cell.unit_mass_mg * cell.spread_pct / 100)
            job.count = min(job.quantity, job.count + self._seen(cell))
            if miscount > 0 and job.count < job.quantity:
                job.count += 1
                miscount -= 1
            elif miscount < 0 and job.count > 1:
                job.count -= 1
                miscount += 1
            self.weight_mg = self.reading_mg(job.mass_mg)
        await self.clock.sleep(WEIGH_S)
        if self.faults.scale_fault:
            self.faults.scale_fault = False
            self.faults.log.append(f"scale fault {job.job}")
            self._stop(Fault.SCALE_FAULT)
            return
        self.weight_mg = self.reading_mg(job.mass_mg)
        self.state = State.CAPPING
        await self.clock.sleep(CAP_S)
        if self.faults.cap_fault:
            self.faults.cap_fault = False
            self.faults.log.append(f"cap fault {job.job}")
            self._stop(Fault.CAP_FAULT)
            return
        self._running = None
        self._finish(job, LastStatus.DONE)
        self.vial_in_bay = True
        self.state = State.DONE

    def reading_mg(self, mass_mg: float) -> int:
        """The scale's reading of ``mass_mg``: drift since the last tare, and noise."""
        minutes = (self.clock.now() - self._tare_at) / 60
        self._drift_mg = self.scale_drift_mg_per_min * minutes
        noise = self._scale.gauss(0.0, self.scale_noise_mg)
        loaded = self._scaled(mass_mg + self.placed_mg) - self._zero_mg
        return max(0, round(loaded + self._drift_mg + noise))

    def _seen(self, cell: SimCell) -> int:
        """What the cell's counter counts for one tablet, as tuned now."""
        assert cell.ideal is not None
        rates = error_rates(cell.ideal, cell.sensitivity)
        return counts_for_one(rates, self._sensor) if rates.miss or rates.double else 1

    def _stop(self, fault: Fault) -> None:
        """The job stops where it is: FAULT, with the vial and its count held."""
        self._running = None
        self.fault = fault
        self.state = State.FAULT

    def _halt(self) -> None:
        task, self._running = self._running, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def watch(self) -> None:
        """The heartbeat watchdog, until cancelled."""
        while True:
            await self.clock.sleep(0.1)
            self.check_heartbeat()

    def check_heartbeat(self) -> None:
        """Enter SAFE when a job runs and the host's heartbeat is older than 5 s."""
        running = self.state in (State.FILLING, State.CAPPING)
        if running and self.clock.now() - self.heartbeat_changed_at > HEARTBEAT_TIMEOUT_S:
            self.faults.log.append("heartbeat lost")
            self._halt()
            self.state = State.SAFE

    # -- the physical world ------------------------------------------------

    def open_door(self) -> None:
        """Someone opens the door: a running job stops (FAULT DOOR_OPEN)."""
        self.door_closed = False
        if self.state in (State.FILLING, State.CAPPING):
            self._halt()
            self._stop(Fault.DOOR_OPEN)

    def close_door(self) -> None:
        """The door is closed again (the fault stays until RESET_FAULT)."""
        self.door_closed = True

    def press_estop(self) -> None:
        """The emergency stop: everything stops, SAFE until released and reset."""
        self.estop = True
        self._halt()
        self.state = State.SAFE

    def release_estop(self) -> None:
        """The emergency stop is pulled out (SAFE stays until RESET_FAULT)."""
        self.estop = False

    def set_stock(self, cell: int, tablets: int) -> None:
        """Fill (or empty) a cell."""
        self.cells[cell].stock = tablets

    def set_vials(self, size: int, vials: int) -> None:
        """Fill (or empty) the hopper of one vial size."""
        if size not in self.hoppers:
            raise KeyError(f"no hopper for {size} drams; sizes are {wire.VIAL_SIZES}")
        self.hoppers[size] = vials

    def take_vial(self) -> None:
        """A person takes the vial out of the bay (the host still says OUTPUT_TAKEN)."""
        self.vial_in_bay = False

    def stop(self) -> None:
        """Stop every task (the simulator is closing)."""
        self._halt()
