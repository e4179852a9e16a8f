"""Issue 11, item 13: the audit trail cannot be rewritten through SQLite, a malformed row is
named (never a traceback), and the chain is anchored outside the database: someone who
rewrites the whole table and its head is still found."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from controller.domain.audit import GENESIS
from controller.store import Store, sqlite_url
from tests.helpers import AUDIT_KEY, cli_env
from tests.test_audit import filled_store
from tests.test_cli import RXFILL


@pytest.fixture
def trail(tmp_path: Path) -> Path:
    path = tmp_path / "rx.sqlite"
    asyncio.run(filled_store(path))
    return path


def _verify(path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RXFILL, "audit", "verify", "--store", str(path)],
                          capture_output=True, text=True, timeout=60, env=cli_env(**env))


@pytest.mark.parametrize("statement", [
    "INSERT OR REPLACE INTO audit (seq, at, who, action, subject, before, after, prev_hash, "
    "hash) SELECT seq, at, 'mallory', action, subject, before, after, prev_hash, hash "
    "FROM audit WHERE seq = 2",
    "REPLACE INTO audit (seq, at, who, action, subject, before, after, prev_hash, hash) "
    "SELECT seq, at, 'mallory', action, subject, before, after, prev_hash, hash "
    "FROM audit WHERE seq = 2",
    "INSERT INTO audit (seq, at, who, action, subject, before, after, prev_hash, hash) "
    "SELECT seq, at, 'mallory', action, subject, before, after, prev_hash, hash "
    "FROM audit WHERE seq = 2 ON CONFLICT (seq) DO UPDATE SET who = excluded.who",
    "INSERT INTO audit (seq, at, who, action, subject, prev_hash, hash) "
    "VALUES (99, '2026-11-30 10:00:00.000000', 'mallory', 'x', 'y', 'z', 'w')",
])
def test_sqlite_cannot_rewrite_or_slip_in_an_entry_with_the_triggers_in_place(
        trail: Path, statement: str) -> None:
    # Before: INSERT OR REPLACE and REPLACE INTO replaced row 2 (a replace's delete fires
    # no DELETE trigger) and the triggers said nothing.
    with sqlite3.connect(trail) as raw:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            raw.execute(statement)
        assert raw.execute("SELECT who FROM audit WHERE seq = 2").fetchone()[0] == "supervisor"


@pytest.mark.parametrize(("tamper", "says"), [
    ("UPDATE audit SET after = '{not json' WHERE seq = 3", "entry 3 is malformed: its 'after'"),
    ("UPDATE audit SET at = 'yesterday' WHERE seq = 2",
     "entry 2 is malformed: its time 'yesterday' is not a timestamp"),
    ("UPDATE audit SET who = '' WHERE seq = 4", "entry 4 is malformed: a required field"),
    ("DROP TABLE audit", "the audit trail cannot be read: no such table: audit"),
    ("UPDATE store_info SET value = 'garbage' WHERE key = 'audit_head'",
     "the audit trail's head cannot be read"),
])
def test_audit_verify_names_a_malformed_row_and_exits_1_without_a_traceback(
        trail: Path, tamper: str, says: str) -> None:
    with sqlite3.connect(trail) as raw:
        raw.executescript("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete; "
                          + tamper)
    broken = _verify(trail)
    assert broken.returncode == 1, broken.stderr
    assert says in broken.stderr, broken.stderr
    assert "Traceback" not in broken.stderr
    exported = subprocess.run([*RXFILL, "audit", "export", "--store", str(trail)],
                              capture_output=True, text=True, timeout=60, env=cli_env())
    assert "Traceback" not in exported.stderr


def _rewrite_everything(path: Path) -> None:
    """What someone with the file and SQLite does: forge one entry, recompute every later
    hash and the head, so that the chain alone verifies."""
    with sqlite3.connect(path) as raw:
        raw.executescript("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete; "
                          "DROP TRIGGER audit_append_only;")
        rows = raw.execute("SELECT seq, at, who, action, subject, before, after FROM audit "
                           "ORDER BY seq").fetchall()
        previous = GENESIS
        for seq, at, who, action, subject, before, after in rows:
            if seq == 3:
                who = "mallory"
            body = json.dumps([previous, seq, at.replace(" ", "T") + "+00:00", who, action,
                               subject, json.loads(before) if before else None,
                               json.loads(after) if after else None],
                              sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            digest = hashlib.sha256(body.encode()).hexdigest()
            raw.execute("UPDATE audit SET who = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                        (who, previous, digest, seq))
            previous = digest
        raw.execute("UPDATE store_info SET value = ? WHERE key = 'audit_head'",
                    (f"{rows[-1][0]}:{previous}",))


def test_a_rewrite_of_the_whole_table_and_its_head_is_found_with_the_key(trail: Path) -> None:
    _rewrite_everything(trail)
    # The chain alone is whole again: only the key, kept outside the database, finds it.
    assert asyncio.run(_verify_chain_only(trail)) == []
    broken = _verify(trail)
    assert broken.returncode == 1
    assert "entry 3's anchor does not match its hash" in broken.stderr, broken.stderr


async def _verify_chain_only(path: Path) -> list[str]:
    store = await Store.open(sqlite_url(path))
    try:
        return await store.audit.verify_audit()
    finally:
        await store.close()


def test_entries_written_without_the_key_or_with_another_are_named(tmp_path: Path) -> None:
    path = tmp_path / "rx.sqlite"
    asyncio.run(filled_store(path, key=None))
    unkeyed = _verify(path)
    assert unkeyed.returncode == 1 and "entry 1 carries no anchor" in unkeyed.stderr
    other = _verify(path, RXFILL_AUDIT_KEY="a different key, long enough")
    assert other.returncode == 1 and "entry 1 carries no anchor" in other.stderr


def test_verify_without_any_key_says_what_it_needs(trail: Path, tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    demo = Path(__file__).resolve().parent.parent / "config"
    text = (demo / "demo.toml").read_text().replace('key_file = "../var/audit.key"',
                                                    'key_file = "nowhere/audit.key"')
    config.write_text(text.replace('formulary = "formulary.csv"',
                                   f'formulary = "{demo / "formulary.csv"}"'))
    env = cli_env()
    del env["RXFILL_AUDIT_KEY"]
    run = subprocess.run([*RXFILL, "audit", "verify", "--config", str(config), "--store",
                          str(trail)], capture_output=True, text=True, timeout=60, env=env)
    assert run.returncode == 2 and "no audit key" in run.stderr and "RXFILL_AUDIT_KEY" in \
        run.stderr, run.stderr


def test_a_whole_anchored_trail_verifies(trail: Path) -> None:
    ok = _verify(trail)
    assert ok.returncode == 0 and f"anchored by audit key {AUDIT_KEY.id}" in ok.stdout, ok.stderr
