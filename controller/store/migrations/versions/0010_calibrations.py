"""Each bin's calibrations, versioned, for the NDC each was made for.

The table starts empty: the supervisor's next start records each bin's calibration from the
configuration (for the NDC the configuration and the store agree the bin holds).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

from controller.store.schema import UtcDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calibrations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("robot", sa.String(32), nullable=False),
        sa.Column("bin", sa.Integer, nullable=False),
        sa.Column("ndc", sa.String(13), nullable=False),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("who", sa.String(80), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_calibrations_bin", "calibrations", ["robot", "bin"])


def downgrade() -> None:
    op.drop_index("ix_calibrations_bin", "calibrations")
    op.drop_table("calibrations")
