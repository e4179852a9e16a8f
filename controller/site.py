"""A whole site from its configuration: broker, simulators, store and supervisor.

``rxfill run`` and ``rxfill demo`` both start through here.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import structlog
import uvicorn

from controller.api.app import create_app
from controller.config import Settings
from controller.console.app import mount
from controller.domain.audit import AuditKey
from controller.mqtt.broker import EmbeddedBroker
from controller.mqtt.publisher import BrokerLink
from controller.pharmacy.service import Pharmacy
from controller.robots.floor import bin_specs
from controller.robots.simulated import Simulator, start_simulators
from controller.robots.supervisor import Supervisor
from controller.store import Store, sqlite_url
from controller.store.lock import supervising
from drivers.base import LabelPrinter
from drivers.registry import find_driver
from drivers.tasks import stop_tasks
from simulators.label_printer.server import PrinterSimulator

log = structlog.get_logger(__name__)


@asynccontextmanager
async def broker_link(settings: Settings, override: str | None = None,
                      ) -> AsyncIterator[BrokerLink | None]:
    """The broker to publish to: ``override`` or ``[mqtt] broker``; an embedded one is started
    here and stopped last. None when MQTT is off."""
    mqtt = settings.config.mqtt
    url = override or mqtt.broker
    if url == "off":
        yield None
        return
    if url != "embedded":
        yield BrokerLink.from_settings(mqtt, url, settings.resolve)
        return
    broker = EmbeddedBroker(mqtt.embedded_port)
    await broker.start()
    try:
        yield BrokerLink.from_settings(mqtt, broker.url, settings.resolve)
    finally:
        await broker.stop()


@asynccontextmanager
async def simulated_robots(settings: Settings, store: Store) -> AsyncIterator[
        dict[str, Simulator]]:
    """The simulators of ``sim:`` robots, holding what the store says each bin holds."""
    await store.stock.ensure_bins(bin_specs(settings))
    on_hand = {(b.robot, b.bin): max(b.on_hand, 0) for b in await store.stock.bins()}
    simulators = await start_simulators(settings, on_hand)
    try:
        yield simulators
    finally:
        for sim in simulators.values():
            await sim.close()


@asynccontextmanager
async def label_printer(settings: Settings) -> AsyncIterator[
        tuple[LabelPrinter, PrinterSimulator | None]]:
    """The label printer's driver, and its simulator when the url is ``sim:tcp``."""
    config = settings.config.printer
    simulator = None
    url = config.url
    if url == "sim:tcp":
        simulator = PrinterSimulator()
        url = await simulator.listen_tcp()
    cls = find_driver(config.driver)
    printer: LabelPrinter = cls.configured(cls.settings.model_validate({"name": config.driver}),
                                           name="printer", url=url)
    try:
        yield printer, simulator
    finally:
        await printer.close()
        if simulator is not None:
            await simulator.close()


class PortInUse(OSError):
    """The API's address cannot be listened on; the message says which and why."""


def listen(host: str, port: int) -> socket.socket:
    """A listening socket for the API, or PortInUse naming the address (taken at start, so
    that a port in use stops the site before any robot moves)."""
    try:
        return socket.create_server((host, port), backlog=128)
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        raise PortInUse(f"the API cannot listen on {host}:{port}: {why} (another "
                        f"rxfill on it? choose another with --port or [api] port)") from None


@asynccontextmanager
async def api_server(pharmacy: Pharmacy, host: str, port: int,
                     sock: socket.socket | None = None) -> AsyncIterator[str]:
    """Serve the REST API and the console on ``host:port`` (0: any free port), or on
    ``sock``, until the block ends; its url."""
    api = pharmacy.settings.config.api
    app = create_app(pharmacy, token_hours=api.token_hours)
    console = mount(app, pharmacy, idle_minutes=api.idle_minutes, token_hours=api.token_hours)
    try:
        async with serve_app(app, host, port, sock) as url:
            try:
                yield url
            finally:
                console.feed.close()  # the pages' streams end, so the server can stop
    finally:
        console.feed.close()


@asynccontextmanager
async def serve_app(app: Any, host: str, port: int,
                    sock: socket.socket | None = None) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn in this event loop until the block ends; its url."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off",
                            access_log=False, timeout_graceful_shutdown=3)
    server = _QuietServer(config)
    sock = sock or listen(host, port)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="api")
    while not server.started:
        if task.done():
            task.result()  # raises why it could not start (the port is taken…)
            raise OSError(f"the API could not listen on {host}:{port}")
        await asyncio.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()
    try:
        yield f"http://{bound[0]}:{bound[1]}"
    finally:
        server.should_exit = True
        try:
            async with asyncio.timeout(5):
                await task
        except TimeoutError:
            await stop_tasks([task])


class _QuietServer(uvicorn.Server):
    """uvicorn without its own SIGINT/SIGTERM handlers: the site stops it, in order."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def run_site(settings: Settings, store_path: Path, mqtt: str | None,
                   say: Callable[[str], None], *, audit_key: AuditKey,
                   port: int | None = None) -> None:
    """Run the site and its API until SIGINT or SIGTERM, then stop cleanly (MQTT
    ``offline``). StoreInUse when another supervisor holds the store."""
    api = settings.config.api
    with supervising(store_path), listen(api.host, api.port if port is None else port) as sock:
        await _run_site(settings, store_path, mqtt, say, audit_key=audit_key, sock=sock)


async def _run_site(settings: Settings, store_path: Path, mqtt: str | None,
                    say: Callable[[str], None], *, audit_key: AuditKey,
                    sock: socket.socket) -> None:
    store = await Store.open(sqlite_url(store_path), audit_key=audit_key,
                             formulary=settings.formulary, upgrade=True)
    if store.upgraded is not None:
        say(f"store {store_path} upgraded from schema revision {store.upgraded[0]} to "
            f"{store.upgraded[1]}; the store as it was is kept in {store.backup}")
    api = settings.config.api
    try:
        async with (broker_link(settings, mqtt) as link,
                    simulated_robots(settings, store) as sims,
                    label_printer(settings) as (printer, _)):
            supervisor = Supervisor(settings, store, urls={r: s.url for r, s in sims.items()},
                                    mqtt=link)
            pharmacy = Pharmacy(settings, store, supervisor, printer=printer)
            pharmacy.simulated(sims)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            async with supervisor, api_server(pharmacy, api.host, api.port, sock) as url:
                where = link.url if link else "off"
                say(f"rxfill running: site {settings.config.site.id}, robots "
                    f"{', '.join(supervisor.robots)}, store {store_path}, mqtt {where}, "
                    f"api {url} (OpenAPI at {url}/docs), console {url}/")
                await stop.wait()
                say("stopping")
            await pharmacy.close()
    finally:
        await store.close()
