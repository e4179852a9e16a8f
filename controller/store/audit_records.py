"""The store's audit trail: written inside the transaction of the change it records."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from controller.domain.audit import GENESIS, AuditEntry, AuditKey, entry_hash, verify_chain
from controller.store.errors import StoreError
from controller.store.schema import audit, store_info

if TYPE_CHECKING:
    from controller.store.store import Store

HEAD = "audit_head"
"""store_info key: ``<seq>:<hash>`` of the last entry written."""
KEY = "audit_key"
"""Where a write transaction's connection carries the audit key (``Connection.info``)."""


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
    key: AuditKey | None = conn.info.get(KEY)
    anchor = key.anchor(digest) if key is not None else None
    await conn.execute(sa.insert(audit).values(
        seq=entry.seq, at=at, who=who, action=action, subject=subject, before=before_json,
        after=after_json, prev_hash=prev, hash=digest, anchor=anchor))
    value = f"{entry.seq}:{digest}"
    if head is None:
        await conn.execute(sa.insert(store_info).values(key=HEAD, value=value))
    else:
        await conn.execute(sa.update(store_info).where(store_info.c.key == HEAD)
                           .values(value=value))
    return AuditEntry(entry.seq, at, who, action, subject, entry.before, entry.after, prev,
                      digest, anchor)


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




_COLUMNS = "seq, at, who, action, subject, before, after, prev_hash, hash, anchor"


class AuditRecords:
    """The audit trail's half of the store (mixed into Store)."""

    def __init__(self, db: Store) -> None:
        self._db = db

    async def audit(self, who: str, action: str, subject: str,
                    after: Mapping[str, Any] | None = None) -> None:
        """Record an action that changes nothing in the store (a robot cleared…)."""
        async with self._db.transaction() as conn:
            await record(conn, self._db.clock.now(), who, action, subject, None, after)

    async def audit_trail(self) -> list[AuditEntry]:
        """Every entry, in the order the table holds them (StoreError if one is malformed:
        ``verify_audit`` says which)."""
        entries, malformed = await _read_trail(self._db.engine)
        if malformed:
            seq, why = next(iter(malformed.items()))
            raise StoreError(f"audit entry {seq} is malformed: {why} (rxfill audit verify)")
        return entries

    async def audit_rows(self) -> list[dict[str, Any]]:
        """Every entry as stored, malformed or not: what ``rxfill audit export`` prints.
        StoreError when there is no trail to read."""
        try:
            async with self._db.engine.connect() as conn:
                rows = (await conn.execute(sa.text(
                    f"SELECT {_COLUMNS} FROM audit ORDER BY seq"))).mappings().all()
        except sa.exc.OperationalError as exc:
            raise StoreError(f"the audit trail cannot be read: {exc.orig}") from None
        exported = []
        for row in rows:
            values = dict(row)
            for column in ("before", "after"):
                with contextlib.suppress(TypeError, ValueError):
                    values[column] = json.loads(values[column]) if values[column] else None
            exported.append(values)
        return exported

    async def verify_audit(self, key: AuditKey | None = None) -> list[str]:
        """Every break in the audit trail (edited, removed, reordered, malformed or, with the
        key, unanchored rows); empty when whole. Never raises for what it finds."""
        try:
            entries, malformed = await _read_trail(self._db.engine)
            async with self._db.engine.connect() as conn:
                head = await _head(conn)
        except sa.exc.OperationalError as exc:
            return [f"the audit trail cannot be read: {exc.orig}"]
        except ValueError as exc:
            return [f"the audit trail's head cannot be read: {exc}"]
        return verify_chain(entries, head, key=key, malformed=malformed)


async def _read_trail(engine: AsyncEngine) -> tuple[list[AuditEntry], dict[int, str]]:
    """The entries, read as text and parsed one by one: (entries, seq → why malformed)."""
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text(f"SELECT {_COLUMNS} FROM audit ORDER BY seq"))
                ).mappings().all()
    entries: list[AuditEntry] = []
    malformed: dict[int, str] = {}
    for row in rows:
        seq = row["seq"] if isinstance(row["seq"], int) else -1
        problems = []
        at = datetime.min.replace(tzinfo=UTC)
        try:
            at = datetime.fromisoformat(str(row["at"])).replace(tzinfo=UTC)
        except ValueError:
            problems.append(f"its time {row['at']!r} is not a timestamp")
        sides: dict[str, Any] = {}
        for column in ("before", "after"):
            try:
                sides[column] = json.loads(row[column]) if row[column] else None
            except (TypeError, ValueError):
                problems.append(f"its {column!r} is not JSON: {str(row[column])[:40]!r}")
                sides[column] = None
        texts = [row[c] if isinstance(row[c], str) else "" for c in
                 ("who", "action", "subject", "prev_hash", "hash")]
        if not all(texts[:3]) or seq < 1:
            problems.append("a required field (seq, who, action, subject) is missing")
        if problems:
            malformed[seq] = "; ".join(problems)
        entries.append(AuditEntry(seq, at, texts[0], texts[1], texts[2], sides["before"],
                                  sides["after"], texts[3], texts[4], row["anchor"]))
    return entries, malformed
