"""The API's outer wall: a body over the limit is refused (413) before it is read.

Pure ASGI, so that it sees the bytes as they arrive: a ``Content-Length``
over the limit is refused at once, and a body sent without one (chunked) is
refused as soon as it passes the limit, never buffered whole.
"""

from __future__ import annotations

import json
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]


DRAIN_FACTOR = 16
"""How much of a refused body is read and thrown away (times the limit) before hanging up."""


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413 and a JSON ``detail``."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await self._drain(receive)
            await self._refuse(send, 413 if length.isdigit() else 400)
            return
        received = 0
        started = False

        async def limited() -> Message:
            nonlocal received
            message: Message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, watched)
        except _TooLarge:
            if not started:
                await self._drain(receive)
                await self._refuse(send, 413)

    async def _drain(self, receive: Any) -> None:
        """Read what the client still sends, keeping none of it (up to DRAIN_FACTOR times the
        limit), so that it reads the refusal instead of a connection reset."""
        drained = 0
        while drained <= DRAIN_FACTOR * self.limit:
            message = await receive()
            if message["type"] != "http.request":
                return
            drained += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    async def _refuse(self, send: Any, status: int) -> None:
        detail = (f"the body is over {self.limit} bytes (1 MiB); nothing was read"
                  if status == 413 else "Content-Length is not a number")
        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
