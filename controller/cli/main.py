"""The ``rxfill`` command."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import signal
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from controller.audit_key import AuditKeyMissing, load_audit_key
from controller.cli import channels  # noqa: F401  (calibrate channel, history, restore)
from controller.cli.calibrate import calibrate_app
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
from controller.cli.diag import diag_app, drivers
from controller.cli.orders import orders_app, robots_app, sign_in
from controller.cli.people import users_app
from controller.cli.registers import diag_registers
from controller.cli.simulate import simulate_app
from controller.cli.stock import alarms_app, stock_app
from controller.cli.store import store_app
from controller.config import broker_address, load_config
from controller.domain.roles import RoleError
from controller.logs import Format, configure_logging
from controller.reading import ConfigError
from controller.store import Store, StoreError
from controller.store.lock import StoreInUse
from controller.store.revisions import StoreUnusable
from controller.store.stock import BinDrugMismatch

app = typer.Typer(help="rxfill: control software for automated pharmacies.",
                  no_args_is_help=True, pretty_exceptions_enable=False)


def _version(shown: bool) -> None:
    if shown:
        typer.echo(f"rxfill {importlib.metadata.version('rxfill')}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True,
        help="Print rxfill's version and exit.")] = False) -> None:
    """rxfill: control software for automated pharmacies."""
config_app = typer.Typer(help="Check configuration files.", no_args_is_help=True)
vials_app = typer.Typer(help="Partial vials set aside after a failed fill.", no_args_is_help=True)
app.add_typer(simulate_app, name="simulate")
app.add_typer(config_app, name="config")
app.add_typer(vials_app, name="vials")
app.add_typer(stock_app, name="stock")
app.add_typer(alarms_app, name="alarms")
app.add_typer(users_app, name="users")
app.add_typer(orders_app, name="orders")
app.add_typer(robots_app, name="robots")
app.add_typer(store_app, name="store")
app.add_typer(diag_app, name="diag")
diag_app.command("registers")(diag_registers)
app.add_typer(calibrate_app, name="calibrate")
app.command("drivers")(drivers)
app.command("sign-in")(sign_in)
audit_app = typer.Typer(help="The audit trail: verify its chain, export it.",
                        no_args_is_help=True)
app.add_typer(audit_app, name="audit")

class LogLevel(StrEnum):
    """Log levels a command accepts."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"





@app.command()
def demo(
    config: Annotated[Path, typer.Option(help="Configuration file.")] = DEMO_CONFIG,
    store: Annotated[Path | None, typer.Option(
        help="SQLite file to keep (default: a fresh temporary file).")] = None,
    log_level: Annotated[LogLevel | None, typer.Option(
        help="Log level (default: warning; the demo prints its own story).")] = None,
    mqtt: Annotated[str | None, typer.Option(help=(
        "Publish to this broker, mqtt://HOST:PORT, instead of the configuration's "
        "(embedded); 'off' for none."))] = None,
    serve: Annotated[bool, typer.Option(help=(
        "After the orders, keep the site up with its REST API until Ctrl-C; the demo's "
        "technician and pharmacist can sign in."))] = False,
    port: Annotated[int | None, typer.Option(help=(
        "With --serve: the API's port (default: the configuration's [api] port; 0 for any "
        "free port)."))] = None,
) -> None:
    """Start the simulators and the supervisor in one process and fill the sample orders."""
    from controller.demo.run import run_demo

    _check_broker(mqtt)
    fmt: Format = "auto"
    with contextlib.suppress(ConfigError):
        fmt = load_config(config).config.logging.format
    # The demo's own lines tell the story: its logs are for trouble (warnings) unless asked;
    # on a terminal each warning is shown once.
    level = log_level.value if log_level is not None else "warning"
    configure_logging(level, fmt, once=sys.stderr.isatty())
    # `rxfill demo | head` ends quietly, as other command-line tools do.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    console = Console() if sys.stdout.isatty() else Console(width=160)
    raise typer.Exit(asyncio.run(run_demo(config, store, console, mqtt, serve, port)))


def _check_broker(url: str | None) -> None:
    if url is None or url in ("off", "embedded"):
        return
    try:
        broker_address(url)
    except ValueError as exc:
        typer.echo(f"error: --mqtt: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def run(
    config: Annotated[Path, typer.Option(help="Configuration file.")] = DEMO_CONFIG,
    store: Annotated[Path | None, typer.Option(
        help="SQLite file (default: the configuration's [store] path).")] = None,
    mqtt: Annotated[str | None, typer.Option(
        help="Broker to publish to, mqtt://HOST:PORT (default: the configuration's).")] = None,
    port: Annotated[int | None, typer.Option(
        help="Serve the API on this port (default: the configuration's [api] port; 0 for "
             "any free port).")] = None,
) -> None:
    """Run the supervisor and its REST API on a configuration until SIGINT or SIGTERM."""
    from controller.site import PortInUse, run_site

    _check_broker(mqtt)
    try:
        settings = load_config(config)
        key = load_audit_key(settings, create=True)
    except (ConfigError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.config.logging.level, settings.config.logging.format)
    path = store or settings.resolve(settings.config.store.path)
    try:
        asyncio.run(run_site(settings, path, mqtt, lambda line: print(line, flush=True),
                             audit_key=key, port=port))
    except (BinDrugMismatch, StoreInUse, StoreUnusable, PortInUse) as exc:
        typer.echo(f"error: refusing to start: {exc}", err=True)
        raise typer.Exit(2) from None


