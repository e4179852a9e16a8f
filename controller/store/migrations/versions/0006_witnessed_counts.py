"""Second counts of schedule II drugs, witnessed by a pharmacist.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from controller.store.schema import UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "witnessed_counts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("fill_id", sa.Integer, sa.ForeignKey("fills.id"), nullable=False),
        sa.Column("who", sa.String(80), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("witnessed_counts")
