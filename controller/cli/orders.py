"""``rxfill sign-in`` and ``rxfill orders``: prescriptions through a running site's API.

Orders go through the API (``rxfill run``), not straight into the store: the
supervisor that routes them to robots is the one that must hear of them.
The token comes from ``--token`` or ``RXFILL_TOKEN`` (``rxfill sign-in``
prints one); the API's address from ``--api`` or ``RXFILL_API``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from controller.cli.common import fail
from controller.domain.orders import OrderState

orders_app = typer.Typer(help="Prescriptions, through a running site's API (rxfill run).",
                         no_args_is_help=True)
robots_app = typer.Typer(help="Robots, through a running site's API (rxfill run): their state, "
                              "clearing them, taking their output.", no_args_is_help=True)

DEFAULT_API = "http://127.0.0.1:8470"
ApiOption = Annotated[str, typer.Option(envvar="RXFILL_API",
                                        help="The site's API (rxfill run prints it).")]
TokenOption = Annotated[str, typer.Option(envvar="RXFILL_TOKEN", show_default=False,
                                          help="A bearer token from rxfill sign-in.")]


def _call(api: str, method: str, path: str, token: str | None, body: Any = None,
          content_type: str = "application/json") -> Any:
    """One request; exit 1 with the API's own words when it refuses."""
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        with httpx.Client(base_url=api, timeout=30) as client:
            reply = client.request(method, path, headers=headers,
                                   content=None if body is None else json.dumps(body))
    except httpx.HTTPError as exc:
        raise fail(f"cannot reach the API at {api}: {exc}; is rxfill run running? "
                   f"(--api or RXFILL_API)", 2) from None
    if reply.status_code >= 400:
        try:
            data = reply.json()
        except ValueError:
            raise fail(f"{reply.status_code}: {reply.text}") from None
        detail = data.get("detail")
        if isinstance(detail, list):
            lines = [data.get("message", "refused")] + [
                f"  {p.get('field') or '.'.join(map(str, p.get('loc', [])))}: {p.get('msg')}"
                for p in detail]
            raise fail("\n".join(lines))
        raise fail(f"{reply.status_code}: {detail}")
    return reply.json()


def sign_in(
    user: Annotated[str, typer.Option(help="Your user name.")],
    api: ApiOption = DEFAULT_API,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from standard input.")] = False,
) -> None:
    """Sign in; print a token for RXFILL_TOKEN (it expires after the site's token hours)."""
    password = (sys.stdin.readline().rstrip("\n") if password_stdin
                else str(typer.prompt("Password", hide_input=True)))
    reply = _call(api, "POST", "/api/sign-in", None, {"name": user, "password": password})
    typer.echo(reply["token"])


