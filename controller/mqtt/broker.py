"""The embedded MQTT broker (amqtt), for ``mqtt.broker = "embedded"``: loopback only.

It lets the demo and a pharmacy without a broker run with nothing
installed. It keeps retained messages in memory: a restart of the process
loses them, and the supervisor republishes the alarms that stand (see
``Supervisor.start``).
"""

from __future__ import annotations

import logging
from typing import Any

from amqtt.broker import Broker

LOOPBACK = "127.0.0.1"


class EmbeddedBroker:
    """An MQTT 3.1.1 broker in this process. ``await start()``, then ``url``; ``await stop()``."""

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._broker: Broker | None = None
        self.port = 0
        """The port it listens on, once started."""

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:PORT``."""
        return f"mqtt://{LOOPBACK}:{self.port}"

    async def start(self) -> str:
        """Listen on loopback; return the url."""
        # amqtt logs every connection at INFO in its own words; keep only its troubles.
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.ERROR)
        config: dict[str, Any] = {
            "listeners": {"default": {"type": "tcp", "bind": f"{LOOPBACK}:{self._port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                        {"allow_anonymous": True}},
        }
        broker = Broker(config)
        await broker.start()
        self._broker = broker
        server = broker._servers["default"].instance  # amqtt has no public accessor
        self.port = int(server.sockets[0].getsockname()[1])
        return self.url

    async def stop(self) -> None:
        """Close every connection and stop listening."""
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None
