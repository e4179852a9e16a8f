"""A ZPL label printer on TCP: it keeps every label format it prints, answers ``~HS``, and
takes injectable faults (out of labels, head open, paused)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from drivers.base import PrinterStatus
from drivers.label_printer import protocol as wire


@dataclass
class PrinterFaults:
    """What a test can do to the printer."""

    paper_out: bool = False
    head_open: bool = False
    paused: bool = False
    silent_when_faulted: bool = False
    """Like some firmware: no answer to ~HS while out of media or with the head open."""


@dataclass
class PrinterSimulator:
    """Listen with ``listen_tcp``; ``printed`` holds each format printed, in order."""

    faults: PrinterFaults = field(default_factory=PrinterFaults)
    printed: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    """Formats received while it could not print: printed once it can (``resume``)."""
    url: str = ""
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    def status(self) -> PrinterStatus:
        """What ``~HS`` says now."""
        f = self.faults
        return PrinterStatus(paper_out=f.paper_out, paused=f.paused, head_open=f.head_open,
                             ribbon_out=False, formats_waiting=len(self.waiting),
                             buffer_full=False)

    def barcodes(self) -> list[str]:
        """The data of every Code 128 barcode printed, in order (what a scanner reads off the
        labels)."""
        return [data for zpl in self.printed for kind, _, _, data in wire.parse_fields(zpl)
                if kind == "code128"]

    def resume(self) -> None:
        """A person fixed it: what waited prints now."""
        if self.status().ready:
            self.printed.extend(self.waiting)
            self.waiting.clear()

    async def listen_tcp(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start listening; the url a driver opens."""
        self._server = await asyncio.start_server(self._serve, host, port)
        bound = self._server.sockets[0].getsockname()
        self.url = f"tcp://{bound[0]}:{bound[1]}"
        return self.url

    async def close(self) -> None:
        """Stop listening and drop every link."""
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        pending = b""
        try:
            while chunk := await reader.read(4096):
                pending += chunk
                # ~HS is a tilde command: answered at once, wherever it falls in the stream.
                while (at := pending.find(wire.HOST_STATUS)) >= 0:
                    pending = pending[:at] + pending[at + len(wire.HOST_STATUS):]
                    status = self.status()
                    silent = self.faults.silent_when_faulted and (status.paper_out
                                                                  or status.head_open)
                    if not silent:
                        writer.write(wire.encode_host_status(status))
                        await writer.drain()
                formats, pending = wire.split_formats(pending)
                for label in formats:
                    text = label.decode("utf-8", "replace")
                    (self.printed if self.status().ready else self.waiting).append(text)
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
