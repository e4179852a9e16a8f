"""The prescription's label text on its order; labels printed; hand counts; releases.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from controller.store.schema import UtcDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("patient_address", sa.Text))
        batch.add_column(sa.Column("sig", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("prescriber_name", sa.String(200)))
        batch.add_column(sa.Column("prescriber_npi", sa.String(10)))
        batch.add_column(sa.Column("prescriber_dea", sa.String(9)))
        batch.add_column(sa.Column("refills", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("days_supply", sa.Integer))
        batch.add_column(sa.Column("priority", sa.String(10), nullable=False,
                                   server_default="routine"))
        batch.add_column(sa.Column("fulfilment", sa.String(10), nullable=False,
                                   server_default="pickup"))
        batch.add_column(sa.Column("written_on", sa.Date))
    with op.batch_alter_table("fills") as batch:
        batch.add_column(sa.Column("counted_by", sa.String(80)))
    op.create_table(
        "labels",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("fill_id", sa.Integer, sa.ForeignKey("fills.id"), nullable=False),
        sa.Column("copy", sa.Integer, nullable=False),
        sa.Column("who", sa.String(80), nullable=False),
        sa.Column("printer", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "releases",
        sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), primary_key=True),
        sa.Column("fill_id", sa.Integer, sa.ForeignKey("fills.id"), nullable=False),
        sa.Column("destination", sa.String(20), nullable=False),
        sa.Column("carrier", sa.String(40)),
        sa.Column("tracking", sa.String(60)),
        sa.Column("who", sa.String(80), nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("releases")
    op.drop_table("labels")
    with op.batch_alter_table("fills") as batch:
        batch.drop_column("counted_by")
    with op.batch_alter_table("orders") as batch:
        for column in ("written_on", "fulfilment", "priority", "days_supply", "refills",
                       "prescriber_dea", "prescriber_npi", "prescriber_name", "sig",
                       "patient_address"):
            batch.drop_column(column)
