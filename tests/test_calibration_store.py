"""A bin's calibration belongs to it and its NDC, versioned in the store: a robot never
counts a drug from a bin calibrated for another, or never calibrated (refused in
``start_fill``'s transaction, with nothing recorded)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from controller.domain.gs1 import bottle_code, parse_bottle
from controller.domain.orders import OrderState
from controller.domain.roles import RoleError
from controller.domain.stock import RestockPolicy
from controller.store import BinSpec, FillRefused, Store, StoreError
from controller.store.schema import calibrations
from tests.floors import ATORVASTATIN, LISINOPRIL, order
from tests.helpers import maint, pharm, tech

EXPIRY = date(2030, 1, 1)
CONFIGURED = (("gate_ms", 40), ("sensitivity", 50))


def spec(ndc: str = ATORVASTATIN, calibration: tuple[tuple[str, int], ...] = CONFIGURED,
         ) -> BinSpec:
    return BinSpec("tc1", 1, ndc, "L1", EXPIRY, 300, 50, 900, calibration)


async def queued(store: Store, ndc: str) -> int:
    """A queued order for ``ndc``: its id."""
    record, _ = await store.orders.receive_order(order(ndc, 30))
    await store.orders.move_order(record.id, OrderState.QUEUED)
    return record.id


async def _reload_with(store: Store, ndc: str) -> int:
    """Unload tc1/1 and load it with ``ndc`` (a pharmacist's decision): the bin's id."""
    held = await store.stock.bin("tc1", 1)
    await store.stock.unload_bin(held.id, by=tech(), reason="drug change")
    bottle = parse_bottle(bottle_code(ndc, "NEW", date.today() + timedelta(days=400), "S9"))
    loaded = await store.stock.load_bin("tc1", 1, bottle, ndc, quantity=100, by=pharm("pat"),
                                        policy=RestockPolicy(), today=date.today())
    return loaded.id


async def test_a_configured_bin_is_calibrated_for_its_drug(store: Store) -> None:
    await store.stock.ensure_bins([spec()])
    (first,) = await store.calibration.calibration_history("tc1", 1)
    assert (first.ndc, dict(first.settings), first.source) == (
        ATORVASTATIN, {"gate_ms": 40, "sensitivity": 50}, "configuration")
    order_id = await queued(store, ATORVASTATIN)
    await store.orders.start_fill(order_id, (await store.stock.bin("tc1", 1)).id)


async def test_a_bin_given_another_drug_is_refused_until_calibrated_for_it(
        store: Store) -> None:
    await store.stock.ensure_bins([spec()])
    bin_id = await _reload_with(store, LISINOPRIL)
    order_id = await queued(store, LISINOPRIL)
    with pytest.raises(FillRefused, match=(
            f"tc1 bin 1 was calibrated for NDC {ATORVASTATIN} .*it holds NDC {LISINOPRIL} "
            f"now: calibrate it")):
        await store.orders.start_fill(order_id, bin_id)
    assert (await store.orders.order(order_id)).state is OrderState.QUEUED
    assert await store.orders.fills(order_id) == []
    with pytest.raises(RoleError, match="needs the maintenance role"):
        await store.calibration.record_calibration("tc1", 1, {"sensitivity": 44}, by=tech(),
                                                   reason="new drug")
    made = await store.calibration.record_calibration(
        "tc1", 1, {"sensitivity": 44, "gate_ms": 35}, by=maint(), reason="new drug")
    assert (made.ndc, made.who, made.source) == (LISINOPRIL, "max", "person")
    await store.orders.start_fill(order_id, bin_id)


async def test_an_earlier_calibration_is_restored_only_for_the_drug_it_was_made_for(
        store: Store) -> None:
    await store.stock.ensure_bins([spec()])
    (configured,) = await store.calibration.calibration_history("tc1", 1)
    await store.calibration.record_calibration("tc1", 1, {"sensitivity": 70, "gate_ms": 30},
                                               by=maint(), reason="trial")
    restored = await store.calibration.restore_calibration("tc1", 1, configured.id,
                                                           by=maint())
    assert dict(restored.settings) == dict(configured.settings)
    assert restored.reason == f"restored calibration {configured.id}"
    await _reload_with(store, LISINOPRIL)
    with pytest.raises(StoreError, match=f"made for NDC {ATORVASTATIN}; tc1/1 holds NDC "
                                         f"{LISINOPRIL} now"):
        await store.calibration.restore_calibration("tc1", 1, configured.id, by=maint())
    assert len(await store.calibration.calibration_history("tc1", 1)) == 3


async def test_a_restart_keeps_a_persons_calibration_unless_the_file_changed(
        store: Store) -> None:
    await store.stock.ensure_bins([spec()])
    await store.calibration.record_calibration("tc1", 1, {"sensitivity": 61, "gate_ms": 38},
                                               by=maint(), reason="miscounts")
    await store.stock.ensure_bins([spec()])  # a restart, the file unchanged
    latest = (await store.calibration.calibration_history("tc1", 1))[0]
    assert (latest.who, dict(latest.settings)["sensitivity"]) == ("max", 61)
    await store.stock.ensure_bins([spec(calibration=(("gate_ms", 40), ("sensitivity", 55)))])
    latest = (await store.calibration.calibration_history("tc1", 1))[0]
    assert (latest.source, dict(latest.settings)["sensitivity"]) == ("configuration", 55)


async def test_a_bin_with_no_calibration_is_refused_until_the_supervisor_reads_one(
        store: Store) -> None:
    await store.stock.ensure_bins([spec()])
    async with store.transaction() as conn:  # as a store from before calibrations were kept
        await conn.execute(sa.delete(calibrations))
    order_id = await queued(store, ATORVASTATIN)
    bin_id = (await store.stock.bin("tc1", 1)).id
    with pytest.raises(FillRefused, match="tc1 bin 1 was never calibrated"):
        await store.orders.start_fill(order_id, bin_id)
    await store.stock.ensure_bins([spec()])  # the supervisor's start records the file's
    await store.orders.start_fill(order_id, bin_id)


# -- guided calibrations and scale checks ---------------------------------------------------------

RUNS = [{"sensitivity": 40, "gate_ms": 60, "counted": 100, "weight_mg": 27500, "weighed": 110,
         "error": -10}] + [{"sensitivity": 52, "gate_ms": 52, "counted": 100,
                            "weight_mg": 25000, "weighed": 100, "error": 0}] * 3
PROPOSAL = {"sensitivity": 52, "gate_ms": 52}


async def test_a_guided_proposal_becomes_the_bins_only_when_maintenance_accepts(
        store: Store) -> None:
    await store.stock.ensure_bins([spec()])
    with pytest.raises(RoleError):
        await store.calibration.record_guided("tc1", 1, RUNS, PROPOSAL, "", by=tech())
    made = await store.calibration.record_guided("tc1", 1, RUNS, PROPOSAL, "", by=maint())
    assert made.state == "proposed" and made.ndc == ATORVASTATIN and len(made.runs) == 4
    (configured,) = await store.calibration.calibration_history("tc1", 1)
    assert made.previous == configured.id  # nothing changed yet
    with pytest.raises(RoleError):
        await store.calibration.accept_proposal("tc1", 1, made.id, by=tech())
    accepted = await store.calibration.accept_proposal("tc1", 1, made.id, by=maint())
    assert (accepted.source, dict(accepted.settings)) == ("guided", PROPOSAL)
    assert "guided calibration" in accepted.reason and "4 runs by max" in accepted.reason
    (now,) = await store.calibration.guided_calibrations("tc1", 1)
    assert (now.state, now.decided_by, now.calibration) == ("accepted", "max", accepted.id)
    with pytest.raises(StoreError, match="is accepted: nothing to accept"):
        await store.calibration.accept_proposal("tc1", 1, made.id, by=maint())
    trail = [e.action for e in await store.audit.audit_trail()]
    assert "calibration proposed" in trail and trail[-1] == "bin calibrated"


async def test_runs_that_never_agreed_are_kept_and_cannot_be_accepted(store: Store) -> None:
    await store.stock.ensure_bins([spec()])
    made = await store.calibration.record_guided("tc1", 1, RUNS, None, "no proposal: …",
                                                 by=maint())
    assert made.state == "no proposal" and made.proposal is None
    with pytest.raises(StoreError, match="is no proposal: nothing to accept"):
        await store.calibration.accept_proposal("tc1", 1, made.id, by=maint())


async def test_a_proposal_is_refused_after_the_bin_changed_drug_or_calibration(
        store: Store) -> None:
    await store.stock.ensure_bins([spec()])
    stale = await store.calibration.record_guided("tc1", 1, RUNS, PROPOSAL, "", by=maint())
    await store.calibration.record_calibration("tc1", 1, {"sensitivity": 58, "gate_ms": 41},
                                               by=maint(), reason="by hand")
    with pytest.raises(StoreError, match="was calibrated again since guided calibration"):
        await store.calibration.accept_proposal("tc1", 1, stale.id, by=maint())
    other_drug = await store.calibration.record_guided("tc1", 1, RUNS, PROPOSAL, "", by=maint())
    await _reload_with(store, LISINOPRIL)
    with pytest.raises(StoreError, match=f"was run on NDC {ATORVASTATIN}"):
        await store.calibration.accept_proposal("tc1", 1, other_drug.id, by=maint())


async def test_a_robot_whose_scale_failed_its_check_fills_nothing_until_it_passes(
        store: Store) -> None:
    await store.stock.ensure_bins([spec()])
    order_id = await queued(store, ATORVASTATIN)
    bin_id = (await store.stock.bin("tc1", 1)).id
    readings = {"reference_mg": 5000, "check_mg": 2500, "check_read_mg": 2451}
    with pytest.raises(RoleError):
        await store.calibration.record_scale_check("tc1", False, readings, by=tech())
    await store.calibration.record_scale_check("tc1", False, readings, by=maint())
    with pytest.raises(FillRefused, match=r"tc1's scale failed its check .*calibrate the scale"):
        await store.orders.start_fill(order_id, bin_id)
    assert (await store.orders.order(order_id)).state is OrderState.QUEUED  # nothing recorded
    await store.calibration.record_scale_check("tc1", True, readings, by=maint())
    await store.orders.start_fill(order_id, bin_id)
    assert [c.passed for c in await store.calibration.scale_checks("tc1")] == [True, False]
