"""People: sign in, who am I, a pharmacist on duty."""

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request

from controller.api.bodies import SignIn
from controller.api.deps import Site, Who

router = APIRouter(tags=["people"])


@router.post("/api/sign-in")
async def sign_in(body: SignIn, pharmacy: Site, request: Request) -> dict[str, Any]:
    """A bearer token for this user; it expires after the configured hours."""
    hours: float = request.app.state.token_hours
    token = await pharmacy.store.people.sign_in(body.name, body.password, timedelta(hours=hours))
    me = await pharmacy.store.people.person_for(token)
    return {"token": token, "name": me.name, "roles": sorted(me.roles),
            "expires_in_s": int(hours * 3600)}


@router.get("/api/me")
async def me(who: Who) -> dict[str, Any]:
    """Who this token belongs to."""
    return {"name": who.name, "roles": sorted(who.roles)}


@router.post("/api/duty")
async def duty(who: Who, pharmacy: Site) -> dict[str, Any]:
    """A pharmacist signs on duty: the labels printed from now on name them."""
    await pharmacy.sign_on_duty(who)
    return {"pharmacist_on_duty": who.name}
