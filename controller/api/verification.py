"""The verification station (pharmacists): each step acts on the scanned vial."""

from typing import Any

from fastapi import APIRouter

from controller.api.bodies import Reject, ReleaseIn, Witness, order_out
from controller.api.deps import LabelCode, OrderId, Site, Who
from controller.pharmacy.evidence import Evidence

router = APIRouter(tags=["pharmacist"])


@router.get("/api/labels/{scanned}")
async def by_label(scanned: LabelCode, who: Who, pharmacy: Site) -> dict[str, Any]:
    """The verification station: a scanned label → that vial's evidence (409 with why when
    the vial is no longer its order's)."""
    return evidence_out(await pharmacy.evidence_for_label(scanned, who))


@router.get("/api/orders/{order_id}/evidence")
async def evidence(order_id: OrderId, who: Who, pharmacy: Site) -> dict[str, Any]:
    """The order's vial now: drug, NDC, lots, counts, weight, who, what went wrong."""
    return evidence_out(await pharmacy.evidence_for_order(order_id, who))


def evidence_out(e: Evidence) -> dict[str, Any]:
    """What the pharmacist sees of a vial, as JSON."""
    f = e.fill
    return {
        "label": f.code, "order": order_out(e.order), "drug": e.drug,
        "schedule": e.schedule, "ndc": e.order.ndc, "lots": e.lots,
        "quantity_asked": e.order.quantity, "counted": f.counted,
        "weight": {"measured_mg": f.weight_mg, "expected_mg": f.expected_mg,
                   "tolerance_mg": f.tolerance_mg, "verdict": f.verdict},
        "filled_by": e.filled_by, "labelled_by": e.labelled_by,
        "verified_by": f.verified_by,
        "exceptions": e.exceptions, "history": e.history,
        "labels": [{"copy": x.copy, "outcome": x.outcome, "who": x.who,
                    "reason": x.reason, "at": x.at.isoformat()} for x in e.labels],
    }


@router.post("/api/labels/{scanned}/witness")
async def witness(scanned: LabelCode, body: Witness, who: Who,
                  pharmacy: Site) -> dict[str, Any]:
    """A schedule II vial's second count, witnessed by a pharmacist who neither handled
    nor verified it."""
    fill_id = await pharmacy.vial_for_label(scanned)
    await pharmacy.witness(fill_id, body.count, who)
    return {"label": scanned.strip(), "witnessed_by": who.name, "count": body.count}


@router.post("/api/labels/{scanned}/verify")
async def verify(scanned: LabelCode, who: Who, pharmacy: Site) -> dict[str, Any]:
    """Approve the scanned vial: its order VERIFIED."""
    return order_out(await pharmacy.verify(await pharmacy.vial_for_label(scanned), who))


@router.post("/api/labels/{scanned}/reject")
async def reject(scanned: LabelCode, body: Reject, who: Who, pharmacy: Site) -> dict[str, Any]:
    """Refuse the scanned vial, with a reason: its order filled again, or cancelled."""
    return order_out(await pharmacy.reject(await pharmacy.vial_for_label(scanned), who,
                                           body.reason, fill_again=body.fill_again,
                                           tablets=body.tablets))


@router.post("/api/labels/{scanned}/release")
async def release(scanned: LabelCode, body: ReleaseIn, who: Who,
                  pharmacy: Site) -> dict[str, Any]:
    """The scanned vial to the pickup bin, or to shipping with carrier and tracking."""
    return order_out(await pharmacy.release(await pharmacy.vial_for_label(scanned), who,
                                            body.destination, body.carrier, body.tracking))
