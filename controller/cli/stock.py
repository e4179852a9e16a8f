"""``rxfill stock`` and ``rxfill alarms``: what technicians do at the console, from a shell.

They work on the store directly, beside a running supervisor or without one:
each change is one transaction, and what it announces waits in the outbox
for the supervisor's publisher.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

import typer

from controller.alarms.desk import AlarmDesk
from controller.cli.common import (
    DEMO_CONFIG,
    ConfigOption,
    Credentials,
    PasswordStdinOption,
    StoreOption,
    TokenOption,
    UserOption,
    credentials,
    fail,
    settings_of,
    signed_in,
    with_store,
)
from controller.clock import Clock
from controller.domain import alarm_handling as handling
from controller.domain import alarms as rules
from controller.domain.alarms import AlarmError, AlarmType, iso
from controller.domain.gs1 import ScanError
from controller.domain.roles import Person, RoleError
from controller.domain.stock import RestockRefused
from controller.pharmacy.restocking import QuantityNeeded, Restocked, load_by_scan, restock_by_scan
from controller.store import BinRecord, Store, StoreError

stock_app = typer.Typer(help="Bins: what they hold, restocking by scan, counts, recalls.",
                        no_args_is_help=True)
alarms_app = typer.Typer(help="Alarms: list, acknowledge, shelve, robots out of service.",
                         no_args_is_help=True)

BinArgument = Annotated[str, typer.Argument(help="ROBOT/NUMBER, for example fv1/12.")]


def _bin(text: str) -> tuple[str, int]:
    robot, _, number = text.partition("/")
    if not robot or not number.isdigit():
        raise fail(f"bin {text!r}: expected ROBOT/NUMBER, for example fv1/12", 2)
    return robot, int(number)


STATUS_WORDS = {AlarmType.BIN_EMPTY: "EMPTY", AlarmType.BIN_LOW: "LOW",
                AlarmType.BIN_EXPIRED: "EXPIRED", AlarmType.BIN_EXPIRING: "EXPIRING"}


def _status(desk: AlarmDesk, record: BinRecord, today: date) -> str:
    """The bin's conditions, by the alarm rules themselves (empty says more than low)."""
    kinds = {c.type for c in rules.bin_conditions([desk.facts(record)], {}, today=today,
                                                   thresholds=desk.thresholds)}
    if AlarmType.BIN_EMPTY in kinds:
        kinds.discard(AlarmType.BIN_LOW)
    return " ".join(word for kind, word in STATUS_WORDS.items() if kind in kinds) or "ok"


# -- stock ---------------------------------------------------------------------------------

@stock_app.command("show")
def stock_show(config: ConfigOption = DEMO_CONFIG, store: StoreOption = None) -> None:
    """Every bin: drug, lots (first to be dispensed first), on hand, par, capacity."""
    settings = settings_of(config)

    async def work(db: Store) -> str:
        today = Clock().now().date()
        desk = AlarmDesk(settings, db)
        lines = [f"{'bin':<8} {'drug':<34} {'on hand':>7} {'par':>5} {'cap':>5}  "
                 f"{'status':<14} lots"]
        for b in await db.stock.bins():
            drug = settings.formulary.get(b.ndc)
            lots = ", ".join(f"{lot.lot} exp {lot.expiry:%Y-%m-%d}: {lot.on_hand}"
                             for lot in b.lots)
            lines.append(f"{b.robot + '/' + str(b.bin):<8} "
                         f"{(drug.display_name if drug else b.ndc)[:34]:<34} {b.on_hand:>7} "
                         f"{b.par:>5} {b.capacity:>5}  {_status(desk, b, today):<14} {lots}")
        return "\n".join(lines)
    with_store(config, store, work, announce=True, settings=settings)


Pour = Callable[..., Awaitable[Restocked]]
Say = Callable[[BinRecord, Restocked], str]
QuantityOption = Annotated[int | None, typer.Option(
    help="Tablets poured, for a partial bottle (default: a full bottle of the NDC).", min=1)]


