"""The audit trail: every action, hash-chained, so that an edited, removed or reordered row shows.

Each entry's hash covers its position, its content and the hash of the entry
before it. The database refuses UPDATE and DELETE on the table (triggers);
this chain is what still tells when someone with the file in hand went
round them. The store also keeps the chain's head (last position and hash),
so that a row cut from the end shows too.

The chain alone does not stop someone who rewrites the whole table and its
head: anyone can compute SHA-256. So each entry also carries an anchor, an
HMAC of its hash under a key kept outside the database (a file, or the
environment). Without the key no entry can be rewritten so that it verifies.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GENESIS = "0" * 64
"""The hash before the first entry."""


@dataclass(frozen=True, slots=True)
class AuditKey:
    """The secret that anchors the chain outside the database."""

    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) < 16:
            raise ValueError("an audit key needs at least 16 bytes of secret")

    @property
    def id(self) -> str:
        """A short public name of the key (not the key): which key signed an entry."""
        return hashlib.sha256(b"rxfill audit key id:" + self.secret).hexdigest()[:12]

    def anchor(self, entry_hash: str) -> str:
        """``<key id>:<HMAC-SHA256 of the entry's hash>``."""
        mac = hmac.new(self.secret, entry_hash.encode(), hashlib.sha256).hexdigest()
        return f"{self.id}:{mac}"

    def check(self, seq: int, entry_hash: str, anchor: str | None) -> str | None:
        """Why entry ``seq``'s anchor does not vouch for its hash; None when it does."""
        if not anchor:
            return (f"entry {seq} carries no anchor: written without the audit key, or its "
                    f"anchor removed")
        key_id, _, _ = anchor.partition(":")
        if key_id != self.id:
            return (f"entry {seq} was anchored with key {key_id}, not with the key given "
                    f"({self.id})")
        if not hmac.compare_digest(anchor, self.anchor(entry_hash)):
            return (f"entry {seq}'s anchor does not match its hash: the entry was rewritten "
                    f"by someone without the audit key")
        return None


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
    anchor: str | None = None
    """The key's HMAC of ``hash`` (see AuditKey), or None when written without a key."""


def entry_hash(prev_hash: str, seq: int, at: datetime, who: str, action: str, subject: str,
               before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> str:
    """SHA-256 over the previous hash and this entry's canonical JSON."""
    body = json.dumps([prev_hash, seq, at.isoformat(), who, action, subject, before, after],
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def verify_chain(entries: Sequence[AuditEntry], head: tuple[int, str] | None, *,
                 key: AuditKey | None = None,
                 malformed: Mapping[int, str] | None = None) -> list[str]:
    """Every break in the chain, in words; empty when it is whole.

    ``entries`` in the order the table holds them; ``head`` the (seq, hash) the store
    recorded with the last entry. With ``key``, every entry's anchor must vouch for its
    hash. ``malformed`` names entries (by seq) whose stored content could not even be read,
    and why: each is a break, and its hash is not recomputed.
    """
    problems: list[str] = []
    unreadable = malformed or {}
    previous = GENESIS
    for expected, entry in enumerate(entries, start=1):
        if entry.seq != expected:
            problems.append(f"entry {expected} is missing or out of place: found entry "
                            f"{entry.seq} where entry {expected} should be (removed or reordered)")
        if entry.prev_hash != previous:
            problems.append(f"entry {entry.seq} does not follow the entry before it "
                            f"(one was removed, inserted or reordered)")
        if entry.seq in unreadable:
            problems.append(f"entry {entry.seq} is malformed: {unreadable[entry.seq]}")
        else:
            recomputed = entry_hash(entry.prev_hash, entry.seq, entry.at, entry.who,
                                    entry.action, entry.subject, entry.before, entry.after)
            if recomputed != entry.hash:
                problems.append(f"entry {entry.seq} ({entry.action} on {entry.subject} by "
                                f"{entry.who}) was edited: its content no longer matches its "
                                f"hash")
        if key is not None and (why := key.check(entry.seq, entry.hash, entry.anchor)):
            problems.append(why)
        previous = entry.hash
    last = (entries[-1].seq, entries[-1].hash) if entries else (0, GENESIS)
    if head is not None and head != last:
        problems.append(f"the trail ends at entry {last[0]}, but entry {head[0]} was the last "
                        f"written: entries were removed from the end (or the head was edited)")
    return problems
