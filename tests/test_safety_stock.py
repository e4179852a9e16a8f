"""Issue 11, items 7-10: stock and expiry at every door.

7. Expiry is checked when a fill starts, when an open fill resumes after a reconnect, at a
   hand count, and before a label prints, in the store.
8. The configuration cannot silently change a bin's drug; `rxfill stock load` does, on purpose.
9. A robot out of service takes no further fills, those already queued on it included.
10. A correction or restock never records more than the bin's capacity nor less than 0; a
    recall lists each physical vial once.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from controller.clock import Clock
from controller.config import Settings
from controller.domain.gs1 import bottle_code, parse_bottle
from controller.domain.orders import FillOutcome, OrderState
from controller.domain.roles import Role, WorkflowError
from controller.domain.stock import RestockPolicy, RestockRefused
from controller.pharmacy.service import Pharmacy
from controller.robots.notices import FillStarted, Notice, OrderReturned
from controller.robots.simulated import start_simulators
from controller.robots.supervisor import Supervisor
from controller.store import BinSpec, FillRefused, FillResult, Store, sqlite_url
from controller.store.stock import BinDrugMismatch
from tests.floors import ATORVASTATIN, LISINOPRIL, order, write_config
from tests.helpers import TECH, Technician, admin, cli_env, maint, open_store, pharm, tech
from tests.sites import PASSWORD
from tests.test_cli import RXFILL
from tests.test_verification import weighed

EXPIRY = date(2030, 1, 1)  # the floors' lots
AS_PAT = ("--user", "pat", "--password-stdin")
AFTER = datetime(2030, 1, 2, 12, 0, tzinfo=datetime.now().astimezone().tzinfo)


class At(Clock):
    """A clock fixed at one moment (sleeps are real)."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment


# -- 7: expiry at every door ------------------------------------------------------------------


async def _queued(store: Store) -> tuple[int, int]:
    await store.stock.ensure_bins([BinSpec("tc1", 1, ATORVASTATIN, "L1", EXPIRY, 300, 50, 900)])
    (bin_record,) = await store.stock.bins()
    received, _ = await store.orders.receive_order(order(ATORVASTATIN, 30))
    await store.orders.move_order(received.id, OrderState.QUEUED)
    return received.id, bin_record.id


async def test_a_fill_never_starts_from_a_bin_holding_an_expired_lot(tmp_path: Path) -> None:
    store = await open_store(sqlite_url(tmp_path / "rx.sqlite"), clock=At(AFTER))
    try:
        order_id, bin_id = await _queued(store)
        with pytest.raises(FillRefused, match="lot L1 expired 2030-01-01"):
            await store.orders.start_fill(order_id, bin_id)
        assert (await store.orders.order(order_id)).state is OrderState.QUEUED  # nothing recorded
        assert await store.orders.fills() == []
    finally:
        await store.close()


async def test_an_order_routed_before_midnight_to_a_lot_that_expired_goes_to_exception_with_why(
        tmp_path: Path) -> None:
    # The supervisor routes it on the lot's last day; the store starts the fill a day later.
    settings = write_config(tmp_path, [{"id": "tc1", "url": "sim:tcp", "seed": 1,
                                        "ndc": ATORVASTATIN, "on_hand": 300}])
    sims = await start_simulators(settings)
    store = await open_store(sqlite_url(tmp_path / "rx.sqlite"), clock=At(AFTER))
    try:
        sup = Supervisor(settings, store, urls={r: s.url for r, s in sims.items()},
                         clock=At(AFTER - timedelta(days=1)))
        async with sup:
            record = await sup.submit(order(ATORVASTATIN, 30))
            async with asyncio.timeout(20):
                (settled,) = await sup.wait_settled([record.id])
        assert settled.state is OrderState.EXCEPTION, settled
        assert "lot L1 expired 2030-01-01" in (settled.reason or ""), settled.reason
        assert await store.orders.fills() == []
        assert sims["tc1"].device.started_jobs == []
    finally:
        await store.close()
        for sim in sims.values():
            await sim.close()


async def test_an_open_fill_is_not_resumed_after_its_lot_expired(tmp_path: Path) -> None:
    settings = write_config(tmp_path, [{"id": "tc1", "url": "sim:tcp", "seed": 1,
                                        "ndc": ATORVASTATIN, "on_hand": 300}])
    url = sqlite_url(tmp_path / "rx.sqlite")
    store = await open_store(url, clock=At(AFTER - timedelta(days=2)))
    order_id, bin_id = await _queued(store)
    fill = await store.orders.start_fill(order_id, bin_id)  # recorded; the robot never heard of it
    await store.close()
    sims = await start_simulators(settings)
    store = await open_store(url, clock=At(AFTER))
    try:
        sup = Supervisor(settings, store, urls={r: s.url for r, s in sims.items()},
                         clock=At(AFTER))
        async with sup:
            async with asyncio.timeout(20):
                (settled,) = await sup.wait_settled([order_id])
        assert settled.state is OrderState.EXCEPTION
        (ended,) = await store.orders.fills(order_id)
        assert (ended.id, ended.outcome, ended.counted) == (fill.id, FillOutcome.REFUSED, 0)
        assert "not resumed" in (ended.detail or "") and "expired" in (ended.detail or "")
        assert sims["tc1"].device.started_jobs == []
    finally:
        await store.close()
        for sim in sims.values():
            await sim.close()