@orders_app.command("submit")
def submit(
    file: Annotated[Path, typer.Argument(help=(
        "A JSON order (as POST /api/orders takes), a list of them, or a FHIR "
        "MedicationRequest."))],
    token: TokenOption, api: ApiOption = DEFAULT_API,
) -> None:
    """Submit orders from a file; each refused one lists what is wrong with it."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise fail(f"{file}: cannot read it: {exc.strerror}", 2) from None
    except ValueError as exc:
        raise fail(f"{file}: not JSON ({exc}); expected an order, a list of orders or a "
                   f"FHIR MedicationRequest", 2) from None
    items = data if isinstance(data, list) else [data]
    refused = 0
    for number, item in enumerate(items, start=1):
        fhir = isinstance(item, dict) and item.get("resourceType") == "MedicationRequest"
        try:
            order = _call(api, "POST", "/fhir/MedicationRequest" if fhir else "/api/orders",
                          token, item, "application/fhir+json" if fhir else "application/json")
        except typer.Exit:
            refused += 1
            typer.echo(f"{file}: order {number} of {len(items)} refused (above)", err=True)
            continue
        typer.echo(f"order {order['id']} ({order['rx_number']}): {order['state']}")
    if refused:
        raise typer.Exit(1)


@orders_app.command("list")
def list_orders(
    token: TokenOption, api: ApiOption = DEFAULT_API,
    state: Annotated[str | None, typer.Option(help=(
        f"Only orders in this state: {', '.join(OrderState)}."))] = None,
    rx_number: Annotated[str | None, typer.Option(
        help="Only the fills of this prescription number.")] = None,
) -> None:
    """Every order, oldest first."""
    if state is not None and state not in OrderState.__members__.values():
        raise fail(f"--state {state!r} is not a state; expected one of "
                   f"{', '.join(OrderState)}", 2)
    query = httpx.QueryParams({k: v for k, v in (("state", state), ("rx_number", rx_number))
                               if v})
    orders = _call(api, "GET", f"/api/orders?{query}" if query else "/api/orders", token)
    if not orders:
        which = " ".join(f"{k} {v}" for k, v in (("in state", state), ("of", rx_number)) if v)
        typer.echo(f"no orders{' ' + which if which else ''}")
        return
    typer.echo(f"{'ID':>5}  {'RX':<12} {'STATE':<10} {'NDC':<13}  {'QTY':<6}REASON")
    for order in orders:
        reason = order["reason"] or ""
        typer.echo(f"{order['id']:>5}  {order['rx_number']:<12} {order['state']:<10} "
                   f"{order['ndc']:<13}  {order['quantity']:<6}{reason}".rstrip())


@orders_app.command("show")
def show(order_id: Annotated[int, typer.Argument(help="The order's id.")],
         token: TokenOption, api: ApiOption = DEFAULT_API,
         as_json: Annotated[bool, typer.Option("--json", help="The API's JSON, whole.")] = False,
         ) -> None:
    """One order: who it is for, what, its history and each vial filled for it."""
    order = _call(api, "GET", f"/api/orders/{order_id}", token)
    if as_json:
        typer.echo(json.dumps(order, indent=2))
        return
    typer.echo("\n".join(order_lines(order)))


def order_lines(order: dict[str, Any]) -> list[str]:
    """An order as a person reads it on a terminal."""
    patient, prescriber = order["patient"], order["prescriber"]
    lines = [
        f"order {order['id']}  {order['rx_number']} (fill {order['fill_number'] or 0} of "
        f"{order['refills']} refills)  {order['state']}"
        + (f": {order['reason']}" if order["reason"] else ""),
        f"  patient     {patient['name']} (id {patient['id']}), born {patient['birth_date']}",
        f"  drug        {order.get('drug') or order['ndc']} (NDC {order['ndc']}), "
        f"{order['quantity']} units" + (f", schedule {order['schedule']}"
                                        if order.get("schedule") else ""),
        f"  directions  {order['sig']}",
        f"  prescriber  {prescriber['name'] or '-'} (NPI {prescriber['npi'] or '-'})",
        f"  priority    {order['priority']}, {order['fulfilment']}, received "
        f"{order['received_at'][:19].replace('T', ' ')}",
    ]
    if order.get("history"):
        lines.append("  history")
        lines += [f"    {h['from'] or '-':<10} -> {h['to']:<10} by {h['who']}"
                  + (f": {h['reason']}" if h["reason"] else "") for h in order["history"]]
    if order.get("fills"):
        lines.append("  vials")
        lines += [f"    {f['label']}  {f['robot']}/{f['bin']}  {f['outcome'] or 'filling'}"
                  f"  counted {f['counted'] if f['counted'] is not None else '-'}"
                  + (f"  labelled by {f['labelled_by']}" if f["labelled_by"] else "")
                  + (f"  set aside ({f['set_aside']})" if f["set_aside"] else "")
                  for f in order["fills"]]
    return lines


@orders_app.command("cancel")
def cancel(order_id: Annotated[int, typer.Argument(help="The order's id.")],
           reason: Annotated[str, typer.Option(help="Why (recorded).")],
           token: TokenOption, api: ApiOption = DEFAULT_API,
           tablets: Annotated[str | None, typer.Option(help=(
               "An order with a filled vial (a pharmacist's to cancel): what became of its "
               "tablets, returned or wasted."))] = None) -> None:
    """Cancel an order. One with a filled vial is a pharmacist's to cancel, with --tablets."""
    body = {"reason": reason, **({"tablets": tablets} if tablets else {})}
    order = _call(api, "POST", f"/api/orders/{order_id}/cancel", token, body)
    typer.echo(f"order {order['id']}: {order['state']}")


@robots_app.command("list")
def robots_list(token: TokenOption, api: ApiOption = DEFAULT_API) -> None:
    """Each robot: its state, what it waits for a person to fix, what waits in its output."""
    robots = _call(api, "GET", "/api/robots", token)
    if not robots:
        typer.echo("no robots configured")
        return
    typer.echo(f"{'ROBOT':<8} {'KIND':<15} {'STATE':<15}WAITING FOR")
    for robot in robots:
        output = robot["output"]
        waiting = (f"  output: {output['label']} (order {output['order']}) since "
                   f"{output['since']}" if output else "")
        attention = f"  needs a person: {robot['attention']}" if robot["attention"] else ""
        typer.echo(f"{robot['id']:<8} {robot['kind']:<15} {robot['state']:<15}"
                   f"{attention}{waiting}".rstrip())


@robots_app.command("clear")
def robots_clear(robot: Annotated[str, typer.Argument(help="The robot's id.")],
                 token: TokenOption, api: ApiOption = DEFAULT_API) -> None:
    """You fixed what stopped the robot (jam, door, safe stop) and took what its output held."""
    done = _call(api, "POST", f"/api/robots/{robot}/clear", token)
    typer.echo(f"{done['id']}: {done['state']}")


@robots_app.command("take")
def robots_take(robot: Annotated[str, typer.Argument(help="The robot's id.")],
                token: TokenOption, api: ApiOption = DEFAULT_API) -> None:
    """You took the vial or tablets waiting in the robot's output: it may start its next job."""
    done = _call(api, "POST", f"/api/robots/{robot}/take", token)
    typer.echo(f"{done['id']}: output taken; {done['state']}")
