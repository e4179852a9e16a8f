"""Each vial's own record of who handled it; an order's prescription fill and drug schedule.

- orders.schedule: the drug's DEA schedule as the formulary had it at intake (NULL: not
  scheduled). Orders taken before this revision get "?", which the workflow treats as
  schedule II (a witnessed count before release): the safe reading of what was not recorded.
- orders.fill_number: 0 for the original fill of a prescription, n for its n-th refill;
  (rx_number, fill_number) is unique. Orders taken before this revision keep NULL (they may
  repeat a prescription number).
- fills.labelled_by/labelled_at, verified_by/verified_at: who scanned the label onto this
  vial and who verified it, read back from the orders' history for vials already there.
- set_aside.cause: why a vial is no longer its order's (partial, unconfirmed, rejected,
  cancelled).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

from controller.store.schema import UtcDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("schedule", sa.String(3)))
        batch.add_column(sa.Column("fill_number", sa.Integer))
        batch.create_unique_constraint("uq_orders_prescription_fill",
                                       ["rx_number", "fill_number"])
    op.execute("UPDATE orders SET schedule = '?'")
    with op.batch_alter_table("fills") as batch:
        batch.add_column(sa.Column("labelled_by", sa.String(80)))
        batch.add_column(sa.Column("labelled_at", UtcDateTime))
        batch.add_column(sa.Column("verified_by", sa.String(80)))
        batch.add_column(sa.Column("verified_at", UtcDateTime))
    with op.batch_alter_table("set_aside") as batch:
        batch.add_column(sa.Column("cause", sa.String(20)))
    op.execute("UPDATE set_aside SET cause = CASE WHEN disposed_at = at THEN 'rejected' "
               "ELSE 'partial' END")
    # The vial a labelled or verified order holds is its last complete fill; who labelled
    # and verified it is in the order's history.
    for state, who, when in (("labeled", "labelled_by", "labelled_at"),
                             ("verified", "verified_by", "verified_at")):
        op.execute(f"""
            UPDATE fills SET
              {who} = (SELECT e.who FROM order_events e WHERE e.order_id = fills.order_id
                       AND e.to_state = '{state}' ORDER BY e.id DESC LIMIT 1),
              {when} = (SELECT e.at FROM order_events e WHERE e.order_id = fills.order_id
                        AND e.to_state = '{state}' ORDER BY e.id DESC LIMIT 1)
            WHERE fills.id = (SELECT max(f.id) FROM fills f WHERE f.order_id = fills.order_id
                              AND f.outcome = 'filled')
              AND fills.id NOT IN (SELECT fill_id FROM set_aside)""")


def downgrade() -> None:
    with op.batch_alter_table("set_aside") as batch:
        batch.drop_column("cause")
    with op.batch_alter_table("fills") as batch:
        for column in ("verified_at", "verified_by", "labelled_at", "labelled_by"):
            batch.drop_column(column)
    with op.batch_alter_table("orders") as batch:
        batch.drop_constraint("uq_orders_prescription_fill", type_="unique")
        batch.drop_column("fill_number")
        batch.drop_column("schedule")
