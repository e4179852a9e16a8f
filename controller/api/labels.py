"""The label station: print (and reprint), scan onto the vial, preview."""

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from controller.api.bodies import Reprint, Scan, order_out
from controller.api.deps import OrderId, Site, Who
from controller.domain.labels import layout
from controller.pharmacy.previews import render_pdf, render_png
from controller.pharmacy.refusals import NotFound

router = APIRouter()


@router.post("/api/orders/{order_id}/label/print", tags=["technician"])
async def print_label(order_id: OrderId, body: Reprint, who: Who,
                      pharmacy: Site) -> dict[str, Any]:
    """Print the vial's label again (a reprint needs a reason and is counted)."""
    record = await pharmacy.print_label(order_id, who=who, reason=body.reason)
    return {"fill": record.fill_id, "copy": record.copy, "printer": record.printer}


@router.post("/api/orders/{order_id}/label/scan", tags=["technician"])
async def scan_label(order_id: OrderId, body: Scan, who: Who, pharmacy: Site) -> dict[str, Any]:
    """The label scanned at the filled vial: LABELED if it is that vial's label."""
    return order_out(await pharmacy.scan_label(order_id, body.scanned, who))


@router.get("/api/orders/{order_id}/label.{kind}", tags=["labels"])
async def label_preview(order_id: OrderId, kind: str, _: Who, pharmacy: Site) -> Response:
    """The vial's label as the printer gets it (zpl) or as a preview (png, pdf)."""
    if kind not in ("zpl", "png", "pdf"):
        raise NotFound(f"no label.{kind}; expected label.zpl, label.png or label.pdf")
    elements = layout(await pharmacy.label(order_id))
    if kind == "zpl":
        if pharmacy.printer is None:
            raise NotFound("no label printer is configured: label.png and label.pdf show "
                           "the label")
        return Response(pharmacy.printer.render(elements),
                        media_type="text/plain; charset=utf-8")
    if kind == "png":
        return Response(render_png(elements), media_type="image/png")
    return Response(render_pdf(elements), media_type="application/pdf")
