"""What people do with orders and vials at the console (POST): the queue's exceptions, the
label station, and the pharmacist's verification. Each form's fields are checked by the
API's own bodies, and each step is the service's."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse

from controller.api.bodies import (
    Cancel,
    HandCount,
    Reject,
    ReleaseIn,
    Reprint,
    Retry,
    Scan,
    Witness,
)
from controller.console.actions import act_on, fields_of
from controller.console.web import REFUSALS, Here, Signed, back, checked_form, words
from controller.console.web import router as console_router
from controller.store import fill_code

router = console_router()


# -- the queue's exceptions ----------------------------------------------------------------

@router.post("/orders/{order_id}/retry")
async def retry(request: Request, order_id: int, session: Signed,
                console: Here) -> RedirectResponse:
    """Send an order in exception to the robots again (to one, if chosen)."""
    async def act(form: dict[str, str]) -> str:
        body = Retry.model_validate(fields_of(form))
        order = await console.pharmacy.retry(order_id, session.person, body.robot)
        return f"Order {order_id} sent again ({order.state}) by {session.person.name}."
    return await act_on(request, session, "/queue", act)


@router.post("/orders/{order_id}/cancel")
async def cancel(request: Request, order_id: int, session: Signed,
                 console: Here) -> RedirectResponse:
    """Give the order up, saying why."""
    async def act(form: dict[str, str]) -> str:
        body = Cancel.model_validate(fields_of(form))
        await console.pharmacy.cancel(order_id, session.person, body.reason, body.tablets)
        return f"Order {order_id} cancelled by {session.person.name}: {body.reason}."
    return await act_on(request, session, "/queue", act)


@router.post("/orders/{order_id}/hand-count")
async def hand_count(request: Request, order_id: int, session: Signed,
                     console: Here) -> RedirectResponse:
    """The order counted by hand; the vial's weight must agree with the count."""
    async def act(form: dict[str, str]) -> str:
        body = HandCount.model_validate(
            {k: int(v) if k in ("count", "bin", "found") and v.isdigit() else v
             for k, v in fields_of(form).items()})
        source = (body.robot, body.bin) if body.robot and body.bin else None
        await console.pharmacy.hand_count(order_id, session.person, body.count,
                                          body.weight_mg, source, body.found)
        return f"Order {order_id}: {body.count} counted by hand by {session.person.name}."
    return await act_on(request, session, "/queue", act)


# -- the label station ----------------------------------------------------------------------

@router.post("/labels/{order_id}/reprint")
async def reprint(request: Request, order_id: int, session: Signed,
                  console: Here) -> RedirectResponse:
    """Print the vial's label again, saying why."""
    async def act(form: dict[str, str]) -> str:
        body = Reprint.model_validate(fields_of(form))
        await console.pharmacy.print_label(order_id, who=session.person, reason=body.reason)
        return f"Label of order {order_id} printed again by {session.person.name}."
    return await act_on(request, session, "/labels", act)


@router.post("/labels/{order_id}/scan")
async def scan_label(request: Request, order_id: int, session: Signed,
                     console: Here) -> RedirectResponse:
    """The label scanned at the vial of ``order_id``: it is that vial's, or refused."""
    async def act(form: dict[str, str]) -> str:
        body = Scan.model_validate({"scanned": form.get("scanned", "").strip()})
        order = await console.pharmacy.scan_label(order_id, body.scanned, session.person)
        return (f"Scanned {body.scanned}: label confirmed on the vial of order {order.id} "
                f"by {session.person.name}; the vial goes to verification.")
    return await act_on(request, session, "/labels", act)


# -- verification ---------------------------------------------------------------------------

@router.post("/verify")
async def verify_scan(request: Request, session: Signed, console: Here) -> RedirectResponse:
    """The pharmacist scanned a vial's label: its evidence, or why not."""
    form = await checked_form(request, session)
    scanned = form.get("scanned", "").strip()
    try:
        evidence = await console.pharmacy.evidence_for_label(scanned, session.person)
    except REFUSALS as exc:
        session.say("refused", f"Scanned {scanned!r}: {words(exc)}")
        return back("/verify")
    session.say("ok", f"Scanned {scanned}: vial {evidence.fill.code} of order "
                      f"{evidence.order.id}.")
    return back(f"/verify/{evidence.fill.id}")


@router.post("/verify/{fill_id}/witness")
async def witness(request: Request, fill_id: int, session: Signed,
                  console: Here) -> RedirectResponse:
    """A pharmacist's witnessed second count of a schedule II vial."""
    async def act(form: dict[str, str]) -> str:
        count = form.get("count", "")
        body = Witness.model_validate({"count": int(count) if count.isdigit() else count})
        await console.pharmacy.witness(fill_id, body.count, session.person)
        return f"{body.count} counted again by {session.person.name} (witness)."
    return await act_on(request, session, f"/verify/{fill_id}", act)


@router.post("/verify/{fill_id}/approve")
async def approve(request: Request, fill_id: int, session: Signed,
                  console: Here) -> RedirectResponse:
    """The pharmacist approves the vial."""
    async def act(_: dict[str, str]) -> str:
        order = await console.pharmacy.verify(fill_id, session.person)
        return f"Vial {fill_code(fill_id)} of order {order.id} verified by {session.person.name}."
    return await act_on(request, session, f"/verify/{fill_id}", act)


@router.post("/verify/{fill_id}/reject")
async def reject(request: Request, fill_id: int, session: Signed,
                 console: Here) -> RedirectResponse:
    """The pharmacist refuses the vial, saying why: filled again, or given up."""
    async def act(form: dict[str, str]) -> str:
        body = Reject.model_validate(fields_of(form, flags=("fill_again",)))
        order = await console.pharmacy.reject(fill_id, session.person, body.reason,
                                              fill_again=body.fill_again, tablets=body.tablets)
        return (f"Vial {fill_code(fill_id)} rejected by {session.person.name}: {body.reason}; "
                f"order {order.id} is {order.state}.")
    return await act_on(request, session, f"/verify/{fill_id}", act)


@router.post("/verify/{fill_id}/release")
async def release(request: Request, fill_id: int, session: Signed,
                  console: Here) -> RedirectResponse:
    """To the pickup bin, or to shipping with carrier and tracking number."""
    async def act(form: dict[str, str]) -> str:
        body = ReleaseIn.model_validate(fields_of(form))
        order = await console.pharmacy.release(fill_id, session.person, body.destination,
                                               body.carrier, body.tracking)
        return (f"Vial {fill_code(fill_id)} of order {order.id} released to "
                f"{body.destination} by {session.person.name}.")
    return await act_on(request, session, f"/verify/{fill_id}", act)
