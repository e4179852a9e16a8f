"""Issue 11, items 12 and 14: every change is in the audit trail, in its transaction, and the
people who make changes at the command line are signed in.

The walk below classifies every public function of the store: it reads, or it changes
something and must write its audit entry (a new function must be put in one list or the
other, or this test fails). Each changing function is called once in a small scenario, and
the audit trail must have grown by the call, its chain still whole under the key.
"""

from __future__ import annotations

import inspect
import subprocess
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.domain.gs1 import bottle_code, parse_bottle
from controller.domain.orders import FillOutcome, OrderState
from controller.domain.roles import Role
from controller.domain.stock import RestockPolicy
from controller.domain.weight import check_weight
from controller.store import BinSpec, FillResult, Store, StoreError, fill_code, sqlite_url
from controller.store.outbox import Message
from tests.floors import ATORVASTATIN, LISINOPRIL, order
from tests.helpers import AUDIT_KEY, admin, cli_env, maint, open_store, pharm, tech
from tests.sites import OXYCODONE, PASSWORD
from tests.test_cli import RXFILL

READS = {
    "alarm_history", "alarms", "calibration_history", "audit_rows", "audit_trail", "bin",
    "guided_calibrations", "scale_checks", "proposal_to_accept", "scale_failed_why",
    "bins", "check_password",
    "check_resume", "fill", "fill_by_job", "fill_lots", "fills", "info", "labels_for",
    "movements", "usage", "open_fills", "order", "order_history", "order_vial", "orders",
    "out_of_service", "outbox",
    "person_for", "raised_since", "recall", "release", "set_aside_vials", "users",
    "verify_audit", "vial", "vial_to_label",
}
"""Functions that change nothing."""
NOT_RECORDS = {
    "open": "opens the file (and migrates it: the schema, not a record)",
    "close": "closes its connections",
    "enqueue": "puts messages about changes (audited where they are made) in the outbox",
    "sent": "removes a message the broker acknowledged from the outbox",
}
"""Functions that change the store but no record of the pharmacy's."""

TODAY = date.today()
LATER = TODAY + timedelta(days=400)
Scenario = Callable[[Store], Awaitable[Callable[[], Awaitable[Any]]]]
"""Prepare (unmeasured); return the one call whose audit entry is checked."""


async def _bins(store: Store) -> None:
    await store.stock.ensure_bins([
        BinSpec("tc1", 1, ATORVASTATIN, "L1", LATER, 300, 50, 900),
        BinSpec("tc2", 1, OXYCODONE, "L2", LATER, 300, 50, 900),
        BinSpec("tc3", 1, LISINOPRIL, "L3", LATER, 0, 50, 900)])


async def _queued(store: Store, ndc: str = ATORVASTATIN) -> int:
    await _bins(store)
    received, _ = await store.orders.receive_order(order(ndc, 20))
    await store.orders.move_order(received.id, OrderState.QUEUED)
    return received.id


async def _bin_id(store: Store, robot: str) -> int:
    return (await store.stock.bin(robot, 1)).id


async def _ended(store: Store, outcome: FillOutcome, ndc: str = ATORVASTATIN,
                 counted: int = 20) -> tuple[int, int]:
    order_id = await _queued(store, ndc)
    robot = {ATORVASTATIN: "tc1", OXYCODONE: "tc2"}[ndc]
    fill = await store.orders.start_fill(order_id, await _bin_id(store, robot))
    await store.orders.finish_fill(fill.id, FillResult(outcome, counted, None, None, "ended"))
    return order_id, fill.id


async def _labelled(store: Store, ndc: str = ATORVASTATIN) -> tuple[int, int]:
    order_id, fill_id = await _ended(store, FillOutcome.FILLED, ndc)
    await store.verification.label_scanned(order_id, fill_code(fill_id), tech())
    return order_id, fill_id


def _weighed(count: int) -> Any:
    return check_weight(count=count, measured_mg=count * 155.0, unit_mass_mg=155.0,
                        spread_pct=1.8, scale_noise_mg=5.0)


async def receive_order(store: Store) -> Callable[[], Awaitable[Any]]:
    await _bins(store)
    return lambda: store.orders.receive_order(order(ATORVASTATIN, 20))


async def move_order(store: Store) -> Callable[[], Awaitable[Any]]:
    await _bins(store)
    received, _ = await store.orders.receive_order(order(ATORVASTATIN, 20))
    return lambda: store.orders.move_order(received.id, OrderState.QUEUED)


