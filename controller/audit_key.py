"""The audit key: the secret outside the database that anchors the audit trail.

It comes from the environment (``RXFILL_AUDIT_KEY``) or from a file
(``[audit] key_file``, beside the store by default but never inside it). The
site creates the file, readable by its owner only, the first time it runs;
``rxfill audit verify`` needs the same key to say the trail is whole.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from controller.config import Settings
from controller.domain.audit import AuditKey

ENV = "RXFILL_AUDIT_KEY"


class AuditKeyMissing(LookupError):
    """No key where the configuration says, and none in the environment."""


def audit_key_path(settings: Settings) -> Path:
    """Where the configuration keeps the audit key."""
    return settings.resolve(settings.config.audit.key_file)


def load_audit_key(settings: Settings, *, create: bool) -> AuditKey:
    """The audit key: ``RXFILL_AUDIT_KEY``, else the key file (made when ``create`` and absent).

    AuditKeyMissing when there is none and ``create`` is false; ValueError for a key too
    short to be a secret.
    """
    if value := os.environ.get(ENV):
        return AuditKey(value.encode())
    path = audit_key_path(settings)
    if create and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it a moment ago: read theirs
        else:
            with os.fdopen(handle, "w") as out:
                out.write(secrets.token_hex(32) + "\n")
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise AuditKeyMissing(f"no audit key: {path} does not exist and {ENV} is not set; "
                              f"expected the key file the site made when it first ran "
                              f"([audit] key_file)") from None
    try:
        return AuditKey(text.encode())
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
