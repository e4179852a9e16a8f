"""The store's people: users, roles, passwords (argon2id) and bearer tokens that expire."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.ext.asyncio import AsyncConnection

from controller.domain.roles import RESERVED_NAMES, Duty, Person, Role, RoleError, require
from controller.store.audit_records import record
from controller.store.schema import tokens, users

if TYPE_CHECKING:
    from controller.store.store import Store

MIN_PASSWORD = 10
TOKEN_LIFETIME = timedelta(hours=8)
"""A shift: a token signed in at the start of one is dead by the next."""
_NAME = re.compile(r"[a-z][a-z0-9._-]{1,39}")
_hasher = PasswordHasher()


class AuthError(PermissionError):
    """Who you say you are could not be shown: says why, without helping a guesser."""


@dataclass(frozen=True, slots=True)
class User:
    """A person who can sign in (no password hash here)."""

    name: str
    roles: frozenset[Role]
    disabled: bool
    created_at: datetime
    changed_at: datetime

    @property
    def person(self) -> Person:
        """The workflow's view of this user."""
        return Person(self.name, self.roles)


def parse_roles(names: list[str]) -> frozenset[Role]:
    """Roles by name, or ValueError naming the unknown one and the known ones."""
    found = set()
    for name in names:
        try:
            found.add(Role(name.strip().lower()))
        except ValueError:
            raise ValueError(f"role {name!r} is not one of "
                             f"{', '.join(r.value for r in Role)}") from None
    if not found:
        raise ValueError(f"a user needs at least one role: {', '.join(r.value for r in Role)}")
    return frozenset(found)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()




