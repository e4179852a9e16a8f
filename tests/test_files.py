"""Files a person hands rxfill: a configuration, a formulary, a store. Each wrong one gets one
line naming the file and what is wrong, exit 2, and nothing written; an older store is
upgraded only when asked, after a backup copy it names."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine

from controller.store.revisions import MIGRATIONS, script
from tests.helpers import cli_env
from tests.test_cli import RXFILL

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "config" / "demo.toml"


def rxfill(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RXFILL, *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env=cli_env())


def one_line(run: subprocess.CompletedProcess[str], *expected: str) -> None:
    said = run.stderr.strip()
    assert run.returncode == 2, (run.returncode, run.stdout, said)
    assert "Traceback" not in said and len(said.splitlines()) == 1, said
    for text in expected:
        assert text in said, said


def _set_formulary(text: str, formulary: Path) -> str:
    lines = text.splitlines()
    return "\n".join(f'formulary = "{formulary}"' if line.startswith("formulary =") else line
                     for line in lines) + "\n"


@pytest.mark.parametrize(("content", "expected"), [
    (b"\x00\x01\x02binary\xff" * 20, "is a binary file"),
    ('formulary = "f.csv"\n# caf\xe9 in Latin-1\n'.encode("latin-1"),
     "line 2: byte 0xe9 is not UTF-8"),
])
def test_a_config_that_is_not_utf8_text_is_one_line(tmp_path: Path, content: bytes,
                                                     expected: str) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_bytes(content)
    for args in (["config", "check", str(bad)], ["run", "--config", str(bad)],
                 ["demo", "--config", str(bad)]):
        run = rxfill(*args, cwd=tmp_path)
        if args[0] == "demo":  # the demo speaks on its console
            assert run.returncode == 2 and expected in run.stdout and "Traceback" not in (
                run.stdout + run.stderr)
            continue
        one_line(run, str(bad), expected)


def test_a_formulary_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    formulary = tmp_path / "drugs.csv"
    formulary.write_bytes((ROOT / "config" / "formulary.csv").read_bytes() +
                          "x,Acetamin\xf3fen\n".encode("latin-1"))
    config = tmp_path / "site.toml"
    config.write_text(_set_formulary(DEMO.read_text(), formulary))
    one_line(rxfill("config", "check", str(config), cwd=tmp_path), str(formulary),
             "is not UTF-8")


def _unchanged(path: Path, before: bytes | None) -> None:
    if before is not None:
        assert path.read_bytes() == before
    assert not path.with_name(path.name + "-wal").exists()


def test_a_store_that_is_not_sqlite_is_refused_and_left_alone(tmp_path: Path) -> None:
    store = tmp_path / "notes.sqlite"
    store.write_text("a shopping list, not a store\n")
    before = store.read_bytes()
    for args in (["stock", "show"], ["alarms", "list"], ["audit", "verify"], ["run"]):
        run = rxfill(*args, "--config", str(DEMO), "--store", str(store), cwd=tmp_path)
        one_line(run, str(store), "is not an SQLite database")
        _unchanged(store, before)


def test_a_store_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "store.sqlite"
    folder.mkdir()
    for args in (["stock", "show"], ["run"]):
        one_line(rxfill(*args, "--config", str(DEMO), "--store", str(folder), cwd=tmp_path),
                 str(folder), "is a directory")
    assert list(folder.iterdir()) == []


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` read-only, even to root (which ignores modes): the immutable flag, if the
    file system has one, else the mode bits."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o644)
        return
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("root, on a file system without the immutable flag: nothing is read-only")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_read_only_store_is_refused_and_left_alone(tmp_path: Path) -> None:
    store = tmp_path / "ro.sqlite"
    _store_at(store, "head")
    before = store.read_bytes()
    with read_only(store):
        for args in (["stock", "show"], ["run"]):
            one_line(rxfill(*args, "--config", str(DEMO), "--store", str(store),
                            cwd=tmp_path), str(store), "is read-only")
    _unchanged(store, before)


def _store_at(path: Path, revision: str) -> None:
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    engine.dispose()


def _revision(path: Path) -> str:
    with sqlite3.connect(path) as db:
        return str(db.execute("SELECT version_num FROM alembic_version").fetchone()[0])


def test_a_store_from_a_newer_rxfill_is_refused_and_left_alone(tmp_path: Path) -> None:
    store = tmp_path / "future.sqlite"
    _store_at(store, "head")
    with sqlite3.connect(store) as db:
        db.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    before = store.read_bytes()
    for args in (["stock", "show"], ["store", "upgrade"], ["run"]):
        one_line(rxfill(*args, "--config", str(DEMO), "--store", str(store), cwd=tmp_path),
                 str(store), "9999_from_the_future", "does not know")
        _unchanged(store, before)


def test_an_older_store_is_upgraded_only_when_asked_after_a_backup(tmp_path: Path) -> None:
    store = tmp_path / "old.sqlite"
    _store_at(store, "0006")
    before = store.read_bytes()
    one_line(rxfill("stock", "show", "--config", str(DEMO), "--store", str(store),
                    cwd=tmp_path), str(store), "revision 0006", "rxfill store upgrade")
    _unchanged(store, before)
    run = rxfill("store", "upgrade", "--config", str(DEMO), "--store", str(store), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    head = script().get_current_head()
    assert f"upgraded from schema revision 0006 to {head}" in run.stdout
    (backup,) = tmp_path.glob("old.sqlite.backup-0006-*")
    assert str(backup) in run.stdout
    assert _revision(backup) == "0006" and _revision(store) == head
    again = rxfill("store", "upgrade", "--config", str(DEMO), "--store", str(store),
                   cwd=tmp_path)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert rxfill("stock", "show", "--config", str(DEMO), "--store", str(store),
                  cwd=tmp_path).returncode == 0


def test_a_new_store_begins_with_its_first_admin(tmp_path: Path) -> None:
    store = tmp_path / "var" / "site.sqlite"
    run = subprocess.run([*RXFILL, "users", "add", "ada", "--role", "admin",
                          "--password-stdin", "--config", str(DEMO), "--store", str(store)],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path,
                         env=cli_env(), input="ada-password-1\n")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [f"new store {store}", "user ada added: admin"]
    # Anything else still needs a store that is there: a typo makes no new one.
    other = tmp_path / "stor.sqlite"
    one_line(rxfill("users", "list", "--config", str(DEMO), "--store", str(other), cwd=tmp_path),
             "no such store file")
    assert not other.exists()