def _scan_into(bin_: str, scan: str, quantity: int | None, creds: Credentials, config: Path,
               store: Path | None, pour: Pour, say: Say) -> None:
    """Pour a scanned bottle into a bin as the signed-in person (a restock or a load), and
    say what it did; a refusal says why, and nothing changed."""
    robot, number = _bin(bin_)
    settings = settings_of(config)

    async def work(db: Store) -> str:
        me = await signed_in(db, creds)
        try:
            before = await db.stock.bin(robot, number)
            done = await pour(settings, db, robot, number, scan, by=me, quantity=quantity)
        except QuantityNeeded as exc:
            raise fail(str(exc), 2) from None
        except (ScanError, RestockRefused, StoreError, RoleError) as exc:
            raise fail(f"refused: {exc}") from None
        return f"{robot}/{number}: " + say(before, done)
    with_store(config, store, work, announce=True, settings=settings)


@stock_app.command("restock")
def stock_restock(
    bin_: BinArgument,
    scan: Annotated[str, typer.Option(help="The stock bottle's GS1 DataMatrix, as scanned.")],
    quantity: QuantityOption = None,
    user: UserOption = None, token: TokenOption = None,
    password_stdin: PasswordStdinOption = False,
    config: ConfigOption = DEMO_CONFIG, store: StoreOption = None,
) -> None:
    """Pour a scanned bottle into a bin; a wrong, expired or nearly expired bottle is refused."""
    def say(_: BinRecord, done: Restocked) -> str:
        cleared = [c.after.id for c in done.alarms if not c.after.active]
        bottle = done.bottle
        return (f"+{done.quantity} of lot {bottle.lot} (expires {bottle.expiry:%Y-%m-%d}, "
                f"serial {bottle.serial}); on hand {done.bin.on_hand}"
                + (f"; alarms cleared: {', '.join(cleared)}" if cleared else ""))
    _scan_into(bin_, scan, quantity, credentials(user, token, password_stdin), config, store,
               restock_by_scan, say)


@stock_app.command("load")
def stock_load(
    bin_: BinArgument,
    scan: Annotated[str, typer.Option(help="A bottle of the bin's new drug, as scanned.")],
    quantity: QuantityOption = None,
    user: UserOption = None, token: TokenOption = None,
    password_stdin: PasswordStdinOption = False,
    config: ConfigOption = DEMO_CONFIG, store: StoreOption = None,
) -> None:
    """Give an empty bin a drug (after `stock unload`; a pharmacist's): the scanned bottle's
    NDC, lot and expiry. Then change the bin's ndc in the configuration to match."""
    def say(before: BinRecord, done: Restocked) -> str:
        bottle = done.bottle
        return (f"now NDC {done.bin.ndc} (was {before.ndc}), {done.quantity} of lot "
                f"{bottle.lot} (expires {bottle.expiry:%Y-%m-%d}); set this bin's ndc to "
                f"{done.bin.ndc} in {config}")
    _scan_into(bin_, scan, quantity, credentials(user, token, password_stdin), config, store,
               load_by_scan, say)


Change = Callable[[Store, BinRecord, Person], Awaitable[BinRecord]]


def _change_bin(bin_: str, config: Path, store: Path | None, what: str, change: Change,
                creds: Credentials) -> None:
    """Change one bin's count as the signed-in person, check its alarms, say before → after
    and what was done."""
    robot, number = _bin(bin_)
    settings = settings_of(config)

    async def work(db: Store) -> str:
        me = await signed_in(db, creds)
        try:
            before = await db.stock.bin(robot, number)
            after = await change(db, before, me)
        except (StoreError, ValueError) as exc:
            raise fail(str(exc)) from None
        await AlarmDesk(settings, db).check_bins()
        return f"{robot}/{number}: {before.on_hand} → {after.on_hand} ({what}, by {me.name})"
    with_store(config, store, work, announce=True, settings=settings)