@config_app.command("check")
def config_check(path: Annotated[Path, typer.Argument(help="Configuration file.")]) -> None:
    """Validate a configuration file and its formulary; say what is wrong."""
    try:
        settings = load_config(path)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    robots = ", ".join(r.id for r in settings.config.robots)
    typer.echo(f"{path}: ok ({len(settings.config.robots)} robot(s): {robots}; "
               f"{len(settings.formulary)} drugs in the formulary)")




@vials_app.command("list")
def vials_list(config: ConfigOption = DEMO_CONFIG, store: StoreOption = None,
               all_: Annotated[bool, typer.Option("--all", help="Include those decided.")] = False,
               ) -> None:
    """The partial vials waiting for a technician's decision (or all of them)."""
    async def work(db: Store) -> str:
        vials = await db.vials.set_aside_vials(pending_only=not all_)
        fills = {f.id: f for f in await db.orders.fills()}
        lines = [f"{v.id:>5}  fill {v.fill_id} (order {fills[v.fill_id].order_id}, "
                 f"{fills[v.fill_id].robot} bin {fills[v.fill_id].bin}): {v.count} tablets, "
                 f"{v.disposition or 'waiting'}"
                 + (f" by {v.disposed_by}" if v.disposed_by else "") for v in vials]
        if not lines:
            return "no partial vials" if all_ else "no partial vials waiting"
        return "\n".join([f"{'ID':>5}  VIAL", *lines])
    with_store(config, store, work)


def _dispose(vial: int, disposition: str, config: Path, store: Path | None,
             creds: Credentials) -> None:
    async def work(db: Store) -> str:
        me = await signed_in(db, creds)
        try:
            done = await db.vials.dispose_vial(vial, disposition, by=me)
        except (StoreError, RoleError) as exc:
            raise fail(str(exc)) from None
        return f"vial {done.id}: {done.count} tablets {done.disposition} by {done.disposed_by}"
    with_store(config, store, work)


@vials_app.command("return")
def vials_return(vial: Annotated[int, typer.Argument(help="The set-aside vial's id.")],
                 user: UserOption = None, token: TokenOption = None,
                 password_stdin: PasswordStdinOption = False,
                 config: ConfigOption = DEMO_CONFIG, store: StoreOption = None) -> None:
    """Its tablets went back into the bin they came from (recorded as a bin movement)."""
    _dispose(vial, "returned", config, store, credentials(user, token, password_stdin))


@vials_app.command("waste")
def vials_waste(vial: Annotated[int, typer.Argument(help="The set-aside vial's id.")],
                user: UserOption = None, token: TokenOption = None,
                password_stdin: PasswordStdinOption = False,
                config: ConfigOption = DEMO_CONFIG, store: StoreOption = None) -> None:
    """Its tablets were destroyed (they stay off the bin)."""
    _dispose(vial, "wasted", config, store, credentials(user, token, password_stdin))


@audit_app.command("verify")
def audit_verify(config: ConfigOption = DEMO_CONFIG, store: StoreOption = None) -> None:
    """Check that no audit entry was edited, removed, reordered or rewritten without the audit
    key (exit 1 if any was, naming each)."""
    settings = settings_of(config)
    try:
        key = load_audit_key(settings, create=False)
    except (AuditKeyMissing, ValueError) as exc:
        raise fail(f"{exc}; without it the trail cannot be shown whole", 2) from None

    async def work(db: Store) -> str:
        problems = await db.audit.verify_audit(key)
        if problems:
            typer.echo("\n".join(f"BROKEN: {p}" for p in problems), err=True)
            raise typer.Exit(1)
        return (f"audit trail whole: {len(await db.audit.audit_trail())} entries, chain intact, "
                f"each anchored by audit key {key.id}")
    with_store(config, store, work, settings=settings)


@audit_app.command("export")
def audit_export(config: ConfigOption = DEMO_CONFIG, store: StoreOption = None) -> None:
    """Every audit entry as a JSON line: seq, at, who, action, subject, before, after, hashes,
    anchor (as stored, even where malformed)."""
    async def work(db: Store) -> str:
        try:
            rows = await db.audit.audit_rows()
        except StoreError as exc:
            raise fail(str(exc)) from None
        return "\n".join(json.dumps(row, ensure_ascii=False, default=str) for row in rows)
    with_store(config, store, work)


@app.command()
def rules() -> None:
    """Print the recovery rules: what happens to an order and a robot for each problem."""
    from controller.domain.recovery import rules_markdown

    typer.echo(rules_markdown())
