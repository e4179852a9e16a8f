"""The store: one database (``Store``: its connections and transactions) and one repository
per aggregate, each in its own module: orders and their fills (``orders.py``), vials set aside
(``vials.py``), work done by hand (``handwork.py``), bins and their lots (``stock.py``),
alarms and the outbox (``alarm_records.py``), the audit trail (``audit_records.py``), people
(``people.py``) and the verification station (``verification.py``)."""

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
