"""A vial's label: what it says (after USP <17> and the usual state rules) and where each
line goes on a 3 × 2 inch thermal label. Pure: the printer's driver draws the layout in its
language, and ``controller/pharmacy/previews.py`` draws the same layout as PNG and PDF.

USP <17> puts what the patient needs most first and largest: the directions.
The drug name is printed tall-man where ISMP lists it. The discard-by date is
the earlier of a year from the fill and the stock lot's own expiry.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from controller.domain.drugs import AUXILIARY_LABELS, Drug

DPI = 203
"""A thermal label printer's usual resolution, in dots per inch."""
WIDTH_DOTS = 3 * DPI
HEIGHT_DOTS = 2 * DPI
BEYOND_USE_DAYS = 365
"""A dispensed vial is good for at most a year, or until its lot expires if sooner."""
CHAR_WIDTH = 0.5
"""A character's mean width in the label's font, as a fraction of its height."""
MARGIN = 14
BARCODE_X = 24
"""The barcode leaves a quiet zone of ten modules (2 dots each) to its left."""


class LabelError(ValueError):
    """A label that cannot be printed as asked (no pharmacist on duty, no lot...)."""


@dataclass(frozen=True, slots=True)
class LabelContent:
    """Everything a vial's label says."""

    pharmacy_name: str
    pharmacy_address: str
    pharmacy_phone: str
    rx_number: str
    filled_on: date
    patient_name: str
    sig: str
    drug_name: str
    """Tall-man where ISMP lists it."""
    strength: str
    dosage_form: str
    ndc: str
    quantity: int
    prescriber: str
    refills: int
    discard_by: date
    lots: tuple[str, ...]
    description: str
    auxiliary: tuple[str, ...]
    """The warnings' texts, in the formulary's order."""
    pharmacist: str
    code: str
    """The fill's id, as the Code 128 barcode holds it (``F00000123``)."""
    copy: int = 1
    """1 for the label; a reprint says which copy it is."""


def discard_by(filled_on: date, lot_expiries: list[date]) -> date:
    """The earlier of a year after the fill and the earliest lot's expiry."""
    if not lot_expiries:
        raise LabelError("the vial's lot is not known: its discard-by date cannot be set")
    return min(filled_on + timedelta(days=BEYOND_USE_DAYS), *lot_expiries)


def label_content(*, pharmacy: tuple[str, str, str], rx_number: str, filled_on: date,
                  patient_name: str, sig: str, drug: Drug, quantity: int, prescriber: str,
                  refills: int, lots: list[tuple[str, date]], pharmacist: str | None,
                  code: str, copy: int = 1) -> LabelContent:
    """The label of one filled vial; LabelError when something it must say is missing."""
    if not (pharmacist or "").strip():
        raise LabelError("no pharmacist is on duty: a label names the responsible pharmacist "
                         "(a pharmacist signs on duty, or the site names one)")
    if not sig.strip():
        raise LabelError("the prescription has no directions to print")
    names = sorted({lot for lot, _ in lots})
    return LabelContent(
        pharmacy_name=pharmacy[0], pharmacy_address=pharmacy[1], pharmacy_phone=pharmacy[2],
        rx_number=rx_number, filled_on=filled_on, patient_name=patient_name, sig=sig.strip(),
        drug_name=drug.tall_man_name or drug.generic_name, strength=drug.strength,
        dosage_form=drug.dosage_form, ndc=drug.ndc, quantity=quantity, prescriber=prescriber,
        refills=refills, discard_by=discard_by(filled_on, [expiry for _, expiry in lots]),
        lots=tuple(names), description=drug.description,
        auxiliary=tuple(AUXILIARY_LABELS[c] for c in drug.auxiliary_labels),
        pharmacist=str(pharmacist).strip(), code=code, copy=copy)


@dataclass(frozen=True, slots=True)
class Text:
    """One line of text: top-left corner and height in dots."""

    x: int
    y: int
    height: int
    text: str
    field: str
    """Which part of the content it shows (``sig``, ``drug``…), for tests and parsers."""


