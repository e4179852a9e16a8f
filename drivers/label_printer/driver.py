"""A ZPL II label printer on raw TCP (Zebra and compatibles), as a LabelPrinter."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

from pydantic import Field

from drivers import errors
from drivers.base import OpensAsContext, PrinterStatus
from drivers.label_printer import protocol as wire
from drivers.labels import Layout
from drivers.settings import DriverSettings


class ZplPrinterSettings(DriverSettings):
    """The ZPL printer driver's settings."""

    name: Literal["zpl-printer"] = "zpl-printer"
    timeout_ms: int = Field(default=2000, ge=100, le=30_000)


class ZplLabelPrinter(OpensAsContext):
    """``tcp://HOST[:PORT]`` (9100 by default). Every ``print_label`` asks ``~HS`` first and
    sends nothing to a printer that cannot print; a printer that does not answer ``~HS`` (out
    of media or head open, on some firmware) cannot."""

    kind = "label-printer"
    settings = ZplPrinterSettings
    max_channels = 0

    @classmethod
    def configured(cls, settings: ZplPrinterSettings, *, name: str, url: str,
                   time_scale: float = 1.0) -> ZplLabelPrinter:
        """The driver as its settings set it."""
        return cls(name=name, url=url, timeout=settings.timeout_ms / 1000)

    def __init__(self, *, name: str, url: str, timeout: float = 2.0) -> None:
        if not url.startswith("tcp://"):
            raise ValueError(f"printer url {url!r}: expected tcp://HOST[:PORT]")
        host, colon, port = url.removeprefix("tcp://").rpartition(":")
        if not colon or not port.isdigit():
            host, port = url.removeprefix("tcp://"), str(wire.DEFAULT_PORT)
        self.name = name
        self.url = url
        self._host, self._port = host, int(port)
        self._timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        """True while the link is open."""
        return self._writer is not None and not self._writer.is_closing()

    async def open(self) -> None:
        """Connect; NotConnectedError naming the address when nothing answers."""
        try:
            async with asyncio.timeout(self._timeout):
                self._reader, self._writer = await asyncio.open_connection(self._host,
                                                                           self._port)
        except (OSError, TimeoutError) as exc:
            raise errors.NotConnectedError(
                f"cannot reach the printer at {self._host}:{self._port}: {exc or 'timed out'}",
                device=self.name) from None

    async def close(self) -> None:
        """Close the link; safe twice."""
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


    async def status(self) -> PrinterStatus:
        """Ask ``~HS``; ReplyTimeout when the printer says nothing, ProtocolError for garble."""
        async with self._lock:
            reader, writer = self._streams()
            try:
                writer.write(wire.HOST_STATUS)
                await writer.drain()
                data = b""
                async with asyncio.timeout(self._timeout):
                    while data.count(wire.ETX + b"\r\n") < 3:
                        chunk = await reader.read(256)
                        if not chunk:
                            raise errors.LinkError("the printer closed the link",
                                                   device=self.name, request="~HS")
                        data += chunk
            except TimeoutError:
                raise errors.ReplyTimeout(
                    "no answer to ~HS: the printer is off, out of media or its head is open",
                    device=self.name, request="~HS") from None
            except OSError as exc:
                raise errors.LinkError(f"link failed: {exc}", device=self.name,
                                       request="~HS") from None
        try:
            return wire.parse_host_status(data)
        except wire.StatusError as exc:
            raise errors.ProtocolError(str(exc), device=self.name, request="~HS",
                                       reply=data.decode("ascii", "replace")) from None

    def render(self, layout: Layout) -> str:
        """``layout`` as this printer is sent it: one ZPL II format."""
        return wire.label_format(layout)

    async def print_label(self, layout: Layout) -> None:
        """Send ``layout`` once the printer says it can print it."""
        zpl = self.render(layout)
        try:
            status = await self.status()
        except errors.ReplyTimeout as exc:
            raise errors.PrinterNotReady(str(exc.args[0]), device=self.name,
                                         code="silent") from None
        if not status.ready:
            raise errors.PrinterNotReady(f"cannot print: {status.problem}", device=self.name,
                                         code=_code(status))
        async with self._lock:
            _reader, writer = self._streams()
            try:
                writer.write(zpl.strip().encode("utf-8"))
                await writer.drain()
            except OSError as exc:
                raise errors.LinkError(f"link failed while sending a label: {exc}",
                                       device=self.name) from None

    def _streams(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            raise errors.NotConnectedError("the printer link is not open", device=self.name)
        return self._reader, self._writer


def _code(status: PrinterStatus) -> str:
    for flag, code in ((status.paper_out, "paper_out"), (status.head_open, "head_open"),
                       (status.ribbon_out, "ribbon_out"), (status.paused, "paused")):
        if flag:
            return code
    return "buffer_full"