async def start_fill(store: Store) -> Callable[[], Awaitable[Any]]:
    order_id = await _queued(store)
    bin_id = await _bin_id(store, "tc1")
    return lambda: store.orders.start_fill(order_id, bin_id)


async def finish_fill(store: Store) -> Callable[[], Awaitable[Any]]:
    order_id = await _queued(store)
    fill = await store.orders.start_fill(order_id, await _bin_id(store, "tc1"))
    return lambda: store.orders.finish_fill(fill.id, FillResult(FillOutcome.JAM, 5, None, None,
                                                                "jam"))


async def set_info(store: Store) -> Callable[[], Awaitable[Any]]:
    return lambda: store.orders.set_info("pharmacist_on_duty", "phil", who="phil")


async def ensure_bins(store: Store) -> Callable[[], Awaitable[Any]]:
    return lambda: _bins(store)


async def restock(store: Store) -> Callable[[], Awaitable[Any]]:
    await _bins(store)
    scan = parse_bottle(bottle_code(ATORVASTATIN, "L9", LATER, "S1"))
    return lambda: store.stock.restock("tc1", 1, scan, ATORVASTATIN, quantity=100, by=tech(),
                                       policy=RestockPolicy(), today=TODAY, partial=False)


async def correct_bin(store: Store) -> Callable[[], Awaitable[Any]]:
    await _bins(store)
    bin_id = await _bin_id(store, "tc1")
    return lambda: store.stock.correct_bin(bin_id, 290, by=tech(), reason="counted")


async def bin_ran_empty(store: Store) -> Callable[[], Awaitable[Any]]:
    await _bins(store)
    bin_id = await _bin_id(store, "tc1")
    return lambda: store.stock.bin_ran_empty(bin_id, "J1")


async def record_calibration(store: Store) -> Callable[[], Awaitable[Any]]:
    await _bins(store)
    return lambda: store.calibration.record_calibration("tc1", 1, {"sensitivity": 60},
                                                        by=maint(), reason="new lot")


GUIDED_RUNS = [{"sensitivity": 50, "gate_ms": 40, "counted": 100, "weight_mg": 15500,
                "weighed": 100, "error": 0}] * 3


async def record_guided(store: Store) -> Callable[[], Awaitable[Any]]:
    await _bins(store)
    return lambda: store.calibration.record_guided("tc1", 1, GUIDED_RUNS, {"sensitivity": 50},
                                                   "", by=maint())


async def accept_proposal(store: Store) -> Callable[[], Awaitable[Any]]:
    await _bins(store)
    made = await store.calibration.record_guided("tc1", 1, GUIDED_RUNS, {"sensitivity": 50},
                                                 "", by=maint())
    return lambda: store.calibration.accept_proposal("tc1", 1, made.id, by=maint())


async def record_scale_check(store: Store) -> Callable[[], Awaitable[Any]]:
    return lambda: store.calibration.record_scale_check("tc1", True, {"reference_mg": 5000},
                                                        by=maint())


async def restore_calibration(store: Store) -> Callable[[], Awaitable[Any]]:
    await _bins(store)
    (first,) = await store.calibration.calibration_history("tc1", 1)
    await store.calibration.record_calibration("tc1", 1, {"sensitivity": 60}, by=maint(),
                                               reason="trial")
    return lambda: store.calibration.restore_calibration("tc1", 1, first.id, by=maint())


async def unload_bin(store: Store) -> Callable[[], Awaitable[Any]]:
    await _bins(store)
    bin_id = await _bin_id(store, "tc1")
    return lambda: store.stock.unload_bin(bin_id, by=tech(), reason="lot change")


async def load_bin(store: Store) -> Callable[[], Awaitable[Any]]:
    await _bins(store)
    scan = parse_bottle(bottle_code(ATORVASTATIN, "L8", LATER, "S2"))
    return lambda: store.stock.load_bin("tc3", 1, scan, ATORVASTATIN, quantity=100, by=pharm(),
                                        policy=RestockPolicy(), today=TODAY)


async def change_alarms(store: Store) -> Callable[[], Awaitable[Any]]:
    # A robot out of service is a change of its own, audited even with no alarm changing.
    return lambda: store.alarms.change_alarms(lambda _a, _b, _d: [], service=("tc1", False, "max"))


async def audit(store: Store) -> Callable[[], Awaitable[Any]]:
    return lambda: store.audit.audit("tess", "robot cleared", "robot:tc1")


async def add_user(store: Store) -> Callable[[], Awaitable[Any]]:
    return lambda: store.people.add_user("ada", frozenset({Role.ADMIN}), PASSWORD, by=None)


