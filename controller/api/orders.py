"""Orders: intake, the queue, and what a technician does with an order in exception."""

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from controller.api.bodies import Cancel, HandCount, OrderIn, Retry, order_out
from controller.api.deps import OrderId, Site, Who, only
from controller.domain.orders import OrderState
from controller.domain.roles import WorkflowError

router = APIRouter()


@router.post("/api/orders", status_code=201, tags=["orders"], responses={
    200: {"description": "this prescription fill is an order already: that order"}})
async def submit(body: OrderIn, who: Who, pharmacy: Site) -> JSONResponse:
    """Take a prescription fill. 422 lists every wrong field; nothing is stored then. The
    same (rx_number, fill_number) sent again answers 200 with the same order; with other
    content, 409."""
    record, new = await pharmacy.submit(body.to_order(), who)
    return JSONResponse(order_out(record), status_code=201 if new else 200,
                        headers={"Location": f"/api/orders/{record.id}"})


@router.get("/api/orders", tags=["orders"], dependencies=[Depends(only("state", "rx_number"))])
async def list_orders(_: Who, pharmacy: Site, state: OrderState | None = None,
                      rx_number: str | None = None) -> list[dict[str, Any]]:
    """Every order (in one state, of one prescription number, if asked), oldest first."""
    return [order_out(o) for o in await pharmacy.store.orders.orders(state=state,
                                                                     rx_number=rx_number)]


@router.get("/api/orders/{order_id}", tags=["orders"])
async def show(order_id: OrderId, _: Who, pharmacy: Site) -> dict[str, Any]:
    """One order with its history, its fills (each vial by its label) and its drug."""
    store = pharmacy.store
    order = await pharmacy.order(order_id)
    history = [{"from": f, "to": t, "who": w, "reason": r}
               for f, t, w, r in await store.orders.order_history(order_id)]
    aside = {v.fill_id: v for v in await store.vials.set_aside_vials()}
    fills = [{"id": f.id, "label": f.code, "robot": f.robot, "bin": f.bin,
              "outcome": f.outcome, "counted": f.counted, "detail": f.detail,
              "counted_by": f.counted_by, "labelled_by": f.labelled_by,
              "set_aside": aside[f.id].cause if f.id in aside else None}
             for f in await store.orders.fills(order_id)]
    drug = pharmacy.settings.formulary.get(order.ndc)
    return {**order_out(order), "drug": drug.display_name if drug else None,
            "history": history, "fills": fills}


@router.post("/api/orders/{order_id}/cancel", tags=["technician"])
async def cancel(order_id: OrderId, body: Cancel, who: Who, pharmacy: Site) -> dict[str, Any]:
    """Give an order up, with a reason. Once it has a filled vial, only a pharmacist may,
    saying what became of its tablets (returned or wasted)."""
    return order_out(await pharmacy.cancel(order_id, who, body.reason, body.tablets))


@router.post("/api/orders/{order_id}/retry", tags=["technician"])
async def retry(order_id: OrderId, body: Retry, who: Who, pharmacy: Site) -> dict[str, Any]:
    """An order in exception goes to a robot again (the one named, or any)."""
    return order_out(await pharmacy.retry(order_id, who, body.robot))


@router.post("/api/orders/{order_id}/hand-count", tags=["technician"])
async def hand_count(order_id: OrderId, body: HandCount, who: Who,
                     pharmacy: Site) -> dict[str, Any]:
    """An order in exception, counted by hand; its weight must agree with the count."""
    if (body.robot is None) != (body.bin is None):
        raise WorkflowError("name both robot and bin, or neither (the last fill's bin)")
    source = (body.robot, body.bin) if body.robot is not None and body.bin else None
    return order_out(await pharmacy.hand_count(order_id, who, body.count, body.weight_mg,
                                               source, body.found))
