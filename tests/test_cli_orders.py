"""``rxfill sign-in`` and ``rxfill orders`` against a real ``rxfill run`` in its own process."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from controller.domain.roles import Role
from controller.store import sqlite_url
from tests.floors import write_config
from tests.helpers import admin, open_store
from tests.sites import (
    PASSWORD,
    RXFILL,
    SITE_TOML,
    medication_request,
    order_body,
    robots,
    rxfill_run,
)


async def cli(*args: str, stdin: str = "", env: dict[str, str] | None = None,
              ) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        RXFILL, *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await process.communicate(stdin.encode())
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.timeout(120)
async def _listed_and_shown(env: dict[str, str]) -> None:
    """The orders submitted, as ``rxfill orders list`` and ``show`` tell them."""
    code, out, _ = await cli("orders", "list", env=env)
    assert code == 0 and "RX9000001" in out and "RX9100001" in out
    assert out.splitlines()[0].split() == ["ID", "RX", "STATE", "NDC", "QTY", "REASON"]
    code, out, _ = await cli("orders", "show", "1", "--json", env=env)
    shown = json.loads(out)
    assert shown["rx_number"] == "RX9000001" and shown["history"][0]["to"] == "received"
    code, out, _ = await cli("orders", "show", "1", env=env)
    assert code == 0 and out.startswith("order 1  RX9000001 (fill 0 of 0 refills)")
    assert "patient     Ada Okafor (id P-77), born 1961-03-14" in out
    assert "-> received" in out and "{" not in out
    code, _, err = await cli("orders", "list", "--state", "bogus", env=env)
    assert code == 2 and "'bogus' is not a state; expected one of received, queued" in err
    code, out, _ = await cli("orders", "list", "--state", "released", env=env)
    assert code == 0 and out.strip() == "no orders in state released"
    code, _, err = await cli("orders", "show", "99", env=env)
    assert code == 1 and "no order 99" in err


async def test_orders_are_submitted_listed_shown_and_cancelled_from_the_command_line(
        tmp_path: Path) -> None:
    settings = write_config(tmp_path, robots(), extra=SITE_TOML,
                            site_extra='pharmacist = "Pat Lee, RPh"')
    store_file = tmp_path / "site.sqlite"
    store = await open_store(sqlite_url(store_file))
    await store.people.add_user("tess", frozenset({Role.TECHNICIAN}), PASSWORD, by=admin())
    await store.close()
    good, bad, fhir = tmp_path / "good.json", tmp_path / "bad.json", tmp_path / "fhir.json"
    good.write_text(json.dumps([order_body(rx_number="RX9000001"),
                                order_body(quantity=20000, rx_number="RX9000002")]))
    bad.write_text("{not json")
    fhir.write_text(json.dumps(medication_request()))
    big = tmp_path / "big.json"  # more than any bin holds: an exception, to cancel
    big.write_text(json.dumps(order_body(quantity=5000, rx_number="RX9000003")))

    async with rxfill_run(settings.path, store_file, tmp_path / "run.log") as (_, url):
        code, _, err = await cli("sign-in", "--user", "tess", "--api", url,
                                 "--password-stdin", stdin="wrong password\n")
        assert code == 1 and "wrong user name or password" in err
        code, token, _ = await cli("sign-in", "--user", "tess", "--api", url,
                                   "--password-stdin", stdin=PASSWORD + "\n")
        assert code == 0
        env = {"RXFILL_TOKEN": token.strip(), "RXFILL_API": url, "PATH": "/usr/bin:/bin"}

        code, out, err = await cli("orders", "submit", str(good), env=env)
        assert code == 1 and "order 1 (RX9000001): queued" in out
        assert "quantity: Input should be less than or equal to 9999" in err
        assert "order 2 of 2 refused" in err
        code, out, _ = await cli("orders", "submit", str(fhir), env=env)
        assert code == 0 and "order 2 (RX9100001): queued" in out
        code, _, err = await cli("orders", "submit", str(bad), env=env)
        assert code == 2 and "not JSON" in err

        await _listed_and_shown(env)
        code, out, _ = await cli("orders", "submit", str(big), env=env)
        assert code == 0 and "order 3 (RX9000003): exception" in out
        code, _, err = await cli("orders", "cancel", "3", env=env)
        assert code == 2 and "--reason" in err
        code, out, _ = await cli("orders", "cancel", "3", "--reason", "patient moved",
                                 env=env)
        assert code == 0 and "order 3: cancelled" in out
        code, out, _ = await cli("orders", "list", "--state", "cancelled", env=env)
        assert [line.split()[1] for line in out.splitlines()[1:]] == ["RX9000003"]
        # Order 1's vial waits in tc1's output for a person; the technician takes it.
        async with asyncio.timeout(30):
            while "output: F" not in (out := (await cli("robots", "list", env=env))[1]):  # noqa: ASYNC110 - another process
                await asyncio.sleep(0.2)
        assert "output_waiting" in out
        code, out, _ = await cli("robots", "take", "tc1", env=env)
        assert code == 0 and "tc1: output taken" in out, out
        code, _, err = await cli("robots", "take", "tc3", env=env)  # it filled nothing
        assert code == 1 and "nothing to take" in err
        code, _, err = await cli("orders", "list", env={**env, "RXFILL_TOKEN": "forged"})
        assert code == 1 and "401" in err and "sign in again" in err
    code, _, err = await cli("orders", "list", env=env)
    assert code == 2 and "cannot reach the API" in err