async def set_password(store: Store) -> Callable[[], Awaitable[Any]]:
    await store.people.add_user("tess", frozenset({Role.TECHNICIAN}), PASSWORD, by=admin())
    return lambda: store.people.set_password("tess", "a new long passphrase", by=admin())


async def disable_user(store: Store) -> Callable[[], Awaitable[Any]]:
    await store.people.add_user("tess", frozenset({Role.TECHNICIAN}), PASSWORD, by=admin())
    return lambda: store.people.disable_user("tess", by=admin())


async def sign_in(store: Store) -> Callable[[], Awaitable[Any]]:
    await store.people.add_user("tess", frozenset({Role.TECHNICIAN}), PASSWORD, by=admin())
    return lambda: store.people.sign_in("tess", PASSWORD)


async def sign_out(store: Store) -> Callable[[], Awaitable[Any]]:
    await store.people.add_user("tess", frozenset({Role.TECHNICIAN}), PASSWORD, by=admin())
    token = await store.people.sign_in("tess", PASSWORD)
    return lambda: store.people.sign_out(token, "tess")


async def label_scanned(store: Store) -> Callable[[], Awaitable[Any]]:
    order_id, fill_id = await _ended(store, FillOutcome.FILLED)
    return lambda: store.verification.label_scanned(order_id, fill_code(fill_id), tech())


async def witness_count(store: Store) -> Callable[[], Awaitable[Any]]:
    _, fill_id = await _labelled(store, OXYCODONE)
    return lambda: store.verification.witness_count(fill_id, 20, pharm("pam"))


async def verify_vial(store: Store) -> Callable[[], Awaitable[Any]]:
    _, fill_id = await _labelled(store)
    return lambda: store.verification.verify_vial(fill_id, pharm())


async def reject_vial(store: Store) -> Callable[[], Awaitable[Any]]:
    _, fill_id = await _labelled(store)
    return lambda: store.verification.reject_vial(fill_id, pharm(), "chipped", fill_again=True,
                                                  tablets="returned")


async def release_vial(store: Store) -> Callable[[], Awaitable[Any]]:
    _, fill_id = await _labelled(store)
    await store.verification.verify_vial(fill_id, pharm())
    return lambda: store.verification.release_vial(fill_id, pharm(), "pickup")


async def label_sent(store: Store) -> Callable[[], Awaitable[Any]]:
    _, fill_id = await _ended(store, FillOutcome.FILLED)
    return lambda: store.verification.label_sent(fill_id, who="supervisor", printer="lp1",
                                                 outcome="printed", reason=None)


async def hand_fill(store: Store) -> Callable[[], Awaitable[Any]]:
    order_id, _ = await _ended(store, FillOutcome.JAM, counted=5)
    bin_id = await _bin_id(store, "tc1")
    return lambda: store.handwork.hand_fill(order_id, bin_id, 20, _weighed(20), tech())


async def retry_order(store: Store) -> Callable[[], Awaitable[Any]]:
    order_id, _ = await _ended(store, FillOutcome.JAM, counted=5)
    return lambda: store.handwork.retry_order(order_id, tech())


async def cancel_order(store: Store) -> Callable[[], Awaitable[Any]]:
    order_id, _ = await _labelled(store)
    return lambda: store.handwork.cancel_order(order_id, pharm(), "patient moved", tablets="wasted")


async def dispose_vial(store: Store) -> Callable[[], Awaitable[Any]]:
    await _ended(store, FillOutcome.JAM, counted=5)
    (vial,) = await store.vials.set_aside_vials(pending_only=True)
    return lambda: store.vials.dispose_vial(vial.id, "returned", by=tech())


CHANGES: dict[str, Scenario] = {f.__name__: f for f in (
    record_calibration, restore_calibration, record_guided, accept_proposal, record_scale_check,
    receive_order, move_order, start_fill, finish_fill, set_info, ensure_bins, restock,
    correct_bin, bin_ran_empty, unload_bin, load_bin, change_alarms, audit, add_user,
    set_password, disable_user, sign_in, sign_out, label_scanned, witness_count, verify_vial,
    reject_vial, release_vial, label_sent, hand_fill, retry_order, cancel_order,
    dispose_vial)}


REPOSITORIES = {"orders", "vials", "handwork", "stock", "alarms", "audit", "people",
                "verification", "calibration"}
"""The store's repositories, one per aggregate: a new one must be added here, and its
functions classified."""


def _public(owner: type) -> set[str]:
    """The public coroutine functions and classmethods of a class."""
    return {name for name, value in inspect.getmembers(owner)
            if not name.startswith("_") and callable(value)
            and (inspect.iscoroutinefunction(value)
                 or isinstance(inspect.getattr_static(owner, name), classmethod))}


