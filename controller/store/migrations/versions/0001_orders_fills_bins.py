"""Orders, their transitions, bins, fills and bin movements.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from controller.store.schema import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "store_info",
        sa.Column("key", sa.String(40), primary_key=True),
        sa.Column("value", sa.String(200), nullable=False),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("rx_number", sa.String(20), nullable=False),
        sa.Column("patient_id", sa.String(40), nullable=False),
        sa.Column("patient_name", sa.String(200), nullable=False),
        sa.Column("patient_birth_date", sa.Date, nullable=False),
        sa.Column("ndc", sa.String(13), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("received_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "order_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), nullable=False),
        sa.Column("from_state", sa.String(20)),
        sa.Column("to_state", sa.String(20), nullable=False),
        sa.Column("who", sa.String(80), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "bins",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("robot", sa.String(32), nullable=False),
        sa.Column("bin", sa.Integer, nullable=False),
        sa.Column("ndc", sa.String(13), nullable=False),
        sa.Column("lot", sa.String(20), nullable=False),
        sa.Column("expiry", sa.Date, nullable=False),
        sa.Column("par", sa.Integer, nullable=False),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.UniqueConstraint("robot", "bin"),
    )
    op.create_table(
        "fills",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), nullable=False),
        sa.Column("bin_id", sa.Integer, sa.ForeignKey("bins.id"), nullable=False),
        sa.Column("job", sa.String(16), unique=True),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("outcome", sa.String(20)),
        sa.Column("counted", sa.Integer),
        sa.Column("weight_mg", sa.Integer),
        sa.Column("expected_mg", sa.Float),
        sa.Column("tolerance_mg", sa.Float),
        sa.Column("verdict", sa.String(20)),
        sa.Column("detail", sa.Text),
        sa.Column("started_at", UtcDateTime, nullable=False),
        sa.Column("ended_at", UtcDateTime),
    )
    op.create_table(
        "bin_movements",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("bin_id", sa.Integer, sa.ForeignKey("bins.id"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("fill_id", sa.Integer, sa.ForeignKey("fills.id")),
        sa.Column("who", sa.String(80), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_bin_movements_bin", "bin_movements", ["bin_id"])
    op.create_index("ix_fills_state", "fills", ["state"])


def downgrade() -> None:
    for table in ("bin_movements", "fills", "bins", "order_events", "orders", "store_info"):
        op.drop_table(table)
