"""``rxfill demo``: simulators, store and supervisor in one process, filling sample orders.

The demo plays the people too: when a robot stops for a person (a jam), the
technician clears it; each filled vial's label prints, the technician scans
it onto the vial, and a pharmacist (not the technician) verifies the vial and
releases it to the pickup bin. With ``--serve`` the site stays up afterwards
with its REST API, and the demo's people can sign in.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import socket
import tempfile
from pathlib import Path

import aiomqtt
from rich.console import Console
from rich.table import Table

from controller.audit_key import load_audit_key
from controller.config import Settings, load_config
from controller.demo.board import AlarmBoard
from controller.demo.floor import ADMIN, PHARMACIST, TECHNICIAN, DemoFloor
from controller.demo.orders import OrderEntry, load_orders
from controller.domain.orders import FillOutcome, OrderState
from controller.domain.roles import Role, WorkflowError
from controller.pharmacy.refusals import OrderInvalid
from controller.pharmacy.service import Pharmacy
from controller.reading import ConfigError
from controller.robots.simulated import Simulator
from controller.robots.supervisor import Supervisor
from controller.site import (
    PortInUse,
    api_server,
    broker_link,
    label_printer,
    listen,
    simulated_robots,
)
from controller.store import OrderRecord, Store, sqlite_url
from controller.store.lock import StoreInUse, supervising
from controller.store.revisions import StoreUnusable
from controller.store.stock import BinDrugMismatch
from simulators.label_printer.server import PrinterSimulator

DEMO_TIMEOUT_S = 50.0
async def run_demo(config_path: Path, store_path: Path | None, console: Console,
                   mqtt: str | None = None, serve: bool = False, port: int | None = None,
                   ) -> int:
    """Fill the configuration's sample orders against its simulators; 0 when all went as shown.

    ``mqtt`` is a broker's url (or ``off``) instead of the configuration's. With ``serve``
    the site stays up with its API (on ``port``, or the configuration's) until SIGINT.
    """
    try:
        settings = load_config(config_path)
        if settings.config.orders is None:
            raise ConfigError(f"{config_path}: key orders: is missing; the demo needs a file "
                              f"of sample orders")
        entries = load_orders(settings.resolve(settings.config.orders))
        key = load_audit_key(settings, create=True)
    except (ConfigError, ValueError) as exc:
        console.print(f"[red]error:[/] {exc}")
        return 2
    with tempfile.TemporaryDirectory(prefix="rxfill-demo-") as scratch:
        path = store_path or Path(scratch) / "demo.sqlite"
        api = settings.config.api
        try:
            # With --serve, the API's port is taken first: a port in use is said before any
            # order is filled, not after.
            with supervising(path), (listen(api.host, api.port if port is None else port)
                                     if serve else contextlib.nullcontext()) as sock:
                store = await Store.open(sqlite_url(path), audit_key=key,
                                         formulary=settings.formulary)
                if store.upgraded is not None:
                    console.print(f"store {path} upgraded from schema revision "
                                  f"{store.upgraded[0]} to {store.upgraded[1]}; the store as "
                                  f"it was is kept in {store.backup}")
                try:
                    return await _fill(settings, store, entries, console, path, mqtt, sock,
                                       kept=store_path is not None)
                finally:
                    await store.close()
        except (BinDrugMismatch, StoreInUse, StoreUnusable, PortInUse) as exc:
            console.print(f"[red]error:[/] refusing to start: {exc}")
            return 2


async def _fill(settings: Settings, store: Store, entries: list[OrderEntry], console: Console,
                path: Path, mqtt: str | None, sock: socket.socket | None, *,
                kept: bool = False) -> int:
    passwords = await _people(store)
    async with (broker_link(settings, mqtt) as link, simulated_robots(settings, store) as sims,
                label_printer(settings) as (printer, printer_sim)):
        _say_where(console, sims, path, passwords if kept else None,
                   f"{'off' if link is None else link.url} (topics rxfill/"
                   f"{settings.config.site.id}/...)")
        supervisor = Supervisor(settings, store, urls={r: s.url for r, s in sims.items()},
                                mqtt=link)
        pharmacy = Pharmacy(settings, store, supervisor, printer=printer)
        pharmacy.simulated(sims)
        floor = DemoFloor(console, pharmacy, sims)
        supervisor.subscribe(floor.on_notice)
        async with contextlib.AsyncExitStack() as stack:
            board = None
            if link is not None:
                try:
                    board = await stack.enter_async_context(
                        AlarmBoard(console, link, settings.config.site.id, floor.on_low,
                                   floor.on_alarm))
                except aiomqtt.MqttError as exc:
                    console.print(f"[yellow]mqtt: broker {link.host}:{link.port} unreachable "
                                  f"({exc}): the fills go on; alarms and robot states wait "
                                  f"in the store's outbox until it answers[/]")
            await stack.enter_async_context(supervisor)
            console.print(f"filling {len(entries)} sample orders on "
                          f"{', '.join(supervisor.robots)}")
            ids = await _submit(pharmacy, floor, entries, console)
            if ids is None:
                return 1
            try:
                async with asyncio.timeout(DEMO_TIMEOUT_S):
                    orders = await supervisor.wait_settled(ids)
                    await floor.finish()
                    if board is not None:
                        await board.settled()
                        await floor.finish()
                    await pharmacy.idle()
            except TimeoutError:
                console.print(f"[red]error:[/] orders or alarms were still open after "
                              f"{DEMO_TIMEOUT_S} s")
                return 1
            await _count_by_hand(pharmacy, console, ids)
            await pharmacy.idle()
            if printer_sim is not None and not await _verify_and_release(
                    pharmacy, printer_sim, console):
                return 1
            orders = [await store.orders.order(order.id) for order in orders]
            console.print(await _table(settings, store, orders))
            console.print(await _summary(store, orders))
            if sock is not None:
                await _serve(pharmacy, console, passwords, sock)
            await pharmacy.close()
    return 0


def _say_where(console: Console, sims: dict[str, Simulator], path: Path,
               passwords: dict[str, str] | None, mqtt: str) -> None:
    """Where the simulators, the store and the broker are, and a kept store's people."""
    for robot, sim in sims.items():
        console.print(f"simulator {robot} listening on {sim.url}")
    console.print(f"store: {path}")
    if passwords is not None:  # its people sign in to the CLI afterwards (--user NAME)
        console.print("people of this store (a new password each run): " + ", ".join(
            f"{p.name} ({', '.join(sorted(p.roles))}): {passwords[p.name]}"
            for p in (ADMIN, TECHNICIAN, PHARMACIST)))
    console.print(f"mqtt: {mqtt}")


async def _people(store: Store) -> dict[str, str]:
    """The demo's people in the store, each with a new password (returned by name)."""
    passwords = {person.name: secrets.token_urlsafe(9)
                 for person in (ADMIN, TECHNICIAN, PHARMACIST)}
    users = await store.people.users()
    known = {u.name for u in users}
    if ADMIN.name not in known:
        # The store's first admin, unless a kept store has one already.
        first = not any(Role.ADMIN in u.roles for u in users)
        await store.people.add_user(ADMIN.name, ADMIN.roles, passwords[ADMIN.name],
                                    by=None if first else ADMIN)
    else:
        await store.people.set_password(ADMIN.name, passwords[ADMIN.name], by=ADMIN)
    for person in (TECHNICIAN, PHARMACIST):
        if person.name not in known:
            await store.people.add_user(person.name, person.roles, passwords[person.name], by=ADMIN)
        else:
            await store.people.set_password(person.name, passwords[person.name], by=ADMIN)
    return passwords


async def _submit(pharmacy: Pharmacy, floor: DemoFloor, entries: list[OrderEntry],
                  console: Console) -> list[int] | None:
    """The sample orders taken by the technician; None (said why) if one is refused."""
    ids = []
    today = pharmacy.supervisor.clock.now().date()
    for entry in entries:
        try:
            record, _ = await pharmacy.submit(entry.to_order(written=today), TECHNICIAN)
        except OrderInvalid as exc:
            console.print(f"[red]error:[/] order {entry.rx_number} refused: {exc}")
            return None
        floor.entries[record.id] = entry
        ids.append(record.id)
    return ids


async def _count_by_hand(pharmacy: Pharmacy, console: Console, ids: list[int]) -> None:
    """The technician counts by hand each vial the scale could not tell n from n ± 1 for,
    as the recovery rules say, and weighs it on the bench scale."""
    for order_id in ids:
        fills = await pharmacy.store.orders.fills(order_id)
        last = fills[-1] if fills else None
        order = await pharmacy.store.orders.order(order_id)
        if (order.state is not OrderState.EXCEPTION or last is None
                or last.outcome != FillOutcome.COUNT_BY_HAND or last.weight_mg is None):
            continue
        found = last.counted or 0  # the robot's count was right; the scale could not say
        await pharmacy.hand_count(order_id, TECHNICIAN, order.quantity,
                                  float(last.weight_mg), None, found)
        console.print(f"  order {order_id:>3}  technician {TECHNICIAN.name} counted the vial "
                      f"by hand: {found}, {last.weight_mg} mg; [green]filled[/]")


async def _verify_and_release(pharmacy: Pharmacy, printer: PrinterSimulator,
                              console: Console) -> bool:
    """The technician scans each printed label onto its vial; the pharmacist checks the
    evidence, verifies and releases it. False if any step was refused."""
    codes = printer.barcodes()
    console.print(f"label printer: {len(codes)} label(s) printed")
    for code in codes:
        vial = await pharmacy.vial_for_label(code)
        order_id = (await pharmacy.store.vials.vial(vial))[1].id
        try:
            if (await pharmacy.store.orders.order(order_id)).state is OrderState.FILLED:
                await pharmacy.scan_label(order_id, code, TECHNICIAN)
            evidence = await pharmacy.evidence(vial, PHARMACIST)
            await pharmacy.verify(vial, PHARMACIST)
            released = await pharmacy.release(vial, PHARMACIST, "pickup", None, None)
        except WorkflowError as exc:
            console.print(f"[red]error:[/] order {order_id}: {exc}")
            return False
        lots = ", ".join(lot["lot"] for lot in evidence.lots)
        console.print(f"  order {order_id:>3}  label {code} scanned onto the vial by "
                      f"{TECHNICIAN.name}; {evidence.fill.counted} counted, weight "
                      f"{evidence.fill.verdict}, lot {lots}: verified by {PHARMACIST.name}, "
                      f"[green]{released.state}[/] to the pickup bin")
    return True


async def _serve(pharmacy: Pharmacy, console: Console, passwords: dict[str, str],
                 sock: socket.socket) -> None:
    api = pharmacy.settings.config.api
    async with api_server(pharmacy, api.host, api.port, sock) as url:
        console.print(f"serving the API at {url} (OpenAPI at {url}/docs) and the console at "
                      f"{url}/; sign in as "
                      + ", ".join(f"{name} / {password}" for name, password in
                                  passwords.items())
                      + "; Ctrl-C stops", soft_wrap=True)  # one line, for whoever reads it
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()


async def _summary(store: Store, orders: list[OrderRecord]) -> str:
    """The demo in one line: what reached the patient's bin, what a person must see to."""
    released = sum(o.state is OrderState.RELEASED for o in orders)
    exceptions = sum(o.state is OrderState.EXCEPTION for o in orders)
    raised = {e.alarm_id for e in await store.alarms.alarm_history() if e.from_state is None}
    standing = len(await store.alarms.alarms())
    return (f"demo done: {released} of {len(orders)} orders released, {exceptions} in "
            f"exception for a person, {len(raised)} alarm(s) raised, {standing} standing")


async def _table(settings: Settings, store: Store, orders: list[OrderRecord]) -> Table:
    table = Table(title="Demo fills")
    for column in ("order", "drug", "quantity", "robot/bin", "counted", "weight", "outcome",
                   "state"):
        table.add_column(column, justify="right" if column in ("quantity", "counted") else "left")
    for order in orders:
        drug = settings.formulary.get(order.ndc)
        fills = await store.orders.fills(order.id)
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
            outcome, str(order.state))
    return table
