"""The store: orders, fills, bins and their lots, alarms and the outbox, behind one interface."""

from controller.store.alarm_records import AlarmEvent, Outgoing
from controller.store.errors import StoreError
from controller.store.stock import (
    SUPERVISOR,
    BinRecord,
    BinSpec,
    Movement,
    RecalledVial,
)
from controller.store.store import (
    FillRecord,
    FillResult,
    OrderRecord,
    SetAsideVial,
    Store,
    sqlite_url,
)

__all__ = [
    "SUPERVISOR",
    "AlarmEvent",
    "BinRecord",
    "BinSpec",
    "FillRecord",
    "FillResult",
    "Movement",
    "OrderRecord",
    "Outgoing",
    "RecalledVial",
    "SetAsideVial",
    "Store",
    "StoreError",
    "sqlite_url",
]
