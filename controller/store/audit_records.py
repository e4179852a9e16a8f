"""The store's audit trail: written inside the transaction of the change it records."""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from controller.clock import Clock
from controller.domain.audit import GENESIS, AuditEntry, entry_hash, verify_chain
from controller.store.schema import audit, store_info

HEAD = "audit_head"
"""store_info key: ``<seq>:<hash>`` of the last entry written."""


async def record(conn: AsyncConnection, at: datetime, who: str, action: str, subject: str,
                 before: Mapping[str, Any] | None = None,
                 after: Mapping[str, Any] | None = None) -> AuditEntry:
    """Append one entry to the trail, chained to the last (the caller holds the write lock)."""
    head = await _head(conn)
    seq, prev = head or (0, GENESIS)
    before_json = _canonical(before)
    after_json = _canonical(after)
    entry = AuditEntry(seq + 1, at, who, action, subject,
                       json.loads(before_json) if before_json else None,
                       json.loads(after_json) if after_json else None, prev, "")
    digest = entry_hash(prev, entry.seq, at, who, action, subject, entry.before, entry.after)
    await conn.execute(sa.insert(audit).values(
        seq=entry.seq, at=at, who=who, action=action, subject=subject, before=before_json,
        after=after_json, prev_hash=prev, hash=digest))
    value = f"{entry.seq}:{digest}"
    if head is None:
        await conn.execute(sa.insert(store_info).values(key=HEAD, value=value))
    else:
        await conn.execute(sa.update(store_info).where(store_info.c.key == HEAD)
                           .values(value=value))
    return AuditEntry(entry.seq, at, who, action, subject, entry.before, entry.after, prev,
                      digest)


async def _head(conn: AsyncConnection) -> tuple[int, str] | None:
    """The (seq, hash) of the last entry written, as the store recorded it."""
    value = await conn.scalar(sa.select(store_info.c.value).where(store_info.c.key == HEAD))
    if value is None:
        return None
    seq, _, digest = value.partition(":")
    return int(seq), digest


def _canonical(values: Mapping[str, Any] | None) -> str | None:
    if values is None:
        return None
    return json.dumps(dict(values), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


class _Base(Protocol):
    _engine: AsyncEngine
    _clock: Clock

    def _transaction(self) -> AbstractAsyncContextManager[AsyncConnection]: ...


class AuditRecords:
    """The audit trail's half of the store (mixed into Store)."""

    async def audit(self: _Base, who: str, action: str, subject: str,
                    after: Mapping[str, Any] | None = None) -> None:
        """Record an action that changes nothing in the store (a robot cleared…)."""
        async with self._transaction() as conn:
            await record(conn, self._clock.now(), who, action, subject, None, after)

    async def audit_trail(self: _Base) -> list[AuditEntry]:
        """Every entry, in the order the table holds them."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(audit).order_by(audit.c.seq))).mappings().all()
        return [AuditEntry(
            seq=row["seq"], at=row["at"], who=row["who"], action=row["action"],
            subject=row["subject"], before=json.loads(row["before"]) if row["before"] else None,
            after=json.loads(row["after"]) if row["after"] else None,
            prev_hash=row["prev_hash"], hash=row["hash"]) for row in rows]

    async def verify_audit(self: _Base) -> list[str]:
        """Every break in the audit trail (edited, removed, reordered rows); empty when whole."""
        async with self._engine.connect() as conn:
            head = await _head(conn)
        return verify_chain(await AuditRecords.audit_trail(self), head)
