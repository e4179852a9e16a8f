"""Which vial an order goes in, and which cap it gets: pure rules."""

from __future__ import annotations

VIAL_DRAMS = (6, 8, 13, 16, 20, 30, 40, 60)
"""The vial sizes a filler's hoppers hold."""
MM3_PER_DRAM = 3696.69
"""One US fluid dram."""
PACKING = 0.60
"""Tablets poured into a vial fill about 60 % of the space they take."""
HEADROOM = 1.25
"""A quarter more room, so the cap closes and the tablets are not crushed."""


def vial_volume_needed_mm3(quantity: int, unit_volume_mm3: float) -> float:
    """The inside volume ``quantity`` tablets of ``unit_volume_mm3`` need, headroom included."""
    if quantity < 1 or unit_volume_mm3 <= 0:
        raise ValueError(f"quantity {quantity} and unit volume {unit_volume_mm3} mm³ must be "
                         f"positive")
    return quantity * unit_volume_mm3 / PACKING * HEADROOM


def vial_for(quantity: int, unit_volume_mm3: float) -> int | None:
    """The smallest vial (drams) that holds the tablets with headroom; None when none does."""
    needed = vial_volume_needed_mm3(quantity, unit_volume_mm3)
    return next((d for d in VIAL_DRAMS if d * MM3_PER_DRAM >= needed), None)


def cap_for(easy_open: bool) -> str:
    """Child-resistant unless the patient asked for easy-open caps."""
    return "easy_open" if easy_open else "child_resistant"
