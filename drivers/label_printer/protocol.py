"""ZPL II over raw TCP (port 9100): label formats and the ``~HS`` host status. Pure.

``~HS`` is answered with three strings, each ``<STX>…<ETX><CR><LF>`` (Zebra's
ZPL II Programming Guide):

    1: aaa,b,c,dddd,eee,f,g,h,iii,j,k,l   b paper out, c paused, dddd label length (dots),
                                           eee formats in the receive buffer, f buffer full
    2: mmm,n,o,p,q,r,s,t,uuuuuuuu,v,www    o head up (open), p ribbon out, uuuuuuuu labels
                                           remaining in the batch
    3: xxxx,y                              password, static RAM installed

Some firmware does not answer ``~HS`` at all while out of media or with the
head open: a driver must treat silence as "cannot print".
"""

from __future__ import annotations

import re

from drivers.base import PrinterStatus
from drivers.labels import Layout, TextLine

DEFAULT_PORT = 9100
STX, ETX = b"\x02", b"\x03"
HOST_STATUS = b"~HS"
LABEL_LENGTH_DOTS = 406
"""A 2-inch label at 203 dpi."""
_FORMAT = re.compile(rb"\^XA.*?\^XZ", re.DOTALL)


class StatusError(ValueError):
    """Bytes that are not a ``~HS`` answer; says what was wrong."""


def encode_host_status(status: PrinterStatus) -> bytes:
    """The printer's three strings for ``status``."""
    b = int
    one = (f"030,{b(status.paper_out)},{b(status.paused)},{LABEL_LENGTH_DOTS:04d},"
           f"{status.formats_waiting:03d},{b(status.buffer_full)},0,0,000,0,0,0")
    two = f"001,0,{b(status.head_open)},{b(status.ribbon_out)},0,2,6,0,00000000,1,000"
    three = "1234,0"
    return b"".join(STX + s.encode() + ETX + b"\r\n" for s in (one, two, three))


def parse_host_status(data: bytes) -> PrinterStatus:
    """The status in a printer's ``~HS`` answer, or StatusError."""
    strings = re.findall(rb"\x02([^\x02\x03]*)\x03\r\n", data)
    if len(strings) != 3:
        raise StatusError(f"expected three <STX>…<ETX><CR><LF> strings, got {len(strings)} "
                          f"in {data!r:.120}")
    one = strings[0].decode("ascii", "replace").split(",")
    two = strings[1].decode("ascii", "replace").split(",")
    if len(one) != 12 or len(two) != 11:
        raise StatusError(f"string 1 has {len(one)} fields (expected 12), string 2 has "
                          f"{len(two)} (expected 11)")
    try:
        return PrinterStatus(
            paper_out=_flag(one[1]), paused=_flag(one[2]), head_open=_flag(two[2]),
            ribbon_out=_flag(two[3]), formats_waiting=int(one[4]), buffer_full=_flag(one[5]))
    except ValueError as exc:
        raise StatusError(f"a status field is not a number or flag: {exc}") from None


def _flag(text: str) -> bool:
    if text not in ("0", "1"):
        raise ValueError(f"flag {text!r} is not 0 or 1")
    return text == "1"


def split_formats(data: bytes) -> tuple[list[bytes], bytes]:
    """Complete label formats (``^XA … ^XZ``) in ``data``, and what is left after the last."""
    formats = [m.group(0) for m in _FORMAT.finditer(data)]
    end = data.rfind(b"^XZ")
    return formats, (data[end + 3:] if formats else data)


def is_label_format(zpl: str) -> bool:
    """One complete format: starts ``^XA``, ends ``^XZ``, none inside."""
    text = zpl.strip()
    return (text.startswith("^XA") and text.endswith("^XZ") and text.count("^XA") == 1
            and text.count("^XZ") == 1)


# -- fields of a format --------------------------------------------------------------------

_ESCAPED = {"^": "\\5E", "~": "\\7E", "\\": "\\5C"}
_FIELD = re.compile(
    r"\^FO(?P<x>\d+),(?P<y>\d+)"
    r"(?:\^A0N,(?P<h>\d+),\d+|\^BY(?P<module>\d+)\^BCN,(?P<bar>\d+),[YN],[YN],[YN])"
    r"\^FH\\\^FD(?P<data>[^^]*)\^FS")


def field_data(text: str) -> str:
    """``text`` as a ``^FH\\^FD`` field holds it: ``^``, ``~``, ``\\`` and control characters
    as hex escapes, so that no character of the data can end the field or start a command."""
    return "".join(_ESCAPED.get(c) or (f"\\{ord(c):02X}" if ord(c) < 0x20 or ord(c) == 0x7F
                                       else c) for c in text)


def text_field(x: int, y: int, height: int, text: str) -> str:
    """A line of text in the printer's scalable font ``0``."""
    return f"^FO{x},{y}^A0N,{height},{height}^FH\\^FD{field_data(text)}^FS"


def code128_field(x: int, y: int, height: int, module: int, data: str) -> str:
    """A Code 128 barcode with no line of text under it (the caller prints one)."""
    return f"^FO{x},{y}^BY{module}^BCN,{height},N,N,N^FH\\^FD{field_data(data)}^FS"


def label_format(layout: Layout) -> str:
    """``layout`` as one ZPL II format: UTF-8 text (``^CI28``), the label's width and length in
    dots. The printer draws the Code 128 barcode itself (``^BC``)."""
    fields = [text_field(e.x, e.y, e.height, e.text) if isinstance(e, TextLine)
              else code128_field(e.x, e.y, e.height, e.module, e.data) for e in layout.elements]
    return "".join(["^XA^CI28", f"^PW{layout.width}^LL{layout.height}^LH0,0", *fields, "^XZ"])


def parse_fields(zpl: str) -> list[tuple[str, int, int, str]]:
    """The fields of a format this module wrote: (``text`` or ``code128``, x, y, data)."""
    found = []
    for match in _FIELD.finditer(zpl):
        data = re.sub(r"\\([0-9A-Fa-f]{2})",
                      lambda m: bytes([int(m.group(1), 16)]).decode("latin-1"),
                      match["data"])
        kind = "text" if match["h"] is not None else "code128"
        found.append((kind, int(match["x"]), int(match["y"]), data))
    return found
