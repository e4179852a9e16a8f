"""``rxfill stock`` and ``rxfill alarms`` as a technician runs them, on a demo's store."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest

from controller.domain.gs1 import GS, bottle_code, gtin_for
from controller.domain.roles import Role
from controller.store import sqlite_url
from tests.floors import ATORVASTATIN
from tests.helpers import admin, cli_env, demo_config, open_store
from tests.mqtt import Subscriber, broker_url, clear_retained, unique_site
from tests.sites import PASSWORD
from tests.test_cli import RXFILL

GABAPENTIN = "68382-0135-01"


AS_ANA = ("--user", "ana", "--password-stdin")
"""A technician the tests add to the demo's store, signing in on each command."""


def rxfill(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    signed = AS_ANA[0] in args
    return subprocess.run([*RXFILL, *args, "--store", str(store)], capture_output=True,
                          text=True, timeout=60, env=cli_env(),
                          input=PASSWORD + "\n" if signed else "")


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store the demo filled (no MQTT: what the CLI announces waits in the outbox), with
    ana, a technician."""
    store = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    run = subprocess.run([*RXFILL, "demo", "--store", str(store), "--mqtt", "off"],
                         capture_output=True, text=True, timeout=120, env=cli_env())
    assert run.returncode == 0, run.stderr[-2000:]
    asyncio.run(add_technician(store, "ana"))
    return store


async def add_technician(store: Path, name: str) -> None:
    """A technician with the tests' password, added by an admin."""
    opened = await open_store(sqlite_url(store))
    try:
        await opened.people.add_user(name, frozenset({Role.TECHNICIAN}), PASSWORD, by=admin())
    finally:
        await opened.close()


def test_stock_show_lists_every_bin_with_its_lots(demo_store: Path) -> None:
    shown = rxfill(demo_store, "stock", "show")
    assert shown.returncode == 0, shown.stderr
    gabapentin = next(line for line in shown.stdout.splitlines() if line.startswith("tc1/5"))
    assert "gabapentin 300 mg capsule" in gabapentin and "LOW" in gabapentin
    assert gabapentin.endswith("GB24650 exp 2027-05-31: 50")  # no phone, no restock


@pytest.mark.parametrize(("bottle", "says"), [
    (bottle_code(ATORVASTATIN, "AT1", date(2029, 1, 31), "X1"),
     "holds NDC 00093-7146-01, but bin 5 of tc1 holds NDC 68382-0135-01"),
    (bottle_code(GABAPENTIN, "GB1", date.today() - timedelta(days=1), "X2"), "expired on"),
    (bottle_code(GABAPENTIN, "GB1", date.today() + timedelta(days=10), "X3"),
     "within 30 days"),
    (f"01{gtin_for(GABAPENTIN)}17290131" f"10GB1" f"21X4", "lacks (21) serial"),
    ("not a barcode", "is not a GS1 code"),
])
def test_a_wrong_bottle_is_refused_and_nothing_moves(demo_store: Path, bottle: str,
                                                     says: str) -> None:
    before = rxfill(demo_store, "stock", "show").stdout
    refused = rxfill(demo_store, "stock", "restock", "tc1/5", "--scan", bottle, *AS_ANA)
    assert refused.returncode == 1 and says in refused.stderr, refused.stderr
    assert rxfill(demo_store, "stock", "show").stdout == before


def test_restock_correct_and_recall_are_recorded(demo_store: Path) -> None:
    bottle = bottle_code(GABAPENTIN, "GB9", date(2029, 1, 31), "S-77").replace(GS, "<GS>")
    done = rxfill(demo_store, "stock", "restock", "tc1/5", "--scan", bottle, *AS_ANA,
                  "--quantity", "40")
    assert done.returncode == 0, done.stderr
    assert "tc1/5: +40 of lot GB9 (expires 2029-01-31, serial S-77); on hand 90" in done.stdout
    shown = rxfill(demo_store, "stock", "show").stdout
    assert "GB24650 exp 2027-05-31: 50, GB9 exp 2029-01-31: 40" in shown  # older lot first
    corrected = rxfill(demo_store, "stock", "correct", "tc1/5", "--count", "20", "--reason",
                       "spilled", *AS_ANA)
    assert "tc1/5: 90 → 20 (spilled, by ana)" in corrected.stdout
    alarms = rxfill(demo_store, "alarms", "list")
    assert "bin-low-tc1-5" in alarms.stdout and "unack_active" in alarms.stdout
    assert alarms.stdout.splitlines()[0].split() == ["PRIORITY", "STATE", "ALARM", "MESSAGE"]
    shelved = rxfill(demo_store, "alarms", "shelve", "bin-low-tc1-5", *AS_ANA,
                     "--reason", "bottles on order", "--for", "30")
    assert "bin-low-tc1-5: shelved (shelved by ana)" in shelved.stdout
    again = rxfill(demo_store, "alarms", "ack", "bin-low-tc1-5", *AS_ANA)
    assert again.returncode == 1 and "is shelved" in again.stderr
    history = rxfill(demo_store, "alarms", "history", "bin-low-tc1-5").stdout
    assert "→ shelved" in history and "ana: shelved until" in history and \
        ": bottles on order" in history
    recall = rxfill(demo_store, "stock", "recall", "--lot", "GB24650")
    assert "vial(s) may hold lot GB24650" in recall.stdout
    assert "tc1/5" in recall.stdout and "30 of the lot; holds it" in recall.stdout


async def test_demo_publishes_to_the_broker_it_is_given(tmp_path: Path) -> None:
    site = unique_site()  # the machine's broker may carry another suite's demo
    config = demo_config(tmp_path, site=site)
    async with broker_url() as url, Subscriber(url, site) as phone:
        process = await asyncio.create_subprocess_exec(
            *RXFILL, "demo", "--config", str(config), "--store", str(tmp_path / "d.sqlite"),
            "--mqtt", url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        out, _ = await process.communicate()
        assert process.returncode == 0
        assert f"mqtt: {url} (topics rxfill/{site}/...)" in out.decode()
        await phone.until(lambda: bool(phone.on("events/restocked")))
        await phone.until(lambda: phone.on("supervisor")[-1].json == {"status": "offline"})
        lows = phone.on("alarms/bin-low-tc1-5")
        assert lows[0].json["state"] == "unack_active" and lows[-1].payload == b""
        await clear_retained(url, site)


def test_cli_words_name_what_is_missing_and_what_exists(demo_store: Path) -> None:
    nobody = rxfill(demo_store, "stock", "correct", "zz9/5", "--count", "3", "--reason", "x",
                    *AS_ANA)
    assert nobody.returncode == 1
    assert "no robot 'zz9' in this store; expected one of fv1, fv2, tc1" in nobody.stderr
    no_bin = rxfill(demo_store, "stock", "correct", "tc1/99", "--count", "3", "--reason", "x",
                    *AS_ANA)
    assert "robot tc1 has no bin 99; its bins are 1, 2, 3, 4, 5" in no_bin.stderr
    neither = rxfill(demo_store, "alarms", "service", "tc1", *AS_ANA)
    assert neither.returncode == 2 and "--out" in neither.stderr and "--in" in neither.stderr
    history = rxfill(demo_store, "alarms", "history").stdout.splitlines()
    assert history[0].split()[:3] == ["WHEN", "ALARM", "FROM"]
    users = rxfill(demo_store, "users", "list").stdout.splitlines()
    assert users[0].split() == ["NAME", "ROLES", "STATUS"] and len(users) > 1
