"""The store: orders, fills, bins and their movements, behind one async interface."""

from controller.store.store import (
    SUPERVISOR,
    BinRecord,
    BinSpec,
    FillRecord,
    FillResult,
    Movement,
    OrderRecord,
    SetAsideVial,
    Store,
    StoreError,
    sqlite_url,
)

__all__ = [
    "SUPERVISOR",
    "BinRecord",
    "BinSpec",
    "FillRecord",
    "FillResult",
    "Movement",
    "OrderRecord",
    "SetAsideVial",
    "Store",
    "StoreError",
    "sqlite_url",
]