class PeopleRecords:
    """Users and tokens (mixed into Store). Every change is in the audit trail."""

    def __init__(self, db: Store) -> None:
        self._db = db

    async def add_user(self, name: str, roles: frozenset[Role], password: str, *,
                       by: Person | None) -> User:
        """A new user, added by an admin (ValueError for a bad or reserved name, no role or
        a short password). ``by`` None only for the first admin, while the store has none."""
        if not _NAME.fullmatch(name):
            raise ValueError(f"user name {name!r}: expected 2-40 characters, lower-case letters,"
                             f" digits, '.', '_' or '-', starting with a letter")
        if name in RESERVED_NAMES:
            raise ValueError(f"user name {name!r} is reserved (the records use it for the "
                             f"software itself): choose another")
        if by is not None:
            require(by, Duty.MANAGE_USERS)
        elif Role.ADMIN not in roles:
            raise RoleError("the first user of a store is its admin: give the admin role")
        _check_password(password)
        now = self._db.clock.now()
        hashed = await asyncio.to_thread(_hasher.hash, password)
        async with self._db.transaction() as conn:
            if by is None and await _admins(conn):
                raise RoleError("the store has an admin already: sign in as an admin to add "
                                "users")
            if await conn.scalar(sa.select(users.c.name).where(users.c.name == name)):
                raise ValueError(f"user {name} exists already")
            await conn.execute(sa.insert(users).values(
                name=name, roles=",".join(sorted(roles)), password_hash=hashed, disabled=False,
                created_at=now, changed_at=now))
            await record(conn, now, by.name if by else name, "user added" if by else
                         "first admin added", f"user:{name}", None, {"roles": sorted(roles)})
            return await _user(conn, name)

    async def set_password(self, name: str, password: str, *, by: Person) -> None:
        """A new password (one's own, or anyone's by an admin); every token of the user stops
        working."""
        if by.name != name:
            require(by, Duty.MANAGE_USERS)
        _check_password(password)
        hashed = await asyncio.to_thread(_hasher.hash, password)
        now = self._db.clock.now()
        async with self._db.transaction() as conn:
            await _user(conn, name)
            await conn.execute(sa.update(users).where(users.c.name == name).values(
                password_hash=hashed, changed_at=now))
            await conn.execute(sa.delete(tokens).where(tokens.c.name == name))
            await record(conn, now, by.name, "password changed", f"user:{name}")

    async def disable_user(self, name: str, *, by: Person) -> User:
        """The user can no longer sign in; their tokens stop working at once. The last admin
        is never disabled (nobody could manage users after)."""
        require(by, Duty.MANAGE_USERS)
        now = self._db.clock.now()
        async with self._db.transaction() as conn:
            before = await _user(conn, name)
            if Role.ADMIN in before.roles and await _admins(conn) == [name]:
                raise ValueError(f"{name} is the last admin: add another admin first")
            await conn.execute(sa.update(users).where(users.c.name == name).values(
                disabled=True, changed_at=now))
            await conn.execute(sa.delete(tokens).where(tokens.c.name == name))
            await record(conn, now, by.name, "user disabled", f"user:{name}",
                         {"disabled": before.disabled}, {"disabled": True})
            return await _user(conn, name)

    async def users(self) -> list[User]:
        """Every user, by name."""
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(sa.select(users).order_by(users.c.name))).mappings().all()
        return [_user_of(row) for row in rows]

    async def sign_in(self, name: str, password: str,
                      lifetime: timedelta = TOKEN_LIFETIME) -> str:
        """A bearer token for ``name``, or AuthError (the same words for any failure)."""
        await self.check_password(name, password)
        token = secrets.token_urlsafe(32)
        now = self._db.clock.now()
        async with self._db.transaction() as conn:
            await conn.execute(sa.insert(tokens).values(
                digest=_digest(token), name=name, issued_at=now, expires_at=now + lifetime))
            await record(conn, now, name, "signed in", f"user:{name}")
        return token

    async def sign_out(self, token: str, name: str) -> None:
        """``token`` stops working at once (a sign-out, or the console's idle logoff)."""
        async with self._db.transaction() as conn:
            gone = await conn.execute(sa.delete(tokens).where(tokens.c.digest == _digest(token)))
            if gone.rowcount:
                await record(conn, self._db.clock.now(), name, "signed out", f"user:{name}")

    async def check_password(self, name: str, password: str) -> Person:
        """Who ``name`` is, if ``password`` is theirs and they may sign in (AuthError, the same
        words for any failure); no token is issued (a command acting once)."""
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(sa.select(users).where(users.c.name == name))
                   ).mappings().first()
        refused = AuthError("wrong user name or password, or the user is disabled")
        if row is None:
            await asyncio.to_thread(_hasher.hash, password)  # as slow as a real check
            raise refused
        try:
            await asyncio.to_thread(_hasher.verify, row["password_hash"], password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            raise refused from None
        if row["disabled"]:
            raise refused
        return _user_of(row).person

    async def person_for(self, token: str) -> Person:
        """Who holds ``token``, or AuthError: unknown, expired, or the user disabled."""
        query = sa.select(tokens.c.expires_at, users).select_from(tokens.join(users)).where(
            tokens.c.digest == _digest(token))
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            raise AuthError("unknown token: sign in again")
        if row["expires_at"] <= self._db.clock.now():
            raise AuthError(f"the token expired at {row['expires_at']:%Y-%m-%d %H:%M} UTC: "
                            f"sign in again")
        if row["disabled"]:
            raise AuthError("the user is disabled")
        return _user_of(row).person


async def _admins(conn: AsyncConnection) -> list[str]:
    """The users who may manage users, and are not disabled."""
    rows = (await conn.execute(sa.select(users.c.name, users.c.roles).where(
        users.c.disabled.is_(False)))).all()
    return [name for name, roles in rows if Role.ADMIN in roles.split(",")]


async def _user(conn: AsyncConnection, name: str) -> User:
    row = (await conn.execute(sa.select(users).where(users.c.name == name))).mappings().first()
    if row is None:
        raise ValueError(f"no user {name!r}")
    return _user_of(row)


def _user_of(row: Any) -> User:
    return User(name=row["name"], roles=frozenset(Role(r) for r in row["roles"].split(",")),
                disabled=row["disabled"], created_at=row["created_at"],
                changed_at=row["changed_at"])
