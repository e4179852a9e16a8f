"""The ZPL label printer driver against the printer simulator, over real TCP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from controller.domain.labels import Barcode, LabelLayout, Text
from drivers import errors
from drivers.base import LabelPrinter, PrinterStatus
from drivers.label_printer import protocol as wire
from drivers.label_printer.driver import ZplLabelPrinter
from drivers.label_printer.protocol import label_format
from drivers.registry import find_driver
from simulators.label_printer.server import PrinterSimulator
from tests.helpers import eventually

LAYOUT = LabelLayout((Text(50, 50, 30, "Take 1 tablet by mouth daily", "sig"),
                      Barcode(50, 120, 80, 2, "F00000123")))
LABEL = label_format(LAYOUT)
"""What the printer receives for LAYOUT."""


@pytest.fixture
async def printer() -> AsyncIterator[PrinterSimulator]:
    sim = PrinterSimulator()
    await sim.listen_tcp()
    async with sim:
        yield sim


def test_host_status_golden_bytes_and_round_trip() -> None:
    status = PrinterStatus(paper_out=True, paused=False, head_open=True, ribbon_out=False,
                           formats_waiting=2, buffer_full=False)
    data = wire.encode_host_status(status)
    assert data.split(b"\r\n")[0] == b"\x02030,1,0,0406,002,0,0,0,000,0,0,0\x03"
    assert data.split(b"\r\n")[1] == b"\x02001,0,1,0,0,2,6,0,00000000,1,000\x03"
    assert wire.parse_host_status(data) == status
    with pytest.raises(wire.StatusError, match="three"):
        wire.parse_host_status(b"\x02030,1\x03\r\n")


def test_formats_are_split_out_of_a_stream() -> None:
    formats, rest = wire.split_formats(b"~HS^XA^FDone^XZ^XA^FDtwo^XZ^XA^FDpar")
    assert formats == [b"^XA^FDone^XZ", b"^XA^FDtwo^XZ"] and rest == b"^XA^FDpar"


async def test_a_label_reaches_the_printer_and_is_printed(printer: PrinterSimulator) -> None:
    cls = find_driver("zpl-printer")
    driver = cls.configured(cls.settings(name="zpl-printer"), name="lp1", url=printer.url)
    async with driver as lp:
        assert isinstance(lp, LabelPrinter)
        assert (await lp.status()).ready
        await lp.print_label(LAYOUT)
        await eventually(lambda: printer.printed == [LABEL])


@pytest.mark.parametrize(("fault", "code", "says"), [
    ("paper_out", "paper_out", "out of labels"),
    ("head_open", "head_open", "print head open"),
    ("paused", "paused", "paused"),
])
async def test_a_printer_that_cannot_print_is_sent_nothing(
        printer: PrinterSimulator, fault: str, code: str, says: str) -> None:
    setattr(printer.faults, fault, True)
    async with ZplLabelPrinter(name="lp1", url=printer.url) as lp:
        with pytest.raises(errors.PrinterNotReady, match=says) as caught:
            await lp.print_label(LAYOUT)
        assert caught.value.code == code
        await asyncio.sleep(0.1)
        assert printer.printed == [] and printer.waiting == []
        setattr(printer.faults, fault, False)
        await lp.print_label(LAYOUT)
        await eventually(lambda: printer.printed == [LABEL])


async def test_a_silent_printer_is_a_printer_that_cannot_print(
        printer: PrinterSimulator) -> None:
    printer.faults.paper_out = printer.faults.silent_when_faulted = True
    async with ZplLabelPrinter(name="lp1", url=printer.url, timeout=0.3) as lp:
        with pytest.raises(errors.PrinterNotReady, match="no answer to ~HS") as caught:
            await lp.print_label(LAYOUT)
        assert caught.value.code == "silent"


async def test_a_format_sent_while_paused_waits_and_prints_on_resume(
        printer: PrinterSimulator) -> None:
    async with ZplLabelPrinter(name="lp1", url=printer.url) as lp:
        await lp.print_label(LAYOUT)
        await eventually(lambda: len(printer.printed) == 1)
    printer.faults.paused = True
    host, port = printer.url.removeprefix("tcp://").split(":")
    _reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(LABEL.encode())  # another host that does not ask first
    await writer.drain()
    await eventually(lambda: len(printer.waiting) == 1)
    async with ZplLabelPrinter(name="lp1", url=printer.url) as lp:
        assert (await lp.status()).formats_waiting == 1
    printer.faults.paused = False
    printer.resume()
    assert len(printer.printed) == 2 and printer.waiting == []
    writer.close()


async def test_refusals_before_any_byte_is_sent(printer: PrinterSimulator) -> None:
    lp = ZplLabelPrinter(name="lp1", url=printer.url)
    with pytest.raises(errors.NotConnectedError):
        await lp.status()
    with pytest.raises(errors.NotConnectedError, match="cannot reach the printer"):
        await ZplLabelPrinter(name="lp1", url="tcp://127.0.0.1:1", timeout=0.5).open()
