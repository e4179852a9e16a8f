"""Alarms, robot states and events over a real MQTT broker, as the ICD says."""

from __future__ import annotations

import asyncio
import gc
import json
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import structlog
from amqtt.broker import Broker

from controller.config import Settings, broker_address
from controller.domain.gs1 import bottle_code, parse_bottle
from controller.domain.stock import RestockPolicy
from controller.mqtt.broker import EmbeddedBroker
from controller.mqtt.publisher import BrokerLink, Publisher
from controller.mqtt.topics import Topics, encode
from controller.robots.simulated import Simulator, start_simulators
from controller.robots.supervisor import Supervisor
from controller.store import Store, sqlite_url
from controller.store.outbox import Message
from drivers.tasks import stop_tasks
from tests.floors import ATORVASTATIN, order, write_config
from tests.helpers import eventually, open_store, tech
from tests.mqtt import Subscriber, broker_url, clear_retained, unique_site


def link(url: str) -> BrokerLink:
    host, port, _tls = broker_address(url)
    return BrokerLink(host, port, keepalive_s=2)


async def drained(store: Store) -> None:
    async with asyncio.timeout(15):
        while await store.alarms.outbox(1):  # noqa: ASYNC110 - another task empties it
            await asyncio.sleep(0.05)


@dataclass
class Site:
    """One counter, tc1 (simulated, on TCP), a store, and a site id no other test uses."""

    id: str
    settings: Settings
    sims: dict[str, Simulator]
    store: Store

    def supervisor(self, url: str) -> Supervisor:
        return Supervisor(self.settings, self.store, urls={"tc1": self.sims["tc1"].url},
                          seed=3, mqtt=link(url))


@pytest.fixture
async def site(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Site]:
    """tc1 holds 60 of atorvastatin (par 50), or what the test's ``on_hand`` mark says."""
    mark = request.node.get_closest_marker("on_hand")
    on_hand = mark.args[0] if mark else 60
    name = unique_site()
    settings = write_config(tmp_path, [{"id": "tc1", "url": "sim:tcp", "seed": 4,
                                        "ndc": ATORVASTATIN, "on_hand": on_hand}], site=name)
    sims = await start_simulators(settings)
    store = await open_store(sqlite_url(tmp_path / "rx.sqlite"))
    try:
        yield Site(name, settings, sims, store)
    finally:
        await store.close()
        for sim in sims.values():
            await sim.close()


async def test_a_late_subscriber_sees_standing_alarms_and_ack_and_restock_remove_them(
        site: Site) -> None:
    store = site.store
    async with broker_url() as url:
        supervisor = site.supervisor(url)
        async with supervisor:
            (record,) = await supervisor.wait_settled(
                [(await supervisor.submit(order(ATORVASTATIN, 20, rx="RX100"))).id])
            assert record.state == "filled"
            await supervisor.watch.check()
            await drained(store)

            async with Subscriber(url, site.id) as late:
                await late.until(lambda: bool(late.on("alarms/bin-low-tc1-1")))
                (low,) = late.on("alarms/bin-low-tc1-1")
                alarm = low.json
                assert low.retain and alarm["state"] == "unack_active"
                assert (alarm["on_hand"], alarm["par"], alarm["bin"]) == (40, 50, 1)
                await late.until(lambda: bool(late.on("supervisor")))
                assert late.on("supervisor")[-1].json["status"] == "online"
                await late.until(lambda: bool(late.on("robots/tc1")))
                robot = late.on("robots/tc1")[-1].json
                assert set(robot) == {"robot", "kind", "connected", "state", "job",
                                      "updated_at"}
                assert (robot["kind"], robot["connected"]) == ("tablet-counter", True)

                await supervisor.desk.acknowledge("bin-low-tc1-1", tech("ana"))
                supervisor.watch.poke()
                await late.until(lambda: late.on("alarms/bin-low-tc1-1")[-1].json[
                    "state"] == "ack_active")
                acked = late.on("alarms/bin-low-tc1-1")[-1].json
                assert acked["acked_by"] == "ana" and acked["seq"] > alarm["seq"]

                scan = parse_bottle(bottle_code(ATORVASTATIN, "L1", date(2030, 1, 1), "B1"))
                await store.stock.restock("tc1", 1, scan, ATORVASTATIN, quantity=100,
                                          by=tech("ana"),
                                          policy=RestockPolicy(), today=date(2026, 11, 23),
                                          partial=False)
                supervisor.watch.poke()
                await late.until(lambda: late.on("alarms/bin-low-tc1-1")[-1].payload == b"")
                await late.until(lambda: bool(late.on("events/restocked")))
                restocked = late.on("events/restocked")[-1]
                assert not restocked.retain
                assert restocked.json["on_hand"] == 140 and restocked.json["lot"] == "L1"

            async with Subscriber(url, site.id) as later:
                await later.until(lambda: bool(later.on("robots/tc1")))
                await later.caught_up()
                assert later.on("alarms/bin-low-tc1-1") == []  # removed: nothing retained
        everything = b"".join(m.payload for m in late.messages + later.messages)
        for patient_data in (b"Pat Example", b"RX100", b"1960-01-02", b"P1\""):
            assert patient_data not in everything
        await clear_retained(url, site.id)


