"""What every ``rxfill`` subcommand that opens the store shares."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from controller.audit_key import load_audit_key
from controller.config import Settings, load_config
from controller.domain.roles import Person
from controller.mqtt.topics import Topics
from controller.reading import ConfigError
from controller.store import Store, sqlite_url
from controller.store.people import AuthError
from controller.store.revisions import StoreUnusable

DEMO_CONFIG = Path(__file__).resolve().parents[2] / "config" / "demo.toml"

StoreOption = Annotated[Path | None, typer.Option(
    help="SQLite store (default: the configuration's [store] path).")]
ConfigOption = Annotated[Path, typer.Option(help="Configuration file.")]
UserOption = Annotated[str | None, typer.Option(
    "--user", help="Act as this user: asks for your password (or reads it, the first line, "
                   "with --password-stdin).")]
TokenOption = Annotated[str | None, typer.Option(
    "--token", envvar="RXFILL_TOKEN", show_default=False,
    help="Act as the holder of this token (rxfill sign-in prints one).")]
PasswordStdinOption = Annotated[bool, typer.Option(
    "--password-stdin", help="Read passwords from standard input, one a line (for scripts).")]


@dataclass(frozen=True, slots=True)
class Credentials:
    """Who a command says is acting: a user and password, or a token."""

    user: str | None
    password: str | None
    token: str | None


def credentials(user: str | None, token: str | None, from_stdin: bool) -> Credentials:
    """Read how the person signs in (before the store opens); exit 2 when they do not."""
    given = optional_credentials(user, token, from_stdin)
    if given is not None:
        return given
    raise fail("sign in first: --user NAME (asks for your password), or --token / RXFILL_TOKEN "
               "from `rxfill sign-in`; what you change is recorded with your name", 2)


def optional_credentials(user: str | None, token: str | None,
                         from_stdin: bool) -> Credentials | None:
    """How the person signs in, if they do (``rxfill users add`` of the first admin: none)."""
    if user:
        return Credentials(user, read_password(from_stdin, f"Password for {user}"), None)
    if token:
        return Credentials(None, None, token.strip())
    return None


def read_password(from_stdin: bool, prompt: str, *, confirm: bool = False) -> str:
    """A password: the next line of standard input, or typed at a hidden prompt."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


async def signed_in(store: Store, creds: Credentials) -> Person:
    """The person the credentials show, checked against the store; exit 1 when they do not."""
    try:
        if creds.token is not None:
            return await store.people.person_for(creds.token)
        assert creds.user is not None and creds.password is not None
        return await store.people.check_password(creds.user, creds.password)
    except AuthError as exc:
        raise fail(str(exc)) from None


def settings_of(config: Path) -> Settings:
    """The checked configuration, or exit 2 saying what is wrong with it."""
    try:
        return load_config(config)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def store_path(config: Path, store: Path | None, settings: Settings | None = None, *,
               new: bool = False) -> Path:
    """The store file to open: ``--store``, or the configuration's; it must exist, unless
    ``new`` (it is then made)."""
    if store is None:
        settings = settings or settings_of(config)
        store = settings.resolve(settings.config.store.path)
    if not store.exists() and not new:  # anything else not a store: Store.open says what
        typer.echo(f"{store}: no such store file; expected the SQLite file rxfill keeps "
                   f"(--store, or [store] path in the configuration)", err=True)
        raise typer.Exit(2)
    return store


def with_store(config: Path, store: Path | None, work: Callable[[Store], Awaitable[str]], *,
               announce: bool = False, settings: Settings | None = None,
               upgrade: bool = False, new: bool = False) -> None:
    """Open the store (``--store``, or the configuration's) with the audit key, do ``work``,
    print what it says. With ``announce`` and MQTT on, what the work announces goes to the
    outbox (a running supervisor sends it). An older store is upgraded only with
    ``upgrade``; otherwise, as any store that cannot be opened, it is one line, exit 2.
    With ``new``, a store not there yet is made (and said so)."""
    settings = settings or settings_of(config)
    path = store_path(config, store, settings, new=new)
    made = not path.exists()
    try:
        key = load_audit_key(settings, create=True)
    except ValueError as exc:
        raise fail(str(exc), 2) from None

    async def run() -> str:
        try:
            opened = await Store.open(sqlite_url(path), audit_key=key,
                                      formulary=settings.formulary, upgrade=upgrade)
        except StoreUnusable as exc:
            raise fail(str(exc), 2) from None
        if announce and settings.config.mqtt.broker != "off":
            opened.topics = Topics(settings.config.site.id)
        try:
            said = await work(opened)
        finally:
            await opened.close()
        return f"new store {path}\n{said}" if made else said
    typer.echo(asyncio.run(run()))


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` to stderr; the caller raises what this returns."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)
