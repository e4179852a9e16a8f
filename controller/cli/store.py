"""``rxfill store``: the store file itself (its schema's revision, its upgrade)."""

from __future__ import annotations

import typer

from controller.cli.common import (
    DEMO_CONFIG,
    ConfigOption,
    StoreOption,
    fail,
    store_path,
    with_store,
)
from controller.store import Store
from controller.store.lock import StoreInUse, supervising

store_app = typer.Typer(help="The store file: upgrade it to this rxfill's schema.",
                        no_args_is_help=True)


@store_app.command("upgrade")
def upgrade(config: ConfigOption = DEMO_CONFIG, store: StoreOption = None) -> None:
    """Bring an older store to this rxfill's schema, after a backup copy beside it (named).
    Refused while a supervisor runs on it."""
    path = store_path(config, store)

    async def work(opened: Store) -> str:
        if opened.upgraded is None:
            return f"{path}: already at this rxfill's schema; nothing to do"
        was, now = opened.upgraded
        return (f"{path}: upgraded from schema revision {was} to {now}; the store as it "
                f"was is kept in {opened.backup}")

    try:
        with supervising(path):
            with_store(config, path, work, upgrade=True)
    except StoreInUse as exc:
        raise fail(str(exc), 2) from None