async def test_every_public_function_of_the_store_is_classified(store: Store) -> None:
    repositories = {name: type(value) for name, value in vars(store).items()
                    if type(value).__module__.startswith("controller.store.")
                    and not name.startswith("_")}
    assert set(repositories) == REPOSITORIES
    public = _public(Store).union(*(_public(cls) for cls in repositories.values()))
    assert READS.isdisjoint(CHANGES) and READS.isdisjoint(NOT_RECORDS)
    unclassified = public - READS - set(CHANGES) - set(NOT_RECORDS)
    assert not unclassified, f"say whether these read or change records: {unclassified}"
    assert not (set(CHANGES) | READS | set(NOT_RECORDS)) - public


@pytest.mark.parametrize("name", sorted(CHANGES))
async def test_every_change_writes_its_audit_entry_in_its_transaction(
        store: Store, name: str) -> None:
    call = await CHANGES[name](store)
    before = len(await store.audit.audit_trail())
    await call()
    after = await store.audit.audit_trail()
    assert len(after) > before, f"{name} changed the store but wrote no audit entry"
    assert await store.audit.verify_audit(AUDIT_KEY) == []


async def test_a_change_that_fails_leaves_no_audit_entry(store: Store) -> None:
    call = await correct_bin(store)
    before = len(await store.audit.audit_trail())
    with pytest.raises(ValueError):
        await store.stock.correct_bin((await store.stock.bin("tc1", 1)).id, 9999, by=tech(),
                                      reason="x")
    assert len(await store.audit.audit_trail()) == before
    await call()
    assert len(await store.audit.audit_trail()) == before + 1


async def test_an_outbox_message_is_not_a_record(store: Store) -> None:
    before = len(await store.audit.audit_trail())
    await store.alarms.enqueue([Message("rxfill/t/robots/tc1", b"{}", True)])
    (waiting,) = await store.alarms.outbox()
    await store.alarms.sent(waiting.id)
    assert len(await store.audit.audit_trail()) == before


# -- 14: people at the command line -------------------------------------------------------------


def test_a_command_that_changes_records_acts_as_a_signed_in_person_by_token(
        tmp_path: Path) -> None:
    store_file = tmp_path / "rx.sqlite"

    async def prepare() -> str:
        store = await open_store(sqlite_url(store_file))
        try:
            await _bins(store)
            await store.people.add_user("tess", frozenset({Role.TECHNICIAN}), PASSWORD, by=admin())
            return await store.people.sign_in("tess", PASSWORD)
        finally:
            await store.close()
    import asyncio
    token = asyncio.run(prepare())

    def rxfill(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*RXFILL, *args, "--store", str(store_file)],
                              capture_output=True, text=True, timeout=60, env=cli_env(**env))
    free_text = rxfill("stock", "correct", "tc1/1", "--count", "290", "--reason", "counted",
                       "--who", "anyone")
    assert free_text.returncode == 2 and "--who" in free_text.stderr  # no such option now
    unsigned = rxfill("stock", "correct", "tc1/1", "--count", "290", "--reason", "counted")
    assert unsigned.returncode == 2 and "sign in first" in unsigned.stderr
    forged = rxfill("stock", "correct", "tc1/1", "--count", "290", "--reason", "counted",
                    RXFILL_TOKEN="forged")
    assert forged.returncode == 1 and "unknown token" in forged.stderr
    done = rxfill("stock", "correct", "tc1/1", "--count", "290", "--reason", "counted",
                  RXFILL_TOKEN=token)
    assert done.returncode == 0 and "300 → 290 (counted, by tess)" in done.stdout, done.stderr
    service = rxfill("alarms", "service", "tc1", "--out", RXFILL_TOKEN=token)
    assert service.returncode == 0, service.stderr
    exported = rxfill("audit", "export").stdout
    assert '"who": "tess", "action": "bin correction"' in exported
    assert '"who": "tess", "action": "robot out of service"' in exported


@pytest.mark.parametrize("bad", ["\u0085", "\u2028", "\u202e", "\x00"])
async def test_the_store_takes_no_order_whose_words_hold_a_control_character(
    store: Store, bad: str,
) -> None:
    from dataclasses import replace

    made = order(ATORVASTATIN, 20)
    sneaky = replace(made, patient=replace(made.patient, name=f"Barnaby{bad}Quixley"))
    with pytest.raises(StoreError, match="patient_name holds U\\+"):
        await store.orders.receive_order(sneaky, then=OrderState.QUEUED)
    assert await store.orders.orders() == []
