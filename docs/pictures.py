"""Draw the README's pictures: a vial label (docs/label.png) and the demo's table
(docs/demo-table.svg). ``make pictures`` runs it; every name in them is made up."""

from __future__ import annotations

import asyncio
import io
import tempfile
from datetime import date
from pathlib import Path

from rich.console import Console

from controller.audit_key import load_audit_key
from controller.config import load_config
from controller.demo.run import _summary, _table, run_demo
from controller.domain.labels import label_content, layout
from controller.pharmacy.previews import render_png
from controller.store import Store, sqlite_url

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CONFIG = ROOT / "config" / "demo.toml"


def label() -> None:
    settings = load_config(CONFIG)
    content = label_content(
        pharmacy=("Riverside Community Pharmacy", "12 Mill Lane, Springfield, IL 62701",
                  "(217) 555-0142"),
        rx_number="RX7001001", filled_on=date(2026, 11, 30), patient_name="Renée Díaz-Muñoz",
        sig="Take 1 tablet by mouth once daily at bedtime.",
        drug=settings.formulary["00093-7146-01"], quantity=30, prescriber="Grace Baker, MD",
        refills=2, lots=[("AT24190", date(2027, 11, 30))], pharmacist="Phil Gray, RPh",
        code="F00000123")
    (DOCS / "label.png").write_bytes(render_png(layout(content), scale=2))


async def table() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "demo.sqlite"
        quiet = Console(file=io.StringIO(), width=160)
        assert await run_demo(CONFIG, path, quiet, mqtt="off") == 0
        settings = load_config(CONFIG)
        store = await Store.open(sqlite_url(path), audit_key=load_audit_key(settings, create=True),
                                 formulary=settings.formulary)
        try:
            orders = await store.orders.orders()
            shown = Console(record=True, width=150, file=io.StringIO())
            shown.print(await _table(settings, store, orders))
            shown.print(await _summary(store, orders))
        finally:
            await store.close()
    shown.save_svg(str(DOCS / "demo-table.svg"), title="rxfill demo")


if __name__ == "__main__":
    label()
    asyncio.run(table())
    print(f"drew {DOCS / 'label.png'} and {DOCS / 'demo-table.svg'}")
