"""The store: orders, fills and vials, bins and their lots, alarms and the outbox, people and
the audit trail, behind one interface."""

from controller.store.alarm_records import AlarmEvent, Outgoing
from controller.store.errors import StoreError
from controller.store.orders import FillRefused, PrescriptionConflict
from controller.store.recall import RecalledVial
from controller.store.records import FillRecord, FillResult, OrderRecord, SetAsideVial, fill_code
from controller.store.stock import (
    SUPERVISOR,
    BinRecord,
    BinSpec,
    Movement,
)
from controller.store.store import Store, sqlite_url

__all__ = [
    "SUPERVISOR",
    "AlarmEvent",
    "BinRecord",
    "BinSpec",
    "FillRecord",
    "FillRefused",
    "FillResult",
    "Movement",
    "OrderRecord",
    "Outgoing",
    "PrescriptionConflict",
    "RecalledVial",
    "SetAsideVial",
    "Store",
    "StoreError",
    "fill_code",
    "sqlite_url",
]