@stock_app.command("correct")
def stock_correct(
    bin_: BinArgument,
    count: Annotated[int, typer.Option(help="What the bin truly holds.", min=0)],
    reason: Annotated[str, typer.Option(help="Why the record was wrong.")],
    user: UserOption = None, token: TokenOption = None,
    password_stdin: PasswordStdinOption = False,
    config: ConfigOption = DEMO_CONFIG, store: StoreOption = None,
) -> None:
    """Record a counted quantity (a movement of the difference, with who and why)."""
    _change_bin(bin_, config, store, reason, lambda db, b, me: db.stock.correct_bin(
        b.id, count, by=me, reason=reason), credentials(user, token, password_stdin))


@stock_app.command("unload")
def stock_unload(
    bin_: BinArgument,
    reason: Annotated[str, typer.Option(help="Why: a lot change, an expired or recalled lot.")],
    user: UserOption = None, token: TokenOption = None,
    password_stdin: PasswordStdinOption = False,
    config: ConfigOption = DEMO_CONFIG, store: StoreOption = None,
) -> None:
    """Take everything out of a bin (each lot's count, recorded)."""
    _change_bin(bin_, config, store, f"unloaded: {reason}",
                lambda db, b, me: db.stock.unload_bin(b.id, by=me, reason=reason),
                credentials(user, token, password_stdin))


@stock_app.command("recall")
def stock_recall(
    lot: Annotated[str, typer.Option(help="The recalled lot.")],
    config: ConfigOption = DEMO_CONFIG, store: StoreOption = None,
) -> None:
    """Which vials got tablets of a lot (or may have, where the bin mixed lots)."""
    settings = settings_of(config)

    async def work(db: Store) -> str:
        vials = await db.stock.recall(lot)
        if not vials:
            return f"no fill drew lot {lot}"
        lines = [f"{len(vials)} vial(s) may hold lot {lot}:"]
        for v in vials:
            order = await db.orders.order(v.order_id)
            how = "may hold it (lots mixed in the bin)" if v.mixed else "holds it"
            lines.append(f"  fill {v.fill_id}  order {v.order_id} (Rx {order.rx_number})  "
                         f"{v.robot}/{v.bin}  {v.at:%Y-%m-%d %H:%M}  {v.quantity} of the lot; "
                         f"{how}; order {order.state}")
        return "\n".join(lines)
    with_store(config, store, work, announce=True, settings=settings)


# -- alarms --------------------------------------------------------------------------------

@alarms_app.command("list")
def alarms_list(config: ConfigOption = DEMO_CONFIG, store: StoreOption = None) -> None:
    """Standing alarms, most urgent first; in a flood, low and medium ones are counted."""
    settings = settings_of(config)

    async def work(db: Store) -> str:
        clock = Clock()
        raised = await db.alarms.raised_since(clock.now() - handling.FLOOD_WINDOW)
        flood = handling.flooding(raised, False)
        view = handling.annunciate(await db.alarms.alarms(), flood=flood)
        lines = [f"ALARM FLOOD: {raised} alarms raised in the last 10 minutes; urgent ones "
                 f"first, the rest counted"] if flood else []
        for a in view.shown:
            lines.append(f"{a.priority:<8} {a.state:<14} {a.id:<28} {a.text('message')}")
            if a.state is rules.AlarmState.SHELVED:
                lines.append(f"{'':<8} shelved by {a.shelved_by} until {iso(a.shelved_until)}:"
                             f" {a.shelved_reason}")
        lines += [f"{p:<8} {n} × {t}" for t, p, n in view.summarised]
        if not lines:
            return "no standing alarms"
        return "\n".join([f"{'PRIORITY':<8} {'STATE':<14} {'ALARM':<28} MESSAGE", *lines])
    with_store(config, store, work, announce=True, settings=settings)


Act = Callable[[AlarmDesk, Person], Awaitable[list[rules.AlarmChange]]]


def _act(config: ConfigOption, store: StoreOption, action: str, act: Act,
         creds: Credentials) -> None:
    settings = settings_of(config)

    async def work(db: Store) -> str:
        me = await signed_in(db, creds)
        try:
            changes = await act(AlarmDesk(settings, db), me)
        except (AlarmError, RoleError) as exc:
            raise fail(str(exc)) from None
        return "\n".join(f"{c.after.id}: {c.after.state} ({action} by {c.who})"
                         for c in changes) or "nothing to change"
    with_store(config, store, work, announce=True, settings=settings)


