"""The audit trail: every action, hash-chained, so that an edited, removed or reordered row shows.

Each entry's hash covers its position, its content and the hash of the entry
before it. The database refuses UPDATE and DELETE on the table (triggers);
this chain is what still tells when someone with the file in hand went
round them. The store also keeps the chain's head (last position and hash),
so that a row cut from the end shows too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GENESIS = "0" * 64
"""The hash before the first entry."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded action: who did what to which record, when; how it stood before, after."""

    seq: int
    at: datetime
    who: str
    action: str
    subject: str
    """What was acted on: ``order:12``, ``bin:tc1/5``, ``alarm:bin-low-tc1-5``, ``vial:3``."""
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    prev_hash: str
    hash: str


def entry_hash(prev_hash: str, seq: int, at: datetime, who: str, action: str, subject: str,
               before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> str:
    """SHA-256 over the previous hash and this entry's canonical JSON."""
    body = json.dumps([prev_hash, seq, at.isoformat(), who, action, subject, before, after],
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def verify_chain(entries: Sequence[AuditEntry], head: tuple[int, str] | None) -> list[str]:
    """Every break in the chain, in words; empty when it is whole.

    ``entries`` in the order the table holds them; ``head`` the (seq, hash) the store
    recorded with the last entry.
    """
    problems: list[str] = []
    previous = GENESIS
    for expected, entry in enumerate(entries, start=1):
        if entry.seq != expected:
            problems.append(f"entry {expected} is missing or out of place: found entry "
                            f"{entry.seq} where entry {expected} should be (removed or reordered)")
        if entry.prev_hash != previous:
            problems.append(f"entry {entry.seq} does not follow the entry before it "
                            f"(one was removed, inserted or reordered)")
        recomputed = entry_hash(entry.prev_hash, entry.seq, entry.at, entry.who, entry.action,
                                entry.subject, entry.before, entry.after)
        if recomputed != entry.hash:
            problems.append(f"entry {entry.seq} ({entry.action} on {entry.subject} by "
                            f"{entry.who}) was edited: its content no longer matches its hash")
        previous = entry.hash
    last = (entries[-1].seq, entries[-1].hash) if entries else (0, GENESIS)
    if head is not None and head != last:
        problems.append(f"the trail ends at entry {last[0]}, but entry {head[0]} was the last "
                        f"written: entries were removed from the end (or the head was edited)")
    return problems
