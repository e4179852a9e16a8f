"""What every router takes: the pharmacy it serves, the signed-in person, and bounded ids."""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from controller.domain.roles import Person
from controller.pharmacy.service import Pharmacy
from controller.store.people import AuthError

MAX_ID = 2**63 - 1
"""The largest id a store issues (SQLite's and PostgreSQL's 64-bit integer)."""

OrderId = Annotated[int, Path(ge=1, le=MAX_ID, description="an order's id")]
FillId = Annotated[int, Path(ge=1, le=MAX_ID, description="a fill's (a vial's) id")]
LabelCode = Annotated[str, Path(description=(
    "what a vial label's barcode holds: F and 8 digits, e.g. F00000123 (anything else is 422, "
    "after the role is checked)"))]

_bearer = HTTPBearer(auto_error=False)


def _pharmacy(request: Request) -> Pharmacy:
    pharmacy: Pharmacy = request.app.state.pharmacy
    return pharmacy


Site = Annotated[Pharmacy, Depends(_pharmacy)]
"""The pharmacy the app serves (``create_app``'s)."""


async def _person(pharmacy: Site, credentials: Annotated[HTTPAuthorizationCredentials | None,
                                                         Depends(_bearer)]) -> Person:
    if credentials is None:
        raise AuthError("sign in first (POST /api/sign-in), then send "
                        "'Authorization: Bearer <token>'")
    return await pharmacy.store.people.person_for(credentials.credentials)


Who = Annotated[Person, Depends(_person)]
"""The person whose bearer token came with the request (401 without one)."""


def only(*known: str) -> Callable[[Request], Awaitable[None]]:
    """A dependency that refuses a query parameter the route does not know (a misspelt
    filter must never list everything)."""
    async def check(request: Request) -> None:
        unknown = sorted(set(request.query_params) - set(known))
        if unknown:
            raise RequestValidationError([{
                "loc": ("query", name), "type": "extra_forbidden",
                "msg": f"is not a known query parameter; expected "
                       f"{', '.join(known) or 'none'}", "input": None} for name in unknown])
    return check
