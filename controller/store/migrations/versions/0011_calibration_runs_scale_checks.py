"""Guided calibrations (their runs and proposals) and scale checks.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

from controller.store.schema import UtcDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calibration_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("robot", sa.String(32), nullable=False),
        sa.Column("bin", sa.Integer, nullable=False),
        sa.Column("ndc", sa.String(13), nullable=False),
        sa.Column("runs", sa.Text, nullable=False),
        sa.Column("proposal", sa.Text),
        sa.Column("why", sa.Text, nullable=False),
        sa.Column("previous", sa.Integer),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("who", sa.String(80), nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("decided_by", sa.String(80)),
        sa.Column("decided_at", UtcDateTime),
        sa.Column("calibration", sa.Integer),
    )
    op.create_index("ix_calibration_runs_bin", "calibration_runs", ["robot", "bin"])
    op.create_table(
        "scale_checks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("robot", sa.String(32), nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("readings", sa.Text, nullable=False),
        sa.Column("who", sa.String(80), nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_scale_checks_robot", "scale_checks", ["robot"])


def downgrade() -> None:
    op.drop_index("ix_scale_checks_robot", "scale_checks")
    op.drop_table("scale_checks")
    op.drop_index("ix_calibration_runs_bin", "calibration_runs")
    op.drop_table("calibration_runs")
