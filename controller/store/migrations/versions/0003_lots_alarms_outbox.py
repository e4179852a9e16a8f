"""Lots on bin movements (first-expired-first-out, recalls); alarms; the MQTT outbox.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from controller.store.schema import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bin_movements") as batch:
        batch.add_column(sa.Column("lot", sa.String(20)))
        batch.add_column(sa.Column("expiry", sa.Date))
        batch.add_column(sa.Column("serial", sa.String(20)))
    # Every movement so far was of the lot its bin was loaded with.
    op.execute("UPDATE bin_movements SET lot = (SELECT lot FROM bins WHERE bins.id = "
               "bin_movements.bin_id), expiry = (SELECT expiry FROM bins WHERE bins.id = "
               "bin_movements.bin_id)")
    with op.batch_alter_table("bin_movements") as batch:
        batch.alter_column("lot", existing_type=sa.String(20), nullable=False)
        batch.alter_column("expiry", existing_type=sa.Date, nullable=False)
    op.create_table(
        "alarms",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("priority", sa.String(10), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("robot", sa.String(32), nullable=False),
        sa.Column("bin", sa.Integer),
        sa.Column("facts", sa.Text, nullable=False),
        sa.Column("raised_at", UtcDateTime),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.Column("acked_by", sa.String(80)),
        sa.Column("acked_at", UtcDateTime),
        sa.Column("shelved_by", sa.String(80)),
        sa.Column("shelved_reason", sa.Text),
        sa.Column("shelved_until", UtcDateTime),
        sa.Column("seq", sa.Integer, nullable=False),
    )
    op.create_table(
        "alarm_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("alarm_id", sa.String(64), sa.ForeignKey("alarms.id"), nullable=False),
        sa.Column("from_state", sa.String(20)),
        sa.Column("to_state", sa.String(20), nullable=False),
        sa.Column("who", sa.String(80), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("retain", sa.Boolean, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("alarm_events")
    op.drop_table("alarms")
    with op.batch_alter_table("bin_movements") as batch:
        batch.drop_column("serial")
        batch.drop_column("expiry")
        batch.drop_column("lot")