@alarms_app.command("ack")
def alarms_ack(alarm: Annotated[str, typer.Argument(help="The alarm's id.")],
               user: UserOption = None, token: TokenOption = None,
               password_stdin: PasswordStdinOption = False,
               config: ConfigOption = DEMO_CONFIG, store: StoreOption = None) -> None:
    """Acknowledge an alarm: you have seen it and take charge."""
    async def act(desk: AlarmDesk, me: Person) -> list[rules.AlarmChange]:
        return [await desk.acknowledge(alarm, me)]
    _act(config, store, "acknowledged", act, credentials(user, token, password_stdin))


@alarms_app.command("shelve")
def alarms_shelve(
    alarm: Annotated[str, typer.Argument(help="The alarm's id.")],
    reason: Annotated[str, typer.Option(help="Why it may be silenced.")],
    minutes: Annotated[int, typer.Option("--for", help="Minutes (at most a day).", min=1)] = 60,
    user: UserOption = None, token: TokenOption = None,
    password_stdin: PasswordStdinOption = False,
    config: ConfigOption = DEMO_CONFIG, store: StoreOption = None,
) -> None:
    """Silence an alarm for a while, saying why; it returns by itself."""
    async def act(desk: AlarmDesk, me: Person) -> list[rules.AlarmChange]:
        until = Clock().now() + timedelta(minutes=minutes)
        return [await desk.shelve(alarm, me, reason, until)]
    _act(config, store, "shelved", act, credentials(user, token, password_stdin))


@alarms_app.command("unshelve")
def alarms_unshelve(alarm: Annotated[str, typer.Argument(help="The alarm's id.")],
                    user: UserOption = None, token: TokenOption = None,
                    password_stdin: PasswordStdinOption = False,
                    config: ConfigOption = DEMO_CONFIG, store: StoreOption = None) -> None:
    """End a shelf early."""
    async def act(desk: AlarmDesk, me: Person) -> list[rules.AlarmChange]:
        return [await desk.unshelve(alarm, me)]
    _act(config, store, "unshelved", act, credentials(user, token, password_stdin))


@alarms_app.command("service")
def alarms_service(
    robot: Annotated[str, typer.Argument(help="The robot's id.")],
    down: Annotated[bool | None, typer.Option(
        "--out/--in", help="--out: out of service; --in: back in service.")] = None,
    user: UserOption = None, token: TokenOption = None,
    password_stdin: PasswordStdinOption = False,
    config: ConfigOption = DEMO_CONFIG, store: StoreOption = None,
) -> None:
    """Take a robot out of service for maintenance (its alarms with it), or bring it back."""
    if down is None:
        raise fail("say --out (take the robot out of service) or --in (bring it back)", 2)

    async def act(desk: AlarmDesk, me: Person) -> list[rules.AlarmChange]:
        return await desk.set_in_service(robot, me, not down)
    _act(config, store, "out of service" if down else "back in service", act,
         credentials(user, token, password_stdin))


@alarms_app.command("history")
def alarms_history(alarm: Annotated[str | None, typer.Argument(help="One alarm's id.")] = None,
                   config: ConfigOption = DEMO_CONFIG, store: StoreOption = None) -> None:
    """Every recorded change of the alarms' states: when, who, from, to, why."""
    settings = settings_of(config)

    async def work(db: Store) -> str:
        events = await db.alarms.alarm_history(alarm)
        if not events:
            return f"no history of alarm {alarm}" if alarm else "no alarm history"
        head = f"{'WHEN':<24}  {'ALARM':<28} {'FROM':>14}   {'TO':<14} WHO: WHY"
        return "\n".join([head, *(f"{iso(e.at)}  {e.alarm_id:<28} {e.from_state or '-':>14} → "
                                  f"{e.to_state:<14} {e.who}"
                                  + (f": {e.reason}" if e.reason else "") for e in events)])
    with_store(config, store, work, announce=True, settings=settings)
