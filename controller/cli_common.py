"""What every ``rxfill`` subcommand that opens the store shares."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import typer

from controller.audit_key import load_audit_key
from controller.config import ConfigError, Settings, load_config
from controller.messages import Topics
from controller.store import Store, sqlite_url

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "config" / "demo.toml"

StoreOption = Annotated[Path | None, typer.Option(
    help="SQLite store (default: the configuration's [store] path).")]
ConfigOption = Annotated[Path, typer.Option(help="Configuration file.")]
WhoOption = Annotated[str, typer.Option(help="Your name, recorded with what you do.")]


def settings_of(config: Path) -> Settings:
    """The checked configuration, or exit 2 saying what is wrong with it."""
    try:
        return load_config(config)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def store_path(config: Path, store: Path | None, settings: Settings | None = None) -> Path:
    """The store file to open: ``--store``, or the configuration's; it must exist."""
    if store is None:
        settings = settings or settings_of(config)
        store = settings.resolve(settings.config.store.path)
    if not store.is_file():
        typer.echo(f"{store}: no such store file; expected the SQLite file rxfill keeps "
                   f"(--store, or [store] path in the configuration)", err=True)
        raise typer.Exit(2)
    return store


def with_store(config: Path, store: Path | None, work: Callable[[Store], Awaitable[str]], *,
               announce: bool = False, settings: Settings | None = None) -> None:
    """Open the store (``--store``, or the configuration's) with the audit key, do ``work``,
    print what it says. With ``announce`` and MQTT on, what the work announces goes to the
    outbox (a running supervisor sends it)."""
    settings = settings or settings_of(config)
    path = store_path(config, store, settings)
    try:
        key = load_audit_key(settings, create=True)
    except ValueError as exc:
        raise fail(str(exc), 2) from None

    async def run() -> str:
        opened = await Store.open(sqlite_url(path), audit_key=key,
                                  formulary=settings.formulary)
        if announce and settings.config.mqtt.broker != "off":
            opened.topics = Topics(settings.config.site.id)
        try:
            return await work(opened)
        finally:
            await opened.close()
    typer.echo(asyncio.run(run()))


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` to stderr; the caller raises what this returns."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)
