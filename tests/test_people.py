"""Users, roles, argon2 passwords and bearer tokens that expire; every change audited."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.clock import Clock
from controller.domain.roles import Role
from controller.store import Store, sqlite_url
from controller.store.people import AuthError, parse_roles
from tests.helpers import admin, cli_env, open_store
from tests.test_cli import RXFILL

PASSWORD = "correct horse battery"


class MovableClock(Clock):
    def __init__(self) -> None:
        self.moment = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment


async def test_sign_in_gives_a_token_that_names_the_person_until_it_expires(
        tmp_path: Path) -> None:
    clock = MovableClock()
    store = await open_store(sqlite_url(tmp_path / "rx.sqlite"), clock=clock)
    try:
        await store.people.add_user("phil", frozenset({Role.PHARMACIST}), PASSWORD, by=admin())
        token = await store.people.sign_in("phil", PASSWORD)
        person = await store.people.person_for(token)
        assert (person.name, person.roles) == ("phil", frozenset({Role.PHARMACIST}))
        clock.moment += timedelta(hours=8)
        with pytest.raises(AuthError, match="expired"):
            await store.people.person_for(token)
        with pytest.raises(AuthError, match="unknown token"):
            await store.people.person_for("made-up")
    finally:
        await store.close()


async def test_wrong_passwords_and_disabled_users_are_refused_alike(store: Store) -> None:
    await store.people.add_user("tess", frozenset({Role.TECHNICIAN}), PASSWORD, by=admin())
    token = await store.people.sign_in("tess", PASSWORD)
    same = "wrong user name or password, or the user is disabled"
    for name, password in (("tess", "not her password"), ("nobody", PASSWORD)):
        with pytest.raises(AuthError, match=same):
            await store.people.sign_in(name, password)
    await store.people.disable_user("tess", by=admin())
    with pytest.raises(AuthError, match=same):
        await store.people.sign_in("tess", PASSWORD)
    with pytest.raises(AuthError):
        await store.people.person_for(token)  # signed out at once


async def test_a_new_password_signs_the_user_out_and_the_hash_is_argon2(store: Store) -> None:
    await store.people.add_user("ana", frozenset({Role.TECHNICIAN}), PASSWORD, by=admin())
    token = await store.people.sign_in("ana", PASSWORD)
    ana = await store.people.person_for(token)
    await store.people.set_password("ana", "another long passphrase", by=ana)
    with pytest.raises(AuthError):
        await store.people.person_for(token)
    await store.people.sign_in("ana", "another long passphrase")
    with pytest.raises(ValueError, match="at least 10 characters"):
        await store.people.set_password("ana", "short", by=ana)
    trail = [(e.who, e.action) for e in await store.audit.audit_trail()]
    assert ("al", "user added") in trail and ("ana", "password changed") in trail
    assert PASSWORD not in repr(await store.audit.audit_trail())


def test_users_are_named_and_roles_known() -> None:
    with pytest.raises(ValueError, match="role 'boss' is not one of technician, pharmacist"):
        parse_roles(["boss"])
    assert parse_roles(["Pharmacist", "technician"]) == {Role.PHARMACIST, Role.TECHNICIAN}


def test_rxfill_users_add_list_disable_as_a_signed_in_admin(tmp_path: Path) -> None:
    path = tmp_path / "rx.sqlite"

    def users(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([*RXFILL, "users", *args, "--store", str(path)], input=stdin,
                              capture_output=True, text=True, timeout=60, env=cli_env())
    path.touch()  # the store file must exist, as for every store command
    # Before: any free-text --who could add users; the first admin needed nobody.
    not_admin = users("add", "tess", "--role", "technician", "--password-stdin",
                      stdin=PASSWORD + "\n")
    assert not_admin.returncode == 1 and "the first user of a store is its admin" in \
        not_admin.stderr, not_admin.stderr
    reserved = users("add", "supervisor", "--role", "admin", "--password-stdin",
                     stdin=PASSWORD + "\n")
    assert reserved.returncode == 1 and "is reserved" in reserved.stderr
    first = users("add", "ada", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert first.returncode == 0, first.stderr
    second = users("add", "eve", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert second.returncode == 1 and "has an admin already" in second.stderr
    as_ada = ("--user", "ada", "--password-stdin")
    added = users("add", "phil", "--role", "pharmacist", "--role", "technician", *as_ada,
                  stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert added.returncode == 0, added.stderr
    assert "user phil added: pharmacist, technician" in added.stdout
    by_phil = users("add", "tess", "--role", "technician", "--user", "phil",
                    "--password-stdin", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert by_phil.returncode == 1 and "phil may not manage users" in by_phil.stderr
    wrong = users("add", "tess", "--role", "technician", "--user", "ada", "--password-stdin",
                  stdin=f"not ada's password\n{PASSWORD}\n")
    assert wrong.returncode == 1 and "wrong user name or password" in wrong.stderr
    again = users("add", "phil", "--role", "pharmacist", *as_ada,
                  stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert again.returncode == 1 and "exists already" in again.stderr
    short = users("add", "tess", "--role", "technician", *as_ada, stdin=f"{PASSWORD}\nshort\n")
    assert short.returncode == 1 and "at least 10 characters" in short.stderr
    unsigned = users("disable", "phil")
    assert unsigned.returncode == 2 and "sign in first" in unsigned.stderr
    assert users("disable", "phil", *as_ada, stdin=PASSWORD + "\n").returncode == 0
    last = users("disable", "ada", *as_ada, stdin=PASSWORD + "\n")
    assert last.returncode == 1 and "the last admin" in last.stderr
    listed = users("list").stdout
    assert "phil" in listed and "disabled" in listed and "tess" not in listed
    exported = subprocess.run([*RXFILL, "audit", "export", "--store", str(path)],
                              capture_output=True, text=True, timeout=60, env=cli_env())
    assert '"who": "ada", "action": "user added"' in exported.stdout
    assert '"who": "ada", "action": "first admin added"' in exported.stdout
