"""The audit trail anchored outside the database, and closed to INSERT OR REPLACE.

Each entry gets its anchor (the audit key's HMAC of its hash). A trigger refuses any
insert that is not the next entry after the last one: ``INSERT OR REPLACE`` and
``REPLACE INTO`` delete the row they replace without firing the DELETE trigger, so before
this they rewrote entries with the triggers in place.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from controller.domain.audit import GENESIS

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit", sa.Column("anchor", sa.String(80)))
    op.execute(
        "CREATE TRIGGER audit_append_only BEFORE INSERT ON audit "
        "WHEN NEW.seq IS NOT (SELECT coalesce(max(seq), 0) + 1 FROM audit) "
        f"OR NEW.prev_hash IS NOT coalesce((SELECT hash FROM audit ORDER BY seq DESC LIMIT 1),"
        f" '{GENESIS}') "
        "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: an entry must follow the "
        "last one (INSERT OR REPLACE refused)'); END")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS audit_append_only")
    with op.batch_alter_table("audit") as batch:
        batch.drop_column("anchor")
