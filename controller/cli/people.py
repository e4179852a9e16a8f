"""``rxfill users``: people who sign in, their roles and passwords.

What changes users is an admin's, signed in (``--user``, or ``--token``); the first admin of
a store is the one exception, added while the store has none.
"""

from __future__ import annotations

from typing import Annotated

import typer

from controller.cli.common import (
    DEMO_CONFIG,
    ConfigOption,
    PasswordStdinOption,
    StoreOption,
    TokenOption,
    UserOption,
    credentials,
    fail,
    optional_credentials,
    read_password,
    signed_in,
    with_store,
)
from controller.domain.roles import RoleError
from controller.store import Store
from controller.store.people import parse_roles

users_app = typer.Typer(help="People: users, roles, passwords.", no_args_is_help=True)


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="The sign-in name, e.g. ana.lopez.")],
    role: Annotated[list[str], typer.Option(
        help="technician, pharmacist, maintenance or admin (repeat for more).")],
    user: UserOption = None, token: TokenOption = None,
    password_stdin: PasswordStdinOption = False,
    config: ConfigOption = DEMO_CONFIG, store: StoreOption = None,
) -> None:
    """Add a user with roles and a password (at least 10 characters), as an admin; a store's
    first admin is added without signing in. With --password-stdin and --user, the first line
    is your password and the second the new user's."""
    try:
        roles = parse_roles(role)
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    creds = optional_credentials(user, token, password_stdin)
    password = read_password(password_stdin, f"Password for {name}", confirm=True)

    async def work(db: Store) -> str:
        me = await signed_in(db, creds) if creds is not None else None
        try:
            added = await db.people.add_user(name, roles, password, by=me)
        except ValueError as exc:
            hint = (" (--user NAME or --token)" if me is None and isinstance(exc, RoleError)
                    else "")
            raise fail(f"{exc}{hint}") from None
        return f"user {added.name} added: {', '.join(sorted(added.roles))}"
    # A store's first admin is how a new store begins: it is made here if not there yet.
    with_store(config, store, work, new=creds is None)


@users_app.command("passwd")
def users_passwd(name: Annotated[str, typer.Argument(help="The user.")],
                 user: UserOption = None, token: TokenOption = None,
                 password_stdin: PasswordStdinOption = False,
                 config: ConfigOption = DEMO_CONFIG, store: StoreOption = None) -> None:
    """Set a new password (your own, or anyone's as an admin); the user's tokens stop working.
    With --password-stdin and --user, the first line is your password and the second the new
    one."""
    creds = credentials(user, token, password_stdin)
    password = read_password(password_stdin, f"New password for {name}", confirm=True)

    async def work(db: Store) -> str:
        me = await signed_in(db, creds)
        try:
            await db.people.set_password(name, password, by=me)
        except ValueError as exc:
            raise fail(str(exc)) from None
        return f"password of {name} changed; signed out everywhere"
    with_store(config, store, work)


@users_app.command("disable")
def users_disable(name: Annotated[str, typer.Argument(help="The user.")],
                  user: UserOption = None, token: TokenOption = None,
                  password_stdin: PasswordStdinOption = False,
                  config: ConfigOption = DEMO_CONFIG, store: StoreOption = None) -> None:
    """The user can no longer sign in; their tokens stop working at once (an admin's)."""
    creds = credentials(user, token, password_stdin)

    async def work(db: Store) -> str:
        me = await signed_in(db, creds)
        try:
            await db.people.disable_user(name, by=me)
        except ValueError as exc:
            raise fail(str(exc)) from None
        return f"user {name} disabled"
    with_store(config, store, work)


@users_app.command("list")
def users_list(config: ConfigOption = DEMO_CONFIG, store: StoreOption = None) -> None:
    """Every user: name, roles, disabled or not."""
    async def work(db: Store) -> str:
        users = await db.people.users()
        if not users:
            return "no users yet: add the first admin with rxfill users add NAME --role admin"
        return "\n".join([f"{'NAME':<24} {'ROLES':<32}STATUS", *(
            f"{u.name:<24} {', '.join(sorted(u.roles)):<32}"
            f"{'disabled' if u.disabled else 'active'}" for u in users)])
    with_store(config, store, work)