async def test_a_hand_count_never_takes_expired_stock(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "rx.sqlite")
    store = await open_store(url, clock=At(AFTER - timedelta(days=2)))
    order_id, bin_id = await _queued(store)
    fill = await store.orders.start_fill(order_id, bin_id)
    await store.orders.finish_fill(fill.id, FillResult(FillOutcome.JAM, 5, None, None, "jam"))
    await store.close()
    store = await open_store(url, clock=At(AFTER))
    try:
        with pytest.raises(WorkflowError, match="lot L1 expired 2030-01-01"):
            await store.handwork.hand_fill(order_id, bin_id, 30, weighed(30, 30 * 155), TECH)
        assert (await store.orders.order(order_id)).state is OrderState.EXCEPTION
    finally:
        await store.close()


async def test_no_label_prints_for_a_vial_whose_lot_has_expired_and_the_refusal_is_recorded(
        tmp_path: Path) -> None:
    settings = write_config(tmp_path, [{"id": "tc1", "url": "sim:tcp", "seed": 1,
                                        "ndc": ATORVASTATIN, "on_hand": 300}],
                            site_extra='pharmacist = "Pat Lee, RPh"')
    url = sqlite_url(tmp_path / "rx.sqlite")
    store = await open_store(url, clock=At(AFTER - timedelta(days=2)))
    order_id, bin_id = await _queued(store)
    fill = await store.orders.start_fill(order_id, bin_id)
    await store.orders.finish_fill(fill.id, FillResult(FillOutcome.FILLED, 30, None, None, "ok"))
    await store.close()
    store = await open_store(url, clock=At(AFTER))
    try:
        pharmacy = Pharmacy(settings, store, Supervisor(settings, store, urls={
            "tc1": "socket://127.0.0.1:9"}, clock=At(AFTER)))
        with pytest.raises(WorkflowError, match=r"past their expiry.*no label is printed"):
            await pharmacy.print_label(order_id, who=TECH)
        (refusal,) = await store.verification.labels_for(fill.id)
        assert refusal.outcome == "refused" and "L1 expired 2030-01-01" in (refusal.reason or "")
    finally:
        await store.close()


# -- 8: the configuration cannot change a bin's drug ----------------------------------------


def _site(tmp_path: Path, ndc: str) -> Settings:
    return write_config(tmp_path, [{"id": "tc1", "url": "sim:tcp", "seed": 1, "ndc": ndc,
                                    "on_hand": 300}])


async def test_start_refuses_a_configuration_that_names_another_drug_for_a_bin(
        tmp_path: Path) -> None:
    # Before: the store kept atorvastatin while the simulator and the calibration check
    # went by the configuration's lisinopril.
    store = await open_store(sqlite_url(tmp_path / "rx.sqlite"))
    try:
        settings = _site(tmp_path, ATORVASTATIN)
        await Supervisor(settings, store, urls={"tc1": "socket://127.0.0.1:9"}).store \
            .stock.ensure_bins([BinSpec("tc1", 1, ATORVASTATIN, "L1", EXPIRY, 300, 50, 900)])
        changed = _site(tmp_path, LISINOPRIL)
        sup = Supervisor(changed, store, urls={"tc1": "socket://127.0.0.1:9"})
        with pytest.raises(BinDrugMismatch) as caught:
            await sup.start()
        message = str(caught.value)
        assert f"tc1/1 holds NDC {ATORVASTATIN} in the store" in message
        assert f"the configuration says {LISINOPRIL}" in message
        assert "rxfill stock unload ROBOT/BIN" in message and "rxfill stock load" in message
        (bin_record,) = await store.stock.bins()
        assert bin_record.ndc == ATORVASTATIN
    finally:
        await store.close()


