"""A whole site from its configuration: broker, simulators, store and supervisor.

``rxfill run`` and ``rxfill demo`` both start through here.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from controller.broker import EmbeddedBroker
from controller.config import Settings
from controller.publisher import BrokerLink
from controller.simulation import Simulator, start_simulators
from controller.store import Store, sqlite_url
from controller.supervisor import Supervisor, bin_specs


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
    await store.ensure_bins(bin_specs(settings))
    on_hand = {(b.robot, b.bin): max(b.on_hand, 0) for b in await store.bins()}
    simulators = await start_simulators(settings, on_hand)
    try:
        yield simulators
    finally:
        for sim in simulators.values():
            await sim.close()


async def run_site(settings: Settings, store_path: Path, mqtt: str | None,
                   say: Callable[[str], None]) -> None:
    """Run the site until SIGINT or SIGTERM, then stop cleanly (MQTT ``offline``)."""
    store = await Store.open(sqlite_url(store_path))
    try:
        async with broker_link(settings, mqtt) as link, simulated_robots(settings, store) as sims:
            supervisor = Supervisor(settings, store, urls={r: s.url for r, s in sims.items()},
                                    mqtt=link)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            async with supervisor:
                where = link.url if link else "off"
                say(f"rxfill running: site {settings.config.site.id}, robots "
                    f"{', '.join(supervisor.robots)}, store {store_path}, mqtt {where}")
                await stop.wait()
                say("stopping")
    finally:
        await store.close()
