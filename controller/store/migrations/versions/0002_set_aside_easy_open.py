"""Easy-open caps on orders; partial vials set aside and what became of them.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from controller.store.schema import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("easy_open", sa.Boolean, nullable=False,
                                   server_default=sa.false()))
    op.create_table(
        "set_aside",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("fill_id", sa.Integer, sa.ForeignKey("fills.id"), nullable=False, unique=True),
        sa.Column("bin_id", sa.Integer, sa.ForeignKey("bins.id"), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("disposition", sa.String(20)),
        sa.Column("disposed_by", sa.String(80)),
        sa.Column("disposed_at", UtcDateTime),
    )


def downgrade() -> None:
    op.drop_table("set_aside")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("easy_open")