async def test_broker_down_and_a_restart_lose_nothing_and_send_nothing_twice(
        tmp_path: Path) -> None:
    """Its own broker: the machine's is never stopped."""
    site = unique_site()
    topics = Topics(site)
    broker = EmbeddedBroker()
    await broker.start()
    port = broker.port
    path = sqlite_url(tmp_path / "rx.sqlite")

    def burst(start: int, count: int) -> list[Message]:
        return [Message(f"{topics.root}/alarms/m-{n:03d}", encode({"n": n}), retain=True)
                for n in range(start, start + count)]

    store = await open_store(path)
    first = Publisher(store, topics, link(broker.url))
    first.start()
    try:
        async with Subscriber(broker.url, site) as live:
            await store.alarms.enqueue(burst(0, 5))
            first.wake()
            await live.until(lambda: len(live.on("alarms/m-004")) == 1)
        await broker.stop()                       # the broker goes away
        await store.alarms.enqueue(burst(5, 5))  # the supervisor goes on, writing to the outbox
        first.wake()
        await eventually(lambda: not first.connected.is_set())  # it knows the broker is gone
        await stop_tasks([first._task] if first._task else [])  # killed: no drain, no goodbye
        await store.close()

        store = await open_store(path)            # restarted, broker still away
        await store.alarms.enqueue(burst(10, 5))
        second = Publisher(store, topics, link(broker.url))
        second.start()
        await eventually(lambda: second.problem is not None)  # it tried, and waits
        broker = EmbeddedBroker(port)             # the broker is back, on the same port
        await broker.start()
        async with Subscriber(broker.url, site) as after:
            await after.until(lambda: len([m for m in after.messages
                                           if "/alarms/m-" in m.topic]) >= 10)
            await drained(store)
            await after.caught_up()  # a duplicate sent would be here by now
        await second.stop()
        numbers = [json.loads(m.payload)["n"] for m in after.messages if "/alarms/m-" in m.topic]
        assert numbers == list(range(5, 15))      # each once, in order
        assert await store.alarms.outbox() == []
    finally:
        await store.close()
        await broker.stop()


async def test_the_will_says_offline_when_the_supervisor_dies(tmp_path: Path) -> None:
    site = unique_site()
    write_config(tmp_path, [{"id": "tc1", "url": "sim:tcp", "seed": 4, "ndc": ATORVASTATIN,
                             "on_hand": 400}], site=site, extra="[mqtt]\nkeepalive_s = 2\n")
    async with broker_url() as url, Subscriber(url, site) as watcher:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "controller", "run", "--config", str(tmp_path / "rxfill.toml"),
            "--store", str(tmp_path / "rx.sqlite"), "--mqtt", url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        try:
            assert process.stdout is not None
            async with asyncio.timeout(30):
                line = await process.stdout.readline()
            assert line.startswith(b"rxfill running: site " + site.encode()), line
            await watcher.until(lambda: any(m.json and m.json["status"] == "online"
                                            for m in watcher.on("supervisor")))
            await watcher.until(lambda: bool(watcher.on("robots/tc1")))
            process.send_signal(signal.SIGKILL)
            await process.wait()
            await watcher.until(lambda: watcher.on("supervisor")[-1].json == {
                "status": "offline"})
            await clear_retained(url, site)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()


