"""The demo's people on the floor: they watch the robots' notices and act as a technician would
(clear a jam, take the output, restock a bin that runs low), saying each on the screen."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

from rich.console import Console

from controller.demo.orders import OrderEntry
from controller.domain.alarms import AlarmError
from controller.domain.gs1 import bottle_code
from controller.domain.orders import FillOutcome
from controller.domain.roles import Person, Role
from controller.pharmacy.restocking import restock_by_scan
from controller.pharmacy.service import Pharmacy
from controller.robots.notices import (
    FillEnded,
    FillStarted,
    Notice,
    OrderSettled,
    OutputWaiting,
    RobotCleared,
    RobotNeedsAttention,
    RobotOffline,
    RobotOnline,
)
from controller.robots.output import OutputError
from controller.robots.simulated import Simulator, pour
from controller.store import FillRecord
from simulators.tablet_counter.server import CounterSimulator

TECHNICIAN_PAUSE_S = 0.3
TECHNICIAN = Person("tess", frozenset({Role.TECHNICIAN}))
PHARMACIST = Person("phil", frozenset({Role.PHARMACIST}))
ADMIN = Person("ada", frozenset({Role.ADMIN}))
"""Adds the demo's people to its store."""


class DemoFloor:
    """What happens on the pharmacy floor during the demo: faults injected, people acting."""

    def __init__(self, console: Console, pharmacy: Pharmacy,
                 simulators: dict[str, Simulator]) -> None:
        self.console = console
        self.pharmacy = pharmacy
        self.supervisor = pharmacy.supervisor
        self.simulators = simulators
        self.entries: dict[int, OrderEntry] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._faulted: set[int] = set()
        self._restocking: set[tuple[str, int]] = set()

    def on_notice(self, notice: Notice) -> None:
        """Show the notice; inject an order's fault as its fill starts; clear stopped robots."""
        if isinstance(notice, FillStarted):
            self._inject(notice.fill)
            fill = notice.fill
            self.console.print(f"  order {fill.order_id:>3}  {fill.robot} bin {fill.bin}: "
                               f"counting {fill.quantity}")
        elif isinstance(notice, FillEnded):
            fill = notice.fill
            colour = "green" if fill.outcome is FillOutcome.FILLED else "yellow"
            then = f" → {notice.action}" if notice.action else ""
            self.console.print(f"  order {fill.order_id:>3}  [{colour}]{fill.outcome}[/]: "
                               f"{fill.detail}{then}")
        elif isinstance(notice, OrderSettled) and notice.fill_id is None:
            self.console.print(f"  order {notice.order_id:>3}  [yellow]{notice.state}[/]: "
                               f"{notice.reason}")
        elif isinstance(notice, RobotNeedsAttention):
            self.console.print(f"  [red]{notice.robot} needs a person[/]: {notice.reason}")
            self._start(self._technician(notice.robot))
        elif isinstance(notice, RobotCleared):
            self.console.print(f"  technician cleared {notice.robot}; it takes work again")
        elif isinstance(notice, OutputWaiting):
            self._start(self._take_output(notice))
        elif isinstance(notice, RobotOffline | RobotOnline):
            self.console.print(f"  {notice}")

    def on_alarm(self, alarm_id: str) -> None:
        """An alarm reached the technician's phone unacknowledged: acknowledge it."""
        self._start(self._acknowledge(alarm_id))

    async def _acknowledge(self, alarm_id: str) -> None:
        try:
            await self.supervisor.desk.acknowledge(alarm_id, TECHNICIAN)
        except AlarmError:
            return  # acknowledged already, or over: nothing to do
        self.supervisor.watch.poke()

    def on_low(self, robot: str, number: int) -> None:
        """A bin_low alarm reached the technician's phone: go and restock that bin."""
        if (robot, number) not in self._restocking:
            self._restocking.add((robot, number))
            self._start(self._restock(robot, number))

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _restock(self, robot: str, number: int) -> None:
        try:
            await self._pour_and_scan(robot, number)
        finally:
            self._restocking.discard((robot, number))

    async def _pour_and_scan(self, robot: str, number: int) -> None:
        """Pour a fresh bottle into the robot, then scan it, as the technician does."""
        await asyncio.sleep(TECHNICIAN_PAUSE_S)
        supervisor = self.supervisor
        settings, store = supervisor.settings, supervisor.store
        record = await store.stock.bin(robot, number)
        if record.on_hand > record.par:
            return  # an old message: the bin is not low (any more)
        drug = settings.formulary[record.ndc]
        quantity = min(drug.package_quantity or 100, record.capacity - record.on_hand)
        today = supervisor.clock.now().date()
        code = bottle_code(record.ndc, f"{record.lot[:2]}{today:%y%m}R",
                           today + timedelta(days=540), f"DEMO{robot.upper()}{number:03d}")
        pour(self.simulators, robot, number, quantity)
        # A whole bottle when it fits; otherwise the technician counts what was poured.
        full = quantity == drug.package_quantity
        done = await restock_by_scan(settings, store, robot, number, code,
                                     by=TECHNICIAN, quantity=None if full else quantity,
                                     clock=supervisor.clock)
        self.console.print(f"  technician: scanned a bottle of {drug.display_name} (lot "
                           f"{done.bottle.lot}, expires {done.bottle.expiry}) into "
                           f"{robot}/{number}: +{quantity}")
        supervisor.watch.poke()

    def _inject(self, fill: FillRecord) -> None:
        entry = self.entries.get(fill.order_id)
        sim = self.simulators.get(fill.robot)
        if entry is None or sim is None or fill.order_id in self._faulted:
            return
        self._faulted.add(fill.order_id)
        faults = sim.device.faults
        if entry.simulate.jam_after is not None:
            faults.jam_after = entry.simulate.jam_after
        if entry.simulate.miscount:
            faults.miscount = entry.simulate.miscount
        if entry.simulate.cap_fault and not isinstance(sim, CounterSimulator):
            sim.device.faults.cap_fault = True

    async def _take_output(self, notice: OutputWaiting) -> None:
        """The technician takes what waits in the robot's output: a filled vial is labelled
        there (its label printed as it was filled) and its label scanned, which empties the
        output; anything else (a vial to count by hand, tablets of a stopped count) is taken
        to the bench."""
        await asyncio.sleep(TECHNICIAN_PAUSE_S)
        store = self.supervisor.store
        fill = await store.orders.fill(notice.fill_id)
        try:
            if fill is not None and fill.outcome is FillOutcome.FILLED:
                await self.pharmacy.idle()  # its label, printed as the vial was filled
                labels = await store.verification.labels_for(fill.id)
                if any(x.outcome == "printed" for x in labels):
                    await self.pharmacy.scan_label(fill.order_id, fill.code, TECHNICIAN)
                    self.console.print(f"  technician: took {notice.robot}'s vial, scanned "
                                       f"label {fill.code} onto it")
                    return
            await self.supervisor.take_output(notice.robot, TECHNICIAN.name)
        except OutputError:
            return  # taken already (the robot was cleared meanwhile)
        self.console.print(f"  technician: took fill {notice.fill_id}'s tablets from "
                           f"{notice.robot}'s output")

    async def finish(self) -> None:
        """Wait for the technician to finish what they started (a robot still being cleared)."""
        while self._tasks:
            await asyncio.gather(*self._tasks)

    async def _technician(self, robot: str) -> None:
        await asyncio.sleep(TECHNICIAN_PAUSE_S)
        sim = self.simulators.get(robot)
        if isinstance(sim, CounterSimulator) and sim.device.door_open:
            sim.device.close_door()
        elif sim is not None and not isinstance(sim, CounterSimulator):
            sim.device.close_door()
            sim.device.take_vial()
        await self.supervisor.clear(robot, TECHNICIAN.name)
        store = self.supervisor.store
        for vial in await store.vials.set_aside_vials(pending_only=True):
            # Tablets of a jam or an empty bin are whole: back to stock. A vial the capper
            # or the scale failed on was handled: wasted.
            fill = next(f for f in await store.orders.fills() if f.id == vial.fill_id)
            disposition = "returned" if fill.outcome in ("jam", "ran_empty") else "wasted"
            await store.vials.dispose_vial(vial.id, disposition, by=TECHNICIAN)
            self.console.print(f"  technician: partial vial of {vial.count} from order "
                               f"{fill.order_id} {disposition}")