def test_rxfill_run_refuses_to_start_and_stock_load_changes_the_drug_on_purpose(
        tmp_path: Path) -> None:
    settings = _site(tmp_path, ATORVASTATIN)
    store_file = tmp_path / "site.sqlite"

    async def make() -> None:
        store = await open_store(sqlite_url(store_file))
        await store.stock.ensure_bins([BinSpec("tc1", 1, ATORVASTATIN, "L1", EXPIRY, 300, 50, 900)])
        await store.people.add_user("pat", frozenset({Role.PHARMACIST}), PASSWORD, by=admin())
        await store.people.add_user("tom", frozenset({Role.TECHNICIAN}), PASSWORD, by=admin())
        await store.close()
    asyncio.run(make())
    config = settings.path
    shutil.copy(config, tmp_path / "atorvastatin.toml")
    config.write_text(config.read_text().replace(ATORVASTATIN, LISINOPRIL))

    def rxfill(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*RXFILL, *args, "--config", str(config), "--store",
                               str(store_file)], capture_output=True, text=True, timeout=60,
                              env=cli_env(), input=PASSWORD + "\n")
    run = rxfill("run")
    assert run.returncode == 2 and "refusing to start" in run.stderr, run.stderr
    assert f"tc1/1 holds NDC {ATORVASTATIN}" in run.stderr and "Traceback" not in run.stderr
    scan = bottle_code(LISINOPRIL, "LS1", date.today() + timedelta(days=400), "S9")
    full = rxfill("stock", "load", "tc1/1", "--scan", scan, *AS_PAT)
    assert full.returncode == 1 and "still holds 300" in full.stderr, full.stderr
    assert rxfill("stock", "unload", "tc1/1", "--reason", "drug change",
                  *AS_PAT).returncode == 0
    loaded = rxfill("stock", "load", "tc1/1", "--scan", scan, "--quantity", "200",
                    *AS_PAT)
    assert loaded.returncode == 0, loaded.stderr
    assert f"now NDC {LISINOPRIL} (was {ATORVASTATIN})" in loaded.stdout
    # Which drug a bin holds is a pharmacist's decision: a technician is refused.
    assert rxfill("stock", "unload", "tc1/1", "--reason", "again", "--user", "tom",
                  "--password-stdin").returncode == 0
    by_tom = rxfill("stock", "load", "tc1/1", "--scan", scan, "--user", "tom",
                    "--password-stdin")
    assert by_tom.returncode == 1 and "tom may not load a bin" in by_tom.stderr
    exported = rxfill("audit", "export")
    assert '"action": "bin drug changed"' in exported.stdout


async def test_a_bottle_loaded_into_a_bin_is_checked_like_a_restock(store: Store) -> None:
    await store.stock.ensure_bins([BinSpec("tc1", 1, ATORVASTATIN, "L1", EXPIRY, 0, 50, 900)])
    today = date.today()
    expired = parse_bottle(bottle_code(LISINOPRIL, "OLD", today - timedelta(days=1), "S1"))
    with pytest.raises(RestockRefused, match="expired"):
        await store.stock.load_bin("tc1", 1, expired, LISINOPRIL, quantity=100, by=pharm("pat"),
                                   policy=RestockPolicy(), today=today)
    fresh = parse_bottle(bottle_code(LISINOPRIL, "NEW", today + timedelta(days=400), "S2"))
    with pytest.raises(RestockRefused, match="do not fit"):
        await store.stock.load_bin("tc1", 1, fresh, LISINOPRIL, quantity=901, by=pharm("pat"),
                                   policy=RestockPolicy(), today=today)
    loaded = await store.stock.load_bin("tc1", 1, fresh, LISINOPRIL, quantity=100, by=pharm("pat"),
                                        policy=RestockPolicy(), today=today)
    assert (loaded.ndc, loaded.lot, loaded.on_hand) == (LISINOPRIL, "NEW", 100)


# -- 9: out of service means no further fills ---------------------------------------------------


async def test_orders_queued_on_a_robot_taken_out_of_service_are_routed_elsewhere(
        tmp_path: Path, store: Store) -> None:
    settings = write_config(tmp_path, [
        {"id": "tc1", "url": "sim:tcp", "seed": 1, "ndc": ATORVASTATIN, "on_hand": 900},
        {"id": "tc2", "url": "sim:tcp", "seed": 2, "ndc": ATORVASTATIN, "on_hand": 900}])
    sims = await start_simulators(settings)
    started: list[tuple[str, datetime]] = []
    returned: list[OrderReturned] = []

    def seen(notice: Notice) -> None:
        if isinstance(notice, FillStarted):
            started.append((notice.fill.robot, datetime.now().astimezone()))
        elif isinstance(notice, OrderReturned):
            returned.append(notice)
    try:
        sup = Supervisor(settings, store, urls={r: s.url for r, s in sims.items()})
        Technician(sup)
        sup.subscribe(seen)
        async with sup:
            orders = [await sup.submit(order(ATORVASTATIN, 60)) for _ in range(4)]
            # Another process (the CLI) takes tc1 out of service, straight in the store,
            # while an order waits on its queue.
            await sup.desk.set_in_service("tc1", maint("maint"), False)
            down_at = datetime.now().astimezone()
            async with asyncio.timeout(60):
                settled = await sup.wait_settled([o.id for o in orders])
        assert all(o.state is OrderState.FILLED for o in settled), settled
        late = [robot for robot, at in started if robot == "tc1" and at > down_at]
        assert late == [], started
        assert returned and all(r.robot == "tc1" for r in returned)
        for notice in returned:
            assert [f.robot for f in await store.orders.fills(notice.order_id)] == ["tc2"]
    finally:
        for sim in sims.values():
            await sim.close()


