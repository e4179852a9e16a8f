"""The audit trail: every action recorded and chained; the database refuses to change it; any
edited, removed or reordered entry is found."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.domain.audit import GENESIS, AuditEntry, AuditKey, entry_hash, verify_chain
from controller.domain.orders import OrderState
from controller.store import Store, sqlite_url
from tests.floors import ATORVASTATIN, order
from tests.helpers import AUDIT_KEY, cli_env, formulary, tech
from tests.test_cli import RXFILL
from tests.test_stock import BIN

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def chain(n: int) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    previous = GENESIS
    for seq in range(1, n + 1):
        at = T0 + timedelta(seconds=seq)
        after = {"state": f"s{seq}"}
        digest = entry_hash(previous, seq, at, "ana", "order queued", f"order:{seq}", None, after)
        entries.append(AuditEntry(seq, at, "ana", "order queued", f"order:{seq}", None, after,
                                  previous, digest))
        previous = digest
    return entries


def test_a_whole_chain_verifies() -> None:
    entries = chain(5)
    assert verify_chain(entries, (5, entries[-1].hash)) == []
    assert verify_chain([], None) == []


@given(st.integers(2, 12), st.data())
def test_any_edit_removal_or_reordering_is_found(n: int, data: st.DataObject) -> None:
    entries = chain(n)
    head = (n, entries[-1].hash)
    how = data.draw(st.sampled_from(["edit", "who", "remove", "swap", "cut"]))
    i = data.draw(st.integers(0, n - 1))
    if how == "edit":
        entries[i] = replace(entries[i], after={"state": "forged"})
    elif how == "who":
        entries[i] = replace(entries[i], who="mallory")
    elif how == "remove":
        del entries[i]
    elif how == "cut":
        entries = entries[:i]
    else:
        j = data.draw(st.integers(0, n - 1).filter(lambda j: j != i))
        entries[i], entries[j] = entries[j], entries[i]
    assert verify_chain(entries, head) != []


async def test_every_action_is_recorded_with_who_and_the_chain_holds(store: Store) -> None:
    await store.stock.ensure_bins([BIN])
    received, _ = await store.orders.receive_order(order(ATORVASTATIN, 10))
    await store.orders.move_order(received.id, OrderState.QUEUED, who="ana")
    (record,) = await store.stock.bins()
    await store.stock.correct_bin(record.id, 90, by=tech("ben"), reason="counted")
    trail = await store.audit.audit_trail()
    assert [(e.who, e.action, e.subject) for e in trail] == [
        ("supervisor", "bin load", "bin:tc1/1"),
        ("supervisor", "bin calibrated", "bin:tc1/1"),
        ("supervisor", "order received", f"order:{received.id}"),
        ("ana", "order queued", f"order:{received.id}"),
        ("ben", "bin correction", "bin:tc1/1"),
    ]
    assert trail[3].before == {"state": "received"}
    assert trail[4].after == {"quantity": -10, "lot": "OLD1", "expiry": "2027-03-31",
                              "reason": "counted"}
    assert await store.audit.verify_audit() == []
    assert "Pat Example" not in repr(trail)  # the trail names records, never patients


async def filled_store(path: Path, key: AuditKey | None = AUDIT_KEY) -> None:
    """A store with a bin and three orders taken and queued, its trail anchored by ``key``."""
    store = await Store.open(sqlite_url(path), audit_key=key, formulary=formulary())
    try:
        await store.stock.ensure_bins([BIN])
        for quantity in (10, 20, 30):
            received, _ = await store.orders.receive_order(order(ATORVASTATIN, quantity))
            await store.orders.move_order(received.id, OrderState.QUEUED, who="ana")
    finally:
        await store.close()


async def test_the_database_refuses_to_change_or_remove_an_entry(tmp_path: Path) -> None:
    path = tmp_path / "rx.sqlite"
    await filled_store(path)
    with sqlite3.connect(path) as raw:
        with pytest.raises(sqlite3.DatabaseError, match="append-only: UPDATE refused"):
            raw.execute("UPDATE audit SET who = 'mallory' WHERE seq = 2")
        with pytest.raises(sqlite3.DatabaseError, match="append-only: DELETE refused"):
            raw.execute("DELETE FROM audit WHERE seq = 2")


@pytest.mark.parametrize(("tamper", "says"), [
    ("UPDATE audit SET who = 'mallory' WHERE seq = 4",
     "entry 4 (order queued on order:1 by mallory) was edited"),
    ("DELETE FROM audit WHERE seq = 4", "entry 4 is missing"),
    ("DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit)", "removed from the end"),
    ("UPDATE audit SET seq = -seq WHERE seq IN (2, 3); "
     "UPDATE audit SET seq = 3 WHERE seq = -2; UPDATE audit SET seq = 2 WHERE seq = -3",
     "does not follow"),
])
def test_audit_verify_finds_what_someone_with_the_file_did(tmp_path: Path, tamper: str,
                                                           says: str) -> None:
    path = tmp_path / "rx.sqlite"
    asyncio.run(filled_store(path))
    ok = subprocess.run([*RXFILL, "audit", "verify", "--store", str(path)], capture_output=True,
                        text=True, timeout=60, env=cli_env())
    assert ok.returncode == 0 and "chain intact" in ok.stdout, ok.stderr
    with sqlite3.connect(path) as raw:  # someone goes round the triggers
        raw.executescript("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete; "
                          + tamper)
    broken = subprocess.run([*RXFILL, "audit", "verify", "--store", str(path)],
                            capture_output=True, text=True, timeout=60, env=cli_env())
    assert broken.returncode == 1 and says in broken.stderr, broken.stderr
    exported = subprocess.run([*RXFILL, "audit", "export", "--store", str(path)],
                              capture_output=True, text=True, timeout=60, env=cli_env())
    assert exported.returncode == 0 and '"action": "order queued"' in exported.stdout
