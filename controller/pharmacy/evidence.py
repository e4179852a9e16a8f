"""What the pharmacist sees at the verification station for one vial, from the store's own
records."""

from __future__ import annotations

from dataclasses import dataclass

from controller.domain.drugs import Formulary
from controller.domain.orders import FillOutcome
from controller.pharmacy.refusals import NotFound
from controller.store import FillRecord, OrderRecord, Store, StoreError
from controller.store.verification import LabelRecord


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the pharmacist sees at the verification station for one vial."""

    order: OrderRecord
    fill: FillRecord
    drug: str
    schedule: str | None
    lots: list[dict[str, str]]
    """Each lot the vial drew from: lot, expiry."""
    history: list[dict[str, str | None]]
    """Every transition: from, to, who, reason."""
    exceptions: list[str]
    """What went wrong on the way (failed fills' details)."""
    labels: list[LabelRecord]
    filled_by: str
    """``robot tc1 bin 3``, or the person who counted by hand."""
    labelled_by: str | None


async def evidence_of(store: Store, formulary: Formulary, fill_id: int) -> Evidence:
    """Everything the pharmacist checks before approving vial ``fill_id`` (NotFound when
    there is no such vial)."""
    try:
        fill, order = await store.vials.vial(fill_id)
    except StoreError as exc:
        raise NotFound(str(exc)) from None
    fills = await store.orders.fills(order.id)
    drug = formulary[order.ndc]
    history = [{"from": f, "to": t, "who": w, "reason": r}
               for f, t, w, r in await store.orders.order_history(order.id)]
    failed = [f"{f.robot} bin {f.bin}: {f.outcome}: {f.detail}" for f in fills
              if f.outcome not in (None, FillOutcome.FILLED)]
    lots = [{"lot": lot, "expiry": f"{expiry:%Y-%m-%d}"}
            for lot, expiry in await store.orders.fill_lots(fill.id)]
    return Evidence(
        order=order, fill=fill, drug=f"{drug.display_name} ({drug.description})",
        schedule=order.schedule, lots=lots, history=history, exceptions=failed,
        labels=await store.verification.labels_for(fill.id),
        filled_by=(f"counted by hand by {fill.counted_by}" if fill.counted_by
                   else f"robot {fill.robot} bin {fill.bin}"),
        labelled_by=fill.labelled_by)
