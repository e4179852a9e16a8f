"""The audit trail: append-only, hash-chained; the database refuses to change or remove a row.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from controller.store.schema import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("who", sa.String(80), nullable=False),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("subject", sa.String(80), nullable=False),
        sa.Column("before", sa.Text),
        sa.Column("after", sa.Text),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER audit_no_{verb.lower()} BEFORE {verb} ON audit "
                       f"BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: "
                       f"{verb} refused'); END")
    else:
        raise NotImplementedError(
            f"the audit trail's append-only triggers are written for SQLite only, not "
            f"{op.get_bind().dialect.name}")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS audit_no_update")
    op.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    op.drop_table("audit")
