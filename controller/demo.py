"""``rxfill demo``: simulators, store and supervisor in one process, filling sample orders.

The demo plays the technician too: when a robot stops for a person (a jam),
it waits a moment, clears it, and the robot takes work again.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from controller.config import ConfigError, OrderEntry, Settings, load_config, load_orders
from controller.notices import (
    FillEnded,
    FillStarted,
    Notice,
    OrderSettled,
    RobotCleared,
    RobotNeedsAttention,
    RobotOffline,
    RobotOnline,
)
from controller.simulation import Simulator, start_simulators
from controller.store import FillRecord, OrderRecord, Store, sqlite_url
from controller.supervisor import Supervisor, bin_specs
from simulators.tablet_counter.server import CounterSimulator

DEMO_TIMEOUT_S = 50.0
TECHNICIAN_PAUSE_S = 0.3


class DemoFloor:
    """What happens on the pharmacy floor during the demo: faults injected, people acting."""

    def __init__(self, console: Console, supervisor: Supervisor,
                 simulators: dict[str, Simulator]) -> None:
        self.console = console
        self.supervisor = supervisor
        self.simulators = simulators
        self.entries: dict[int, OrderEntry] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._faulted: set[int] = set()

    def on_notice(self, notice: Notice) -> None:
        """Show the notice; inject an order's fault as its fill starts; clear stopped robots."""
        if isinstance(notice, FillStarted):
            self._inject(notice.fill)
            fill = notice.fill
            self.console.print(f"  order {fill.order_id:>3}  {fill.robot} bin {fill.bin}: "
                               f"counting {fill.quantity}")
        elif isinstance(notice, FillEnded):
            fill = notice.fill
            colour = "green" if fill.outcome == "filled" else "yellow"
            then = f" → {notice.action}" if notice.action else ""
            self.console.print(f"  order {fill.order_id:>3}  [{colour}]{fill.outcome}[/]: "
                               f"{fill.detail}{then}")
        elif isinstance(notice, OrderSettled) and notice.fill_id is None:
            self.console.print(f"  order {notice.order_id:>3}  [yellow]{notice.state}[/]: "
                               f"{notice.reason}")
        elif isinstance(notice, RobotNeedsAttention):
            self.console.print(f"  [red]{notice.robot} needs a person[/]: {notice.reason}")
            task = asyncio.get_running_loop().create_task(self._technician(notice.robot))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif isinstance(notice, RobotCleared):
            self.console.print(f"  technician cleared {notice.robot}; it takes work again")
        elif isinstance(notice, RobotOffline | RobotOnline):
            self.console.print(f"  {notice}")

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
        await self.supervisor.clear(robot)
        store = self.supervisor.store
        for vial in await store.set_aside_vials(pending_only=True):
            # Tablets of a jam or an empty bin are whole: back to stock. A vial the capper
            # or the scale failed on was handled: wasted.
            fill = next(f for f in await store.fills() if f.id == vial.fill_id)
            disposition = "returned" if fill.outcome in ("jam", "ran_empty") else "wasted"
            await store.dispose_vial(vial.id, disposition, who="demo technician")
            self.console.print(f"  technician: partial vial of {vial.count} from order "
                               f"{fill.order_id} {disposition}")


async def run_demo(config_path: Path, store_path: Path | None, console: Console) -> int:
    """Fill the configuration's sample orders against its simulators; 0 when all went as shown."""
    try:
        settings = load_config(config_path)
        if settings.config.orders is None:
            raise ConfigError(f"{config_path}: key orders: is missing; the demo needs a file "
                              f"of sample orders")
        entries = load_orders(settings.resolve(settings.config.orders))
    except ConfigError as exc:
        console.print(f"[red]error:[/] {exc}")
        return 2
    with tempfile.TemporaryDirectory(prefix="rxfill-demo-") as scratch:
        path = store_path or Path(scratch) / "demo.sqlite"
        store = await Store.open(sqlite_url(path))
        try:
            return await _fill(settings, store, entries, console, path)
        finally:
            await store.close()


async def _fill(settings: Settings, store: Store, entries: list[OrderEntry], console: Console,
                path: Path) -> int:
    await store.ensure_bins(bin_specs(settings))
    on_hand = {(b.robot, b.bin): b.on_hand for b in await store.bins()}
    simulators = await start_simulators(settings, on_hand)
    try:
        for robot, sim in simulators.items():
            console.print(f"simulator {robot} listening on {sim.url}")
        supervisor = Supervisor(settings, store, urls={r: s.url for r, s in simulators.items()})
        floor = DemoFloor(console, supervisor, simulators)
        supervisor.subscribe(floor.on_notice)
        console.print(f"store: {path}")
        async with supervisor:
            console.print(f"filling {len(entries)} sample orders on "
                          f"{', '.join(supervisor.robots)}")
            ids = []
            for entry in entries:
                record = await supervisor.submit(entry.to_order())
                floor.entries[record.id] = entry
                ids.append(record.id)
            try:
                async with asyncio.timeout(DEMO_TIMEOUT_S):
                    orders = await supervisor.wait_settled(ids)
                    await floor.finish()
            except TimeoutError:
                console.print(f"[red]error:[/] orders were still open after {DEMO_TIMEOUT_S} s")
                return 1
        console.print(await _table(settings, store, orders))
    finally:
        for sim in simulators.values():
            await sim.close()
    return 0


async def _table(settings: Settings, store: Store, orders: list[OrderRecord]) -> Table:
    table = Table(title="Demo fills")
    for column in ("order", "drug", "quantity", "robot/bin", "counted", "weight", "outcome"):
        table.add_column(column, justify="right" if column in ("quantity", "counted") else "left")
    for order in orders:
        drug = settings.formulary.get(order.ndc)
        fills = await store.fills(order.id)
        last = fills[-1] if fills else None
        weight = ""
        if last is not None and last.weight_mg is not None:
            weight = f"{last.weight_mg} mg"
            if last.expected_mg is not None and last.tolerance_mg is not None:
                weight += f" ({last.expected_mg:.0f} ± {last.tolerance_mg:.0f})"
        outcome = str(last.outcome) if last is not None else str(order.state)
        if last is None and order.reason:
            outcome += f": {order.reason}"
        table.add_row(
            str(order.id), drug.display_name if drug else order.ndc, str(order.quantity),
            f"{last.robot}/{last.bin}" if last else "-",
            str(last.counted) if last and last.counted is not None else "-", weight or "-",
            outcome)
    return table
