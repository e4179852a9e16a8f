"""A label's layout drawn as previews: PNG and PDF.

The printer's driver draws the same layout (``domain/labels.layout``) in its own language;
both are in the printer's dots (203 dpi): what the preview shows is where the printer puts
it. The printer encodes the Code 128 barcode itself; the previews draw the same symbol from
python-barcode's modules.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

import font_lato  # type: ignore[import-untyped]  # a font, no types
from barcode.codex import Code128
from PIL import Image, ImageDraw, ImageFont
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from controller.domain.labels import DPI, HEIGHT_DOTS, WIDTH_DOTS, Barcode, Element, Text

LABEL_FONT = Path(font_lato.__file__).with_name("files") / "Lato-Regular.ttf"
"""Lato (SIL OFL), installed with rxfill: every letter a US pharmacy prints (é, ñ, ü, ł…),
where Pillow's bitmap font and the PDF's Helvetica draw boxes or nothing."""
PDF_FONT = "Lato"


def code128_modules(data: str) -> str:
    """The symbol's modules, ``1`` a bar and ``0`` a space: start, data, check, stop."""
    return str(Code128(data).build()[0])


def bars(e: Barcode) -> Iterator[int]:
    """The left edge, in dots, of each bar module of ``e``'s symbol (each ``e.module`` wide)."""
    for number, module in enumerate(code128_modules(e.data)):
        if module == "1":
            yield e.x + number * e.module


@cache
def _font(height: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(LABEL_FONT), size=height)


@cache
def _pdf_font() -> str:
    pdfmetrics.registerFont(TTFont(PDF_FONT, str(LABEL_FONT)))
    return PDF_FONT


def render_png(elements: Iterable[Element], *, scale: int = 1) -> bytes:
    """A black-on-white PNG preview, one pixel a dot (times ``scale``)."""
    image = Image.new("1", (WIDTH_DOTS * scale, HEIGHT_DOTS * scale), 1)
    draw = ImageDraw.Draw(image)
    for e in elements:
        if isinstance(e, Text):
            draw.text((e.x * scale, e.y * scale), e.text, fill=0, font=_font(e.height * scale))
            continue
        width = e.module * scale
        for x in bars(e):
            draw.rectangle((x * scale, e.y * scale, x * scale + width - 1,
                            (e.y + e.height) * scale - 1), fill=0)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def render_pdf(elements: Iterable[Element]) -> bytes:
    """A one-page PDF preview, 3 × 2 inches."""
    point = 72 / DPI
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=(WIDTH_DOTS * point, HEIGHT_DOTS * point))
    canvas.setTitle("rxfill label")
    page_height = HEIGHT_DOTS * point
    for e in elements:
        if isinstance(e, Text):
            size = e.height * point
            # Shrink a line the PDF's font draws wider than the printer's room.
            room = (WIDTH_DOTS - e.x - 8) * point
            width = stringWidth(e.text, _pdf_font(), size)
            canvas.setFont(_pdf_font(), size * min(1.0, room / width) if width else size)
            canvas.drawString(e.x * point, page_height - (e.y + e.height * 0.85) * point, e.text)
            continue
        _pdf_barcode(canvas, e, point, page_height)
    canvas.showPage()
    canvas.save()
    return out.getvalue()


def _pdf_barcode(canvas: Canvas, e: Barcode, point: float, page_height: float) -> None:
    for x in bars(e):
        canvas.rect(x * point, page_height - (e.y + e.height) * point, e.module * point,
                    e.height * point, stroke=0, fill=1)
