"""What the supervisor publishes, as the MQTT ICD (icd/mqtt-alarms.md) writes it.

Topics under ``rxfill/<site>/``; payloads are compact JSON. No payload
carries patient data: no name, birth date or prescription number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controller.domain.alarms import AlarmChange, iso
from controller.store.outbox import Message

EVENT_KINDS = ("restocked", "fill_done", "released")


def encode(payload: dict[str, Any]) -> bytes:
    """Compact JSON, keys in the order given."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class Topics:
    """The topics of one site."""

    site: str

    @property
    def root(self) -> str:
        """``rxfill/<site>``."""
        return f"rxfill/{self.site}"

    @property
    def supervisor(self) -> str:
        """Where the supervisor's online/offline status is retained."""
        return f"{self.root}/supervisor"

    @property
    def client_id(self) -> str:
        """The supervisor's fixed MQTT client id."""
        return f"rxfill-{self.site}"

    def online(self, started_at: datetime, **extra: Any) -> Message:
        """The retained status a connect publishes."""
        return Message(self.supervisor, encode({"status": "online", "started_at":
                                                iso(started_at), **extra}), retain=True)

    def offline(self) -> Message:
        """The retained status of a clean stop, and the will's."""
        return Message(self.supervisor, encode({"status": "offline"}), retain=True)

    def alarm(self, change: AlarmChange) -> Message:
        """An alarm's retained state; an empty payload once it is over."""
        alarm = change.after
        payload = b"" if change.ended else encode(alarm.payload())
        return Message(f"{self.root}/alarms/{alarm.id}", payload, retain=True)

    def robot(self, robot: str, kind: str, *, connected: bool, state: str, job: str | None,
              updated_at: datetime) -> Message:
        """A robot's retained state."""
        return Message(f"{self.root}/robots/{robot}", encode({
            "robot": robot, "kind": kind, "connected": connected, "state": state, "job": job,
            "updated_at": iso(updated_at)}), retain=True)

    def event(self, kind: str, at: datetime, **fields: Any) -> Message:
        """A one-off notice (not retained)."""
        if kind not in EVENT_KINDS:
            raise ValueError(f"event {kind!r} is not one of the ICD's {EVENT_KINDS}")
        return Message(f"{self.root}/events/{kind}",
                       encode({"event": kind, "at": iso(at), **fields}), retain=False)
