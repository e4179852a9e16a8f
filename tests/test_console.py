"""The console over HTTP, without a browser: sessions, CSRF, roles, privacy and refusals.
The browser tests (test_console_browser.py) drive the pages themselves."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.console.charts import stock_bar, weight_window
from controller.console.feed import Feed, topics_of
from controller.console.sessions import Sessions, SignedOut
from controller.console.views import throughput
from controller.domain.alarms import AlarmState
from controller.domain.orders import FillOutcome
from controller.domain.stock import days_of_stock
from controller.robots.notices import AlarmsChanged, OrderMoved, RobotOnline
from controller.store import FillRecord, sqlite_url
from tests.console_client import visitor
from tests.helpers import admin, open_store
from tests.sites import PASSWORD, order_body, running_site

PATIENT = "Ada Okafor"  # order_body's patient


async def test_a_session_cookie_is_httponly_and_samesite_strict(tmp_path: Path) -> None:
    async with running_site(tmp_path) as site, visitor(site) as tess:
        reply = await tess.sign_in("tess")
        assert reply.status_code == 303 and reply.headers["location"] == "/"
        cookie = next(h for h in reply.headers.get_list("set-cookie")
                      if h.startswith("rxfill_session="))
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        page = await tess.client.get("/")
        assert page.status_code == 200 and "Signed in: <strong>tess</strong>" in page.text
        assert page.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


async def test_a_wrong_password_signs_no_one_in(tmp_path: Path) -> None:
    async with running_site(tmp_path) as site, visitor(site) as someone:
        reply = await someone.sign_in("tess", "not the password")
        assert reply.status_code == 401
        assert "wrong user name or password" in reply.text
        assert "rxfill_session" not in reply.headers.get("set-cookie", "")
        assert (await someone.client.get("/")).status_code == 303  # still to the sign-in page


async def test_a_page_without_a_session_goes_to_sign_in_and_a_live_part_is_401(
        tmp_path: Path) -> None:
    async with running_site(tmp_path) as site, visitor(site) as someone:
        for path in ("/", "/alarms", "/verify", "/labels", "/orders/1"):
            reply = await someone.client.get(path)
            assert (reply.status_code, reply.headers["location"]) == (303, "/sign-in"), path
        assert (await someone.client.get("/fragments/alarms")).status_code == 401
        assert (await someone.client.get("/events")).status_code == 401
        assert (await someone.client.post("/alarms/x/acknowledge")).status_code == 303


async def test_a_form_without_the_sessions_csrf_token_is_refused_and_changes_nothing(
        tmp_path: Path) -> None:
    async with running_site(tmp_path, on_hand={"tc1": 40}) as site, visitor(site) as tess:
        await site.pharmacy.supervisor.watch.check()
        (alarm,) = [a for a in await site.pharmacy.store.alarms.alarms() if a.robot == "tc1"]
        await tess.sign_in("tess")
        forged = await tess.post(f"/alarms/{alarm.id}/acknowledge", csrf="guessed")
        assert forged.status_code == 403 and "did not come from this console" in forged.text
        other_site = await tess.client.post(f"/alarms/{alarm.id}/acknowledge",
                                            data={"csrf": tess.csrf},
                                            headers={"Origin": "http://evil.example"})
        assert other_site.status_code == 403
        (still,) = [a for a in await site.pharmacy.store.alarms.alarms() if a.id == alarm.id]
        assert still.state is AlarmState.UNACK_ACTIVE
        done = await tess.post(f"/alarms/{alarm.id}/acknowledge")
        assert done.status_code == 303
        assert f"Alarm {alarm.id} acknowledged by tess." in await tess.said("/alarms")


async def test_a_technician_cannot_reach_verification_by_page_form_or_api(
        tmp_path: Path) -> None:
    async with running_site(tmp_path) as site, visitor(site) as tess:
        order = (await site.post("/api/orders", "tess", order_body())).json()
        filled = await site.wait_state(order["id"], "filled")
        label = (await site.get(f"/api/orders/{order['id']}/evidence", "phil")).json()["label"]
        await site.post(f"/api/orders/{filled['id']}/label/scan", "tess", {"scanned": label})
        await tess.sign_in("tess")
        home = await tess.client.get("/")
        assert 'href="/verify"' not in home.text
        page = await tess.client.get("/verify")
        assert page.status_code == 403
        assert "tess may not see the verification station" in page.text
        fill_id = int(label[1:])
        assert (await tess.client.get(f"/verify/{fill_id}")).status_code == 403
        await tess.post(f"/verify/{fill_id}/approve")
        (said,) = await tess.said("/queue")
        assert said.startswith("Refused: tess may not verify")
        assert (await site.get(f"/api/labels/{label}", "tess")).status_code == 403
        assert (await site.get(f"/api/orders/{order['id']}", "tess")).json()["state"] == "labeled"


async def test_no_patient_name_on_the_floor_pages_and_only_where_the_task_needs_it(
        tmp_path: Path) -> None:
    async with running_site(tmp_path) as site, visitor(site) as bo:
        order = (await site.post("/api/orders", "tess", order_body())).json()
        await site.wait_state(order["id"], "filled")
        await bo.sign_in("bo")
        for path in ("/", "/robots", "/robots/tc1", "/bins", "/alarms", "/queue",
                     "/throughput", "/fragments/queue", "/fragments/robots"):
            page = await bo.client.get(path)
            assert page.status_code == 200, path
            assert PATIENT not in page.text, path
        for path in ("/labels", f"/orders/{order['id']}"):
            page = await bo.client.get(path)
            assert PATIENT in page.text, path
            title = page.text.split("<title>")[1].split("</title>")[0]
            assert PATIENT not in title


async def test_a_refused_action_says_why_and_changes_nothing(tmp_path: Path) -> None:
    async with running_site(tmp_path) as site, visitor(site) as tess:
        await tess.sign_in("tess")
        await tess.post("/bins/restock", bin="tc1/1", scan="not a bottle")
        (said,) = await tess.said("/bins")
        assert said.startswith("Refused: ") and "GS1" in said
        await tess.post("/alarms/no-such-alarm/shelve", reason="test", minutes="lots")
        (said,) = await tess.said("/alarms")
        assert "expected a number of minutes" in said
        await tess.post("/orders/999/cancel", reason="")
        (said,) = await tess.said("/queue")
        assert said.startswith("Refused: reason")


async def test_sessions_end_after_the_idle_time_and_at_sign_out(tmp_path: Path) -> None:
    store = await open_store(sqlite_url(tmp_path / "s.sqlite"))
    try:
        await store.people.add_user("tess", frozenset({"technician"}), PASSWORD,  # type: ignore[arg-type]
                                    by=admin())
        now = [1000.0]
        sessions = Sessions(store, idle=timedelta(minutes=15), lifetime=timedelta(hours=8),
                            now=lambda: now[0])
        session = await sessions.sign_in("tess", PASSWORD)
        now[0] += 14 * 60
        await sessions.find(session.token, active=False)  # a live update: the clock runs on
        now[0] += 2 * 60
        with pytest.raises(SignedOut, match="after 15 minutes without activity"):
            await sessions.find(session.token, active=True)
        with pytest.raises(Exception, match="unknown token"):
            await store.people.person_for(session.token)  # the token is gone with it
        again = await sessions.sign_in("tess", PASSWORD)
        now[0] += 14 * 60
        await sessions.find(again.token, active=True)  # activity: the idle time starts again
        now[0] += 14 * 60
        await sessions.find(again.token, active=False)
        await sessions.end(again)
        with pytest.raises(SignedOut):
            await sessions.find(again.token, active=True)
        left = await sessions.sign_in("tess", PASSWORD)  # a browser closed, never back
        now[0] += 16 * 60
        await sessions.sign_in("tess", PASSWORD)
        with pytest.raises(SignedOut, match="Sign in to use the console"):
            await sessions.find(left.token, active=False)  # ended, not kept for ever
        with pytest.raises(Exception, match="unknown token"):
            await store.people.person_for(left.token)
    finally:
        await store.close()


async def test_the_feed_tells_each_page_the_topics_changed_and_beats_when_quiet() -> None:
    feed = Feed()
    heard: list[tuple[str, ...]] = []
    told = asyncio.Event()

    async def listen() -> None:
        async for topics in feed.follow():
            heard.append(topics)
            told.set()
    task = asyncio.create_task(listen())
    await asyncio.sleep(0)
    feed.notice(AlarmsChanged(("bin-low-tc1-1",)))
    feed.notice(OrderMoved(1, "labeled", "tess"))
    await asyncio.wait_for(told.wait(), 5)
    assert set(heard[0]) == {"alarms", "bins", "robots", "queue", "labels"}
    feed.close()
    await asyncio.wait_for(task, 5)
    assert topics_of(RobotOnline("tc1")) == ("robots",)


def test_days_of_stock_need_a_rate_worth_the_name() -> None:
    assert days_of_stock(300, 100, timedelta(days=2)) == 6.0
    assert days_of_stock(300, 0, timedelta(days=2)) is None
    assert days_of_stock(300, 5, timedelta(minutes=10)) is None
    assert days_of_stock(-3, 100, timedelta(days=1)) == 0.0


def test_a_stock_bar_takes_colour_only_at_or_below_par() -> None:
    assert stock_bar(51, 50, 500).low is False
    assert stock_bar(50, 50, 500).low is True
    assert stock_bar(600, 50, 500).on_hand == 1.0  # overfull: the bar is full, not longer


def test_the_weight_window_says_inside_or_outside() -> None:
    assert weight_window(4650, 4650, 46).inside
    outside = weight_window(5009, 5400, 74)
    assert not outside.inside and outside.measured < outside.low < outside.high


def fill(robot: str, ended: datetime, outcome: FillOutcome) -> FillRecord:
    """A fill that ended at ``ended`` with ``outcome``."""
    return FillRecord(1, 1, 1, robot, 1, "00093-7146-01", "J1", 30, "ended", outcome, 30, None,
                      None, None, None, None, ended - timedelta(minutes=1), ended)


def test_throughput_counts_vials_by_robot_and_hour_and_failures_by_cause() -> None:
    now = datetime(2026, 11, 30, 14, 30, tzinfo=UTC)
    fills = [fill("tc1", now - timedelta(minutes=10), FillOutcome.FILLED),
             fill("tc1", now - timedelta(hours=2, minutes=10), FillOutcome.FILLED),
             fill("tc2", now - timedelta(minutes=5), FillOutcome.JAM),
             fill("tc1", now - timedelta(hours=9), FillOutcome.FILLED)]
    drawn = throughput(fills, ["tc1", "tc2"], now)
    assert drawn.vials["tc1"][-1] == 1 and drawn.vials["tc1"][-3] == 1
    assert sum(drawn.vials["tc1"]) == 2 and sum(drawn.vials["tc2"]) == 0
    assert drawn.causes == [("jam", 1)]