@dataclass(frozen=True, slots=True)
class Barcode:
    """A Code 128 barcode: top-left corner, bar height and narrowest bar, in dots."""

    x: int
    y: int
    height: int
    module: int
    data: str


Element = Text | Barcode


@dataclass(frozen=True, slots=True)
class LabelLayout:
    """A label laid out: its size and its elements, in dots (what a printer is handed)."""

    elements: tuple[Element, ...]
    width: int = WIDTH_DOTS
    height: int = HEIGHT_DOTS

    def __iter__(self) -> Iterator[Element]:
        return iter(self.elements)


def _wrap(text: str, height: int, width: int) -> list[str]:
    return textwrap.wrap(text, max(8, int(width / (height * CHAR_WIDTH)))) or [""]


def layout(label: LabelContent) -> LabelLayout:
    """Where every line of ``label`` goes, in dots from the top-left corner (203 dpi)."""
    width = WIDTH_DOTS - 2 * MARGIN
    out: list[Element] = []
    y = 8

    def line(text: str, height: int, field: str, *, x: int = MARGIN,
             room: int = width, limit: int = 1) -> None:
        nonlocal y
        lines = _wrap(text, height, room)
        if len(lines) > limit:
            lines = [*lines[:limit - 1], textwrap.shorten(" ".join(lines[limit - 1:]),
                                                          len(lines[limit - 1]), placeholder="…")]
        for part in lines:
            out.append(Text(x, y, height, part, field))
            y += height + 3

    line(label.pharmacy_name, 18, "pharmacy")
    line(f"{label.pharmacy_address}  {label.pharmacy_phone}", 14, "pharmacy_address")
    reprint = f"  REPRINT {label.copy}" if label.copy > 1 else ""
    line(f"Rx {label.rx_number}   Filled {label.filled_on:%Y-%m-%d}{reprint}", 18, "rx")
    line(label.patient_name, 24, "patient")
    y += 2
    line(label.sig, 28, "sig", limit=3)
    y += 2
    line(f"{label.drug_name} {label.strength} {label.dosage_form}", 24, "drug")
    line(f"NDC {label.ndc}   Qty {label.quantity}   Lot {', '.join(label.lots)}", 16,
         "dispensed")
    line(label.description, 14, "description")
    line(f"Prescriber {label.prescriber}   Refills {label.refills}   "
         f"Discard after {label.discard_by:%Y-%m-%d}", 14, "prescriber")
    line(f"Pharmacist {label.pharmacist}", 14, "pharmacist")
    barcode_y = min(y + 6, HEIGHT_DOTS - 66)
    out.append(Barcode(BARCODE_X, barcode_y, 44, 2, label.code))
    out.append(Text(BARCODE_X, barcode_y + 48, 14, label.code, "code"))
    # The warnings beside the barcode, as many lines as the label has room for; those that
    # do not fit are named as such on the last line (they go on separate stickers).
    y = barcode_y
    aux_x, aux_height = 244, 12
    room = (HEIGHT_DOTS - 4 - y) // (aux_height + 3)
    wrapped = [_wrap(w, aux_height, WIDTH_DOTS - MARGIN - aux_x) for w in label.auxiliary]
    shown = 0
    while shown < len(wrapped) and sum(map(len, wrapped[:shown + 1])) <= room - (
            shown + 1 < len(wrapped)):
        shown += 1
    for warning in label.auxiliary[:shown]:
        line(warning, aux_height, "auxiliary", x=aux_x, room=WIDTH_DOTS - MARGIN - aux_x,
             limit=3)
    if shown < len(wrapped):
        line(f"+{len(wrapped) - shown} more warning(s) on separate stickers", aux_height,
             "auxiliary_more", x=aux_x, room=WIDTH_DOTS - MARGIN - aux_x)
    return LabelLayout(tuple(out))
