"""``rxfill users``: people who sign in, their roles and passwords."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from controller.cli_common import (
    DEMO_CONFIG,
    ConfigOption,
    StoreOption,
    WhoOption,
    fail,
    with_store,
)
from controller.store import Store
from controller.store.people import parse_roles

users_app = typer.Typer(help="People: users, roles, passwords.", no_args_is_help=True)

StdinOption = Annotated[bool, typer.Option(
    "--password-stdin", help="Read the password from standard input (for scripts).")]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="The sign-in name, e.g. ana.lopez.")],
    role: Annotated[list[str], typer.Option(
        help="technician, pharmacist, maintenance or admin (repeat for more).")],
    who: WhoOption, password_stdin: StdinOption = False,
    config: ConfigOption = DEMO_CONFIG, store: StoreOption = None,
) -> None:
    """Add a user with roles and a password (at least 10 characters)."""
    try:
        roles = parse_roles(role)
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    password = _password(password_stdin)

    async def work(db: Store) -> str:
        try:
            user = await db.add_user(name, roles, password, who=who)
        except ValueError as exc:
            raise fail(str(exc)) from None
        return f"user {user.name} added: {', '.join(sorted(user.roles))}"
    with_store(config, store, work)


@users_app.command("passwd")
def users_passwd(name: Annotated[str, typer.Argument(help="The user.")], who: WhoOption,
                 password_stdin: StdinOption = False, config: ConfigOption = DEMO_CONFIG,
                 store: StoreOption = None) -> None:
    """Set a new password; the user's tokens stop working."""
    password = _password(password_stdin)

    async def work(db: Store) -> str:
        try:
            await db.set_password(name, password, who=who)
        except ValueError as exc:
            raise fail(str(exc)) from None
        return f"password of {name} changed; signed out everywhere"
    with_store(config, store, work)


@users_app.command("disable")
def users_disable(name: Annotated[str, typer.Argument(help="The user.")], who: WhoOption,
                  config: ConfigOption = DEMO_CONFIG, store: StoreOption = None) -> None:
    """The user can no longer sign in; their tokens stop working at once."""
    async def work(db: Store) -> str:
        try:
            await db.disable_user(name, who=who)
        except ValueError as exc:
            raise fail(str(exc)) from None
        return f"user {name} disabled"
    with_store(config, store, work)


@users_app.command("list")
def users_list(config: ConfigOption = DEMO_CONFIG, store: StoreOption = None) -> None:
    """Every user: name, roles, disabled or not."""
    async def work(db: Store) -> str:
        return "\n".join(f"{u.name:<24} {', '.join(sorted(u.roles)):<32}"
                         f"{'disabled' if u.disabled else 'active'}"
                         for u in await db.users()) or "no users"
    with_store(config, store, work)
