"""What the store hands back: orders, fills (vials), results and vials set aside."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from controller.domain.orders import FillOutcome, OrderState
from controller.domain.weight import WeightCheck
from controller.store.schema import bins, fills

FILL_CODE_PREFIX = "F"


def fill_code(fill_id: int) -> str:
    """What a label's barcode holds: the fill's id (``F00000123``)."""
    return f"{FILL_CODE_PREFIX}{fill_id:08d}"


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """A stored order."""

    id: int
    rx_number: str
    patient_id: str
    patient_name: str
    patient_birth_date: date
    ndc: str
    quantity: int
    state: OrderState
    reason: str | None
    received_at: datetime
    updated_at: datetime
    easy_open: bool
    patient_address: str | None = None
    sig: str = ""
    prescriber_name: str | None = None
    prescriber_npi: str | None = None
    prescriber_dea: str | None = None
    refills: int = 0
    days_supply: int | None = None
    priority: str = "routine"
    fulfilment: str = "pickup"
    written_on: date | None = None
    schedule: str | None = None
    """The drug's DEA schedule as the formulary had it when the order was taken."""
    fill_number: int | None = None
    """0 for the prescription's original fill, n for its n-th refill (None: taken before
    fills were numbered)."""


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One attempt to fill an order on one robot's bin; a complete one is a vial."""

    id: int
    order_id: int
    bin_id: int
    robot: str
    bin: int
    ndc: str
    """What the bin holds, which is what the order asked for."""
    job: str
    quantity: int
    state: str
    """``dispensing`` until the outcome is recorded, then ``ended``."""
    outcome: FillOutcome | None
    counted: int | None
    weight_mg: int | None
    expected_mg: float | None
    tolerance_mg: float | None
    verdict: str | None
    detail: str | None
    started_at: datetime
    ended_at: datetime | None
    counted_by: str | None = None
    """Who counted it by hand; None when a robot counted it."""
    labelled_by: str | None = None
    labelled_at: datetime | None = None
    verified_by: str | None = None
    verified_at: datetime | None = None

    @property
    def code(self) -> str:
        """The barcode on this vial's label."""
        return fill_code(self.id)


@dataclass(frozen=True, slots=True)
class FillResult:
    """What a fill came to: the outcome, the count, the weight and its check."""

    outcome: FillOutcome
    counted: int
    weight_mg: int | None
    check: WeightCheck | None
    detail: str


@dataclass(frozen=True, slots=True)
class SetAsideVial:
    """A vial that is no longer its order's, and what became of its tablets."""

    id: int
    fill_id: int
    bin_id: int
    count: int
    at: datetime
    disposition: str | None
    """None until a person records ``returned`` (to the bin) or ``wasted``."""
    disposed_by: str | None
    disposed_at: datetime | None
    cause: str | None = None
    """Why: ``partial`` (the robot stopped), ``unconfirmed`` (left by a retry or a
    cancellation), ``rejected`` or ``cancelled`` by a pharmacist."""


def fill_query() -> sa.Select[Any]:
    """Fills with their bin's robot, number and NDC."""
    return sa.select(fills, bins.c.robot, bins.c.bin, bins.c.ndc).select_from(fills.join(bins))


def order_record(row: Any) -> OrderRecord:
    """An order from its row."""
    values = dict(row)
    values["state"] = OrderState(values["state"])
    return OrderRecord(**values)


def fill_record(row: Any) -> FillRecord:
    """A fill from its row (of ``fill_query``)."""
    values = dict(row)
    if values["outcome"] is not None:
        values["outcome"] = FillOutcome(values["outcome"])
    return FillRecord(**values)
