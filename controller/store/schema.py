"""The store's tables, in SQLAlchemy Core. Migrations in migrations/ create them."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A moment in UTC: stored without zone, read back as an aware datetime."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"{value!r} has no time zone; the store keeps UTC moments")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


metadata = sa.MetaData()

store_info = sa.Table(
    "store_info", metadata,
    sa.Column("key", sa.String(40), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
)

orders = sa.Table(
    "orders", metadata,
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
    sa.Column("easy_open", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("patient_address", sa.Text),
    sa.Column("sig", sa.Text, nullable=False, server_default=""),
    sa.Column("prescriber_name", sa.String(200)),
    sa.Column("prescriber_npi", sa.String(10)),
    sa.Column("prescriber_dea", sa.String(9)),
    sa.Column("refills", sa.Integer, nullable=False, server_default="0"),
    sa.Column("days_supply", sa.Integer),
    sa.Column("priority", sa.String(10), nullable=False, server_default="routine"),
    sa.Column("fulfilment", sa.String(10), nullable=False, server_default="pickup"),
    sa.Column("written_on", sa.Date),
    sa.Column("schedule", sa.String(3)),
    sa.Column("fill_number", sa.Integer),
    sa.UniqueConstraint("rx_number", "fill_number", name="uq_orders_prescription_fill"),
)
"""A prescription's fill: (rx_number, fill_number) is one order. ``schedule`` is the drug's
DEA schedule as it was at intake (``?`` for orders taken before it was recorded)."""

order_events = sa.Table(
    "order_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), nullable=False),
    sa.Column("from_state", sa.String(20)),
    sa.Column("to_state", sa.String(20), nullable=False),
    sa.Column("who", sa.String(80), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("at", UtcDateTime, nullable=False),
)

bins = sa.Table(
    "bins", metadata,
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

calibrations = sa.Table(
    "calibrations", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("robot", sa.String(32), nullable=False),
    sa.Column("bin", sa.Integer, nullable=False),
    sa.Column("ndc", sa.String(13), nullable=False),
    sa.Column("settings", sa.Text, nullable=False),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("who", sa.String(80), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Index("ix_calibrations_bin", "robot", "bin"),
)
"""Every calibration of a bin (a channel or a cell), for the NDC it was made for, append only:
the latest is the bin's; the rest its history."""

calibration_runs = sa.Table(
    "calibration_runs", metadata,
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
    sa.Index("ix_calibration_runs_bin", "robot", "bin"),
)
"""Each guided calibration of a bin: its runs, and the proposal they support (``proposed``,
then ``accepted`` with the calibration it made) or why there is none (``no proposal``)."""

scale_checks = sa.Table(
    "scale_checks", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("robot", sa.String(32), nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("readings", sa.Text, nullable=False),
    sa.Column("who", sa.String(80), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Index("ix_scale_checks_robot", "robot"),
)
"""Each scale calibration of a robot and its check; a robot whose latest check failed fills
nothing (its weights check no count)."""

fills = sa.Table(
    "fills", metadata,
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
    sa.Column("counted_by", sa.String(80)),
    sa.Column("labelled_by", sa.String(80)),
    sa.Column("labelled_at", UtcDateTime),
    sa.Column("verified_by", sa.String(80)),
    sa.Column("verified_at", UtcDateTime),
)
"""Every attempt to fill an order; a complete one is a vial, with who handled it."""

bin_movements = sa.Table(
    "bin_movements", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("bin_id", sa.Integer, sa.ForeignKey("bins.id"), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("fill_id", sa.Integer, sa.ForeignKey("fills.id")),
    sa.Column("who", sa.String(80), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("lot", sa.String(20), nullable=False),
    sa.Column("expiry", sa.Date, nullable=False),
    sa.Column("serial", sa.String(20)),
)
"""Every change of a bin's count, lot by lot: a bin holds the sum of its movements."""

set_aside = sa.Table(
    "set_aside", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("fill_id", sa.Integer, sa.ForeignKey("fills.id"), nullable=False, unique=True),
    sa.Column("bin_id", sa.Integer, sa.ForeignKey("bins.id"), nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("disposition", sa.String(20)),
    sa.Column("disposed_by", sa.String(80)),
    sa.Column("disposed_at", UtcDateTime),
    sa.Column("cause", sa.String(20)),
)
"""A partial vial a failed fill left: tablets off their bin, until a technician says
whether they went back to stock or were wasted."""

alarms = sa.Table(
    "alarms", metadata,
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
"""Every alarm condition ever raised and where it stands (``normal`` once over)."""

alarm_events = sa.Table(
    "alarm_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("alarm_id", sa.String(64), sa.ForeignKey("alarms.id"), nullable=False),
    sa.Column("from_state", sa.String(20)),
    sa.Column("to_state", sa.String(20), nullable=False),
    sa.Column("who", sa.String(80), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("at", UtcDateTime, nullable=False),
)

outbox = sa.Table(
    "outbox", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("topic", sa.String(255), nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("retain", sa.Boolean, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)
"""MQTT messages written with the change that caused them, until the broker acknowledged them."""

audit = sa.Table(
    "audit", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("who", sa.String(80), nullable=False),
    sa.Column("action", sa.String(60), nullable=False),
    sa.Column("subject", sa.String(80), nullable=False),
    sa.Column("before", sa.Text),
    sa.Column("after", sa.Text),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("anchor", sa.String(80)),
)
"""Every action, hash-chained and anchored by a key outside the database; triggers refuse
UPDATE, DELETE (migration 0004) and any insert but the next entry (0008)."""

users = sa.Table(
    "users", metadata,
    sa.Column("name", sa.String(80), primary_key=True),
    sa.Column("roles", sa.String(120), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("changed_at", UtcDateTime, nullable=False),
)
"""People who sign in; ``roles`` is comma-separated; the hash is argon2id."""

tokens = sa.Table(
    "tokens", metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(80), sa.ForeignKey("users.name"), nullable=False),
    sa.Column("issued_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
)
"""Bearer tokens, kept as SHA-256 digests: the store never holds a usable token."""

witnessed_counts = sa.Table(
    "witnessed_counts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("fill_id", sa.Integer, sa.ForeignKey("fills.id"), nullable=False),
    sa.Column("who", sa.String(80), nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
)
"""A schedule II vial's second count, and the pharmacist who witnessed it."""

labels = sa.Table(
    "labels", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("fill_id", sa.Integer, sa.ForeignKey("fills.id"), nullable=False),
    sa.Column("copy", sa.Integer, nullable=False),
    sa.Column("who", sa.String(80), nullable=False),
    sa.Column("printer", sa.String(200), nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("at", UtcDateTime, nullable=False),
)
"""Every label sent (or refused) for a vial: copy 1 is the label, later copies are reprints."""

releases = sa.Table(
    "releases", metadata,
    sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), primary_key=True),
    sa.Column("fill_id", sa.Integer, sa.ForeignKey("fills.id"), nullable=False),
    sa.Column("destination", sa.String(20), nullable=False),
    sa.Column("carrier", sa.String(40)),
    sa.Column("tracking", sa.String(60)),
    sa.Column("who", sa.String(80), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
)
"""Where each released vial went: the pickup bin, or shipping with carrier and tracking."""