@pytest.mark.on_hand(400)
async def test_retained_alarms_the_store_does_not_stand_behind_are_removed(site: Site) -> None:
    """Another run of the site (a demo's fresh store) left an alarm retained on the broker."""
    async with broker_url() as url:
        host, port, _tls = broker_address(url)
        stale = f"rxfill/{site.id}/alarms/bin-low-tc1-1"
        ghost = f"rxfill/{site.id}/robots/tc9"
        async with aiomqtt.Client(host, port) as other:
            await other.publish(stale, b'{"state":"unack_active"}', qos=1, retain=True)
            await other.publish(ghost, b'{"robot":"tc9"}', qos=1, retain=True)
        supervisor = site.supervisor(url)
        async with supervisor:
            assert supervisor.publisher is not None and supervisor.publisher.ready.is_set()
        async with Subscriber(url, site.id) as late:
            await late.until(lambda: bool(late.on("supervisor")))
            await late.caught_up()
            assert late.on("alarms/bin-low-tc1-1") == [] and late.on("robots/tc9") == []
            assert late.on("robots/tc1")
        await clear_retained(url, site.id)


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate it signed for 127.0.0.1: (ca, cert, key)."""
    ca_key, ca, key, request, cert = (folder / n for n in (
        "ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out",
            str(ca), "-days", "2", "-subj", "/CN=rxfill test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(request),
            "-subj", "/CN=127.0.0.1")
    extensions = folder / "san.cnf"
    extensions.write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", str(request), "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(extensions))
    return ca, cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
# paho leaves the socket of a refused TLS handshake for the garbage collector to close.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_tls_with_a_ca_file_and_nothing_without_it(tmp_path: Path) -> None:
    ca, cert, key = make_certificates(tmp_path)
    broker = Broker({
        "listeners": {"default": {"type": "tcp", "bind": "127.0.0.1:0", "ssl": True,
                                  "certfile": str(cert), "keyfile": str(key)}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                    {"allow_anonymous": True}}})
    await broker.start()
    port = broker._servers["default"].instance.sockets[0].getsockname()[1]
    topics = Topics(unique_site())
    store = await open_store(sqlite_url(tmp_path / "rx.sqlite"))
    try:
        await store.alarms.enqueue([topics.event("restocked", datetime.now(UTC), robot="tc1")])
        untrusting = Publisher(store, topics, BrokerLink("127.0.0.1", port, tls=True))
        untrusting.start()
        await eventually(lambda: untrusting.problem is not None)  # it tried, and was refused
        assert not untrusting.connected.is_set()  # the broker's certificate is not trusted
        await untrusting.stop(drain_s=0.1)
        gc.collect()  # that socket is closed here, under this test's filter, not in another's
        trusting = Publisher(store, topics, BrokerLink("127.0.0.1", port, tls=True,
                                                       ca_file=ca))
        trusting.start()
        async with asyncio.timeout(10):
            await trusting.ready.wait()
        await drained(store)
        await trusting.stop()
    finally:
        await store.close()
        await broker.shutdown()


async def test_the_publisher_survives_store_errors_and_says_so_once(store: Store) -> None:
    site = unique_site()
    topics = Topics(site)
    real_outbox = store.alarms.outbox
    calls = {"failed": 0}

    async def failing_outbox(limit: int = 100) -> Any:
        if calls["failed"] < 4:
            calls["failed"] += 1
            raise OSError("disk I/O error")
        return await real_outbox(limit)

    store.alarms.outbox = failing_outbox  # type: ignore[method-assign]
    async with broker_url() as url:
        publisher = Publisher(store, topics, link(url))
        with structlog.testing.capture_logs() as logs:
            publisher.start()
            await store.alarms.enqueue([Message(f"{topics.root}/alarms/x-1", encode({"n": 1}),
                                                retain=True)])
            async with Subscriber(url, site) as live:
                publisher.wake()
                await eventually(lambda: calls["failed"] >= 4 and publisher.problem is None)
                await live.until(lambda: len(live.on("alarms/x-1")) == 1)
                assert publisher._task is not None and not publisher._task.done()
            await publisher.stop()
        await clear_retained(url, site)
    said = [entry["event"] for entry in logs]
    assert said.count("mqtt publisher failing") == 1  # four failures, one line
    assert said.count("mqtt publisher recovered") == 1


@pytest.mark.parametrize("inotify", [True, False], ids=["inotify", "looking"])
async def test_a_bin_another_process_changes_is_announced_without_waiting_for_a_tick(
        site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inotify: bool) -> None:
    # Neither the alarm check's tick nor the publisher's blind look at the outbox comes
    # within this test: only the store's change watch can tell the site of the CLI's change,
    # told by inotify that the file was written, or looking every store_poll_ms.
    if not inotify:
        monkeypatch.setattr("controller.store.watch.folder_watch", lambda folder: None)
    monkeypatch.setattr("controller.alarms.watch.TICK_S", 3600.0)
    monkeypatch.setattr("controller.mqtt.publisher.IDLE_POLL_S", 3600.0)
    cli = await open_store(sqlite_url(tmp_path / "rx.sqlite"))  # as `rxfill stock` opens it
    try:
        async with broker_url() as url, site.supervisor(url), \
                Subscriber(url, site.id) as watcher:
            await watcher.caught_up()
            assert watcher.on("alarms/bin-low-tc1-1") == []
            (tc1,) = await cli.stock.bins()
            await cli.stock.correct_bin(tc1.id, 40, by=tech(), reason="counted by hand")
            await watcher.until(lambda: bool(watcher.on("alarms/bin-low-tc1-1")))
            assert watcher.on("alarms/bin-low-tc1-1")[-1].json["on_hand"] == 40
    finally:
        await cli.close()


async def test_a_change_watch_tells_another_process_s_commits_from_its_own(
        store: Store, tmp_path: Path) -> None:
    watch = store.change_watch()
    assert watch is not None
    other = await open_store(sqlite_url(tmp_path / "rx.sqlite"))
    try:
        assert not watch.look()
        await store.orders.receive_order(order(ATORVASTATIN, 10))  # this process's own
        assert not watch.look()
        await other.orders.receive_order(order(ATORVASTATIN, 20))  # another's
        assert watch.look()
        assert not watch.look()
    finally:
        watch.close()
        await other.close()
