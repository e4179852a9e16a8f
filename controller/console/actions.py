"""What people do at the console (POST): each form is checked (CSRF, its fields by the
API's own bodies), handed to the same service the API calls, and answered by the page
again, saying what was done or why not."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse

from controller.console.sessions import Session
from controller.console.web import REFUSALS, Here, Signed, back, checked_form, words
from controller.console.web import router as console_router
from controller.domain.alarms import AlarmError
from controller.domain.stock import RestockRefused

router = console_router()

async def act_on(request: Request, session: Session, to: str,
               act: Callable[[dict[str, str]], Awaitable[str]]) -> RedirectResponse:
    """Check the form, act, say what was done (or the refusal, and nothing changed)."""
    form = await checked_form(request, session)
    try:
        session.say("ok", await act(form))
    except REFUSALS as exc:
        session.say("refused", f"Refused: {words(exc)}")
    return back(to)


def fields_of(form: dict[str, str], *, flags: tuple[str, ...] = ()) -> dict[str, Any]:
    """A form's filled fields (an empty one is absent); checkboxes in ``flags`` as bools."""
    fields: dict[str, Any] = {k: v for k, v in form.items() if v.strip() and k not in flags}
    for flag in flags:
        fields[flag] = form.get(flag) in ("on", "yes", "true")
    return fields


# -- robots ---------------------------------------------------------------------------

@router.post("/robots/{robot}/clear")
async def clear(request: Request, robot: str, session: Signed, console: Here) -> RedirectResponse:
    """The person fixed what stopped the robot, and took what its output held."""
    async def act(_: dict[str, str]) -> str:
        await console.pharmacy.clear_robot(robot, session.person)
        return f"{robot} cleared by {session.person.name}: it takes work again."
    return await act_on(request, session, f"/robots/{robot}", act)


@router.post("/robots/{robot}/take")
async def take(request: Request, robot: str, session: Signed, console: Here) -> RedirectResponse:
    """The person took the vial or tablets waiting in the robot's output."""
    async def act(_: dict[str, str]) -> str:
        await console.pharmacy.take_output(robot, session.person)
        return f"{robot}'s output taken by {session.person.name}."
    return await act_on(request, session, f"/robots/{robot}", act)


@router.post("/robots/{robot}/service")
async def service(request: Request, robot: str, session: Signed,
                  console: Here) -> RedirectResponse:
    """Out of service for maintenance (its alarms with it), or back in service."""
    async def act(form: dict[str, str]) -> str:
        back_in = form.get("in_service") == "yes"
        await console.pharmacy.alarms.set_in_service(robot, session.person, back_in)
        return (f"{robot} {'back in' if back_in else 'out of'} service "
                f"({session.person.name}).")
    return await act_on(request, session, f"/robots/{robot}", act)


# -- alarms and bins ---------------------------------------------------------------------

@router.post("/alarms/{alarm_id}/acknowledge")
async def acknowledge(request: Request, alarm_id: str, session: Signed,
                      console: Here) -> RedirectResponse:
    """The person has seen the alarm and takes charge."""
    async def act(_: dict[str, str]) -> str:
        await console.pharmacy.alarms.acknowledge(alarm_id, session.person)
        return f"Alarm {alarm_id} acknowledged by {session.person.name}."
    return await act_on(request, session, request.headers.get("x-back", "/alarms"), act)


@router.post("/alarms/{alarm_id}/shelve")
async def shelve(request: Request, alarm_id: str, session: Signed,
                 console: Here) -> RedirectResponse:
    """Silence the alarm for a while, saying why."""
    async def act(form: dict[str, str]) -> str:
        try:
            minutes = float(form.get("minutes", ""))
        except ValueError:
            raise AlarmError(f"shelve for {form.get('minutes')!r} minutes: expected a "
                             f"number of minutes") from None
        change = await console.pharmacy.alarms.shelve(alarm_id, session.person,
                                                      form.get("reason", ""), minutes)
        until = change.after.shelved_until
        return (f"Alarm {alarm_id} shelved by {session.person.name} until "
                f"{until:%H:%M} UTC." if until else f"Alarm {alarm_id} shelved.")
    return await act_on(request, session, "/alarms", act)


@router.post("/alarms/{alarm_id}/unshelve")
async def unshelve(request: Request, alarm_id: str, session: Signed,
                   console: Here) -> RedirectResponse:
    """End a shelf early."""
    async def act(_: dict[str, str]) -> str:
        await console.pharmacy.alarms.unshelve(alarm_id, session.person)
        return f"Alarm {alarm_id} unshelved by {session.person.name}."
    return await act_on(request, session, "/alarms", act)


@router.post("/bins/restock")
async def restock(request: Request, session: Signed, console: Here) -> RedirectResponse:
    """A stock bottle scanned into a bin: the bin, then the scan."""
    async def act(form: dict[str, str]) -> str:
        robot, _, number = form.get("bin", "").partition("/")
        if not robot or not number.isdigit():
            raise RestockRefused(f"bin {form.get('bin')!r}: choose the bin to restock "
                                 f"(ROBOT/NUMBER)")
        quantity = form.get("quantity", "").strip()
        if quantity and not quantity.isdigit():
            raise RestockRefused(f"quantity {quantity!r}: expected a whole number of tablets")
        scan = form.get("scan", "").strip()
        done = await console.pharmacy.bins.restock(robot, int(number), scan, session.person,
                                                   int(quantity) if quantity else None)
        cleared = [c.after.id for c in done.alarms if not c.after.active]
        return (f"Scanned lot {done.bottle.lot} into {robot}/{number}: +{done.quantity} "
                f"tablets, {done.bin.on_hand} on hand"
                + (f"; cleared {', '.join(cleared)}" if cleared else "") + ".")
    return await act_on(request, session, "/bins", act)
