"""``rxfill store``: the store file itself (its schema's revision, its upgrade)."""

from __future__ import annotations

import asyncio

import typer

from controller.audit_key import load_audit_key
from controller.cli_common import (
    DEMO_CONFIG,
    ConfigOption,
    StoreOption,
    fail,
    settings_of,
    store_path,
)
from controller.store import Store, sqlite_url
from controller.store.lock import StoreInUse, supervising
from controller.store.revisions import StoreUnusable

store_app = typer.Typer(help="The store file: upgrade it to this rxfill's schema.",
                        no_args_is_help=True)


@store_app.command("upgrade")
def upgrade(config: ConfigOption = DEMO_CONFIG, store: StoreOption = None) -> None:
    """Bring an older store to this rxfill's schema, after a backup copy beside it (named).
    Refused while a supervisor runs on it."""
    settings = settings_of(config)
    path = store_path(config, store, settings)
    try:
        key = load_audit_key(settings, create=True)
    except ValueError as exc:
        raise fail(str(exc), 2) from None

    async def run() -> str:
        opened = await Store.open(sqlite_url(path), audit_key=key,
                                  formulary=settings.formulary, upgrade=True)
        try:
            if opened.upgraded is None:
                return f"{path}: already at this rxfill's schema; nothing to do"
            was, now = opened.upgraded
            return (f"{path}: upgraded from schema revision {was} to {now}; the store as it "
                    f"was is kept in {opened.backup}")
        finally:
            await opened.close()

    try:
        with supervising(path):
            typer.echo(asyncio.run(run()))
    except (StoreUnusable, StoreInUse) as exc:
        raise fail(str(exc), 2) from None