async def test_the_store_refuses_a_fill_on_a_robot_out_of_service(store: Store) -> None:
    order_id, bin_id = await _queued(store)
    await store.alarms.change_alarms(lambda _alarms, _bins, _down: [],
                                     service=("tc1", False, "maint"))
    with pytest.raises(FillRefused, match="tc1 is out of service"):
        await store.orders.start_fill(order_id, bin_id)


# -- 10: capacity and recalls -------------------------------------------------------------------


async def test_a_correction_never_records_more_than_capacity_nor_less_than_zero(
        store: Store) -> None:
    await store.stock.ensure_bins([BinSpec("tc1", 1, ATORVASTATIN, "L1", EXPIRY, 300, 50, 900)])
    (bin_record,) = await store.stock.bins()
    with pytest.raises(ValueError, match="holds at most 900"):
        await store.stock.correct_bin(bin_record.id, 901, by=tech("tess"), reason="counted")
    with pytest.raises(ValueError, match="expected 0 or more"):
        await store.stock.correct_bin(bin_record.id, -1, by=tech("tess"), reason="counted")
    assert (await store.stock.bin("tc1", 1)).on_hand == 300
    assert (await store.stock.correct_bin(bin_record.id, 900, by=tech("tess"),
                                          reason="counted")).on_hand == 900


async def test_a_recounted_robot_vial_is_one_vial_in_a_recall(store: Store) -> None:
    # Before: the robot's fill and the hand fill that recounted its vial were two vials.
    order_id, bin_id = await _queued(store)
    fill = await store.orders.start_fill(order_id, bin_id)
    await store.orders.finish_fill(fill.id, FillResult(FillOutcome.WEIGHT_OFF, 30, 4340, None,
                                                       "off"))
    await store.handwork.hand_fill(order_id, None, 30, weighed(30, 30 * 155), TECH, found=30)
    hand = (await store.orders.fills(order_id))[-1]
    (vial,) = await store.stock.recall("L1")
    assert (vial.fill_id, vial.quantity) == (hand.id, 30)


async def test_a_vial_returned_to_stock_is_no_vial_to_recall_and_a_wasted_one_says_so(
        store: Store) -> None:
    from controller.store import fill_code
    from tests.helpers import PHARM
    order_id, bin_id = await _queued(store)
    fill = await store.orders.start_fill(order_id, bin_id)
    await store.orders.finish_fill(fill.id, FillResult(FillOutcome.FILLED, 30, None, None, "ok"))
    await store.verification.label_scanned(order_id, fill_code(fill.id), TECH)
    await store.verification.reject_vial(fill.id, PHARM, "chipped", fill_again=True,
                                         tablets="returned")
    assert await store.stock.recall("L1") == []
    again = await store.orders.start_fill(order_id, bin_id)
    await store.orders.finish_fill(again.id, FillResult(FillOutcome.FILLED, 30, None, None, "ok"))
    await store.verification.label_scanned(order_id, fill_code(again.id), TECH)
    await store.verification.reject_vial(again.id, PHARM, "dropped", fill_again=False,
                                         tablets="wasted")
    (wasted,) = await store.stock.recall("L1")
    assert (wasted.fill_id, wasted.fate) == (again.id, "wasted")


async def test_a_vial_whose_lot_expired_since_its_fill_is_neither_verified_nor_released(
        tmp_path: Path) -> None:
    # Found while closing item 7: the label's discard-by date would already be past.
    from controller.store import fill_code
    from tests.helpers import PHARM
    url = sqlite_url(tmp_path / "rx.sqlite")
    store = await open_store(url, clock=At(AFTER - timedelta(days=2)))
    order_id, bin_id = await _queued(store)
    fill = await store.orders.start_fill(order_id, bin_id)
    await store.orders.finish_fill(fill.id, FillResult(FillOutcome.FILLED, 30, None, None, "ok"))
    await store.verification.label_scanned(order_id, fill_code(fill.id), TECH)
    await store.close()
    store = await open_store(url, clock=At(AFTER))
    try:
        with pytest.raises(WorkflowError, match=r"L1 expired 2030-01-01\): it may not be "):
            await store.verification.verify_vial(fill.id, PHARM)
        assert (await store.orders.order(order_id)).state is OrderState.LABELED
        cancelled = await store.verification.reject_vial(fill.id, PHARM, "lot expired",
                                                         fill_again=False, tablets="wasted")
        assert cancelled is OrderState.CANCELLED
    finally:
        await store.close()
