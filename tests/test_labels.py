"""Labels: what they say, where it goes, and that the printer's ZPL and the previews agree."""

from __future__ import annotations

import io
from datetime import date

import pytest
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from controller.domain.drugs import Formulary
from controller.domain.labels import (
    HEIGHT_DOTS,
    WIDTH_DOTS,
    Barcode,
    LabelContent,
    LabelError,
    Text,
    discard_by,
    label_content,
    layout,
)
from controller.pharmacy.previews import render_pdf, render_png
from drivers.label_printer.protocol import is_label_format, label_format, parse_fields
from tests.helpers import formulary
from tests.sites import ALPRAZOLAM

PHARMACY = ("Riverside Community Pharmacy", "12 Mill Lane, Springfield, IL 62701",
            "(217) 555-0142")


def content(drugs: Formulary, ndc: str = ALPRAZOLAM, **changes: object) -> LabelContent:
    values: dict[str, object] = dict(
        pharmacy=PHARMACY, rx_number="RX7001001", filled_on=date(2026, 11, 23),
        patient_name="Margaret Holloway",
        sig="Take 1 tablet by mouth three times a day as needed for anxiety.",
        drug=drugs[ndc], quantity=30, prescriber="Anne Baker, MD", refills=2,
        lots=[("AZ25012", date(2027, 12, 31))], pharmacist="Phil Gray", code="F00000123")
    values.update(changes)
    return label_content(**values)  # type: ignore[arg-type]


def test_the_label_says_what_usp_17_asks_tall_man_and_warnings_included() -> None:
    label = content(formulary())
    assert label.drug_name == "ALPRAZolam" and label.strength == "0.5 mg"
    assert label.auxiliary[-1].startswith("Caution: Federal law prohibits the transfer")
    assert label.description == "peach oval, imprint AZ-05" and label.lots == ("AZ25012",)
    texts = {e.field: e.text for e in layout(label) if isinstance(e, Text)}
    assert texts["drug"] == "ALPRAZolam 0.5 mg tablet"
    assert texts["pharmacist"] == "Pharmacist Phil Gray"
    assert "Refills 2" in texts["prescriber"] and "Discard after 2027-11-23" in texts["prescriber"]
    assert "NDC 59762-3720-01" in texts["dispensed"] and "Qty 30" in texts["dispensed"]
    # Directions first and largest: no line of the label is taller than theirs.
    lines = [e for e in layout(label) if isinstance(e, Text)]
    sig = [e for e in lines if e.field == "sig"]
    assert max(e.height for e in lines) == sig[0].height
    assert min(e.y for e in sig) < min(e.y for e in lines if e.field == "drug")


def test_every_element_lies_on_the_3_by_2_inch_label() -> None:
    long = content(formulary(), sig="Take one tablet by mouth every morning " * 8,
                   patient_name="Maximilian Alexander Bartholomew-Fitzgerald Jr.")
    for element in layout(long):
        assert 0 <= element.x < WIDTH_DOTS and element.y >= 0
        bottom = element.y + element.height + (20 if isinstance(element, Barcode) else 0)
        assert bottom <= HEIGHT_DOTS, element
    sig_lines = [e for e in layout(long) if isinstance(e, Text) and e.field == "sig"]
    assert len(sig_lines) == 3 and sig_lines[-1].text.endswith("…")


def test_discard_by_is_a_year_or_the_lots_expiry_whichever_is_sooner() -> None:
    filled = date(2026, 11, 23)
    assert discard_by(filled, [date(2030, 1, 1)]) == date(2027, 11, 23)
    assert discard_by(filled, [date(2027, 3, 31), date(2027, 1, 31)]) == date(2027, 1, 31)
    with pytest.raises(LabelError, match="lot is not known"):
        discard_by(filled, [])


def test_no_label_without_a_pharmacist_or_directions() -> None:
    with pytest.raises(LabelError, match="no pharmacist is on duty"):
        content(formulary(), pharmacist=" ")
    with pytest.raises(LabelError, match="no directions"):
        content(formulary(), sig="")


def test_the_barcode_in_the_png_preview_decodes_to_the_fill() -> None:
    elements = layout(content(formulary(), code="F00004711"))
    image = Image.open(io.BytesIO(render_png(elements)))
    assert image.size == (WIDTH_DOTS, HEIGHT_DOTS)
    found = zxingcpp.read_barcodes(image)
    assert [(b.text, b.format) for b in found] == [("F00004711",
                                                     zxingcpp.BarcodeFormat.Code128)]


def test_the_pdf_preview_is_one_3_by_2_inch_page() -> None:
    pdf = render_pdf(layout(content(formulary())))
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert b"/MediaBox [ 0 0 216 144 ]" in pdf and pdf.count(b"/Type /Page\n") == 1


def test_the_zpl_parses_back_into_the_same_fields() -> None:
    elements = layout(content(formulary(), copy=3))
    zpl = label_format(elements)
    assert is_label_format(zpl) and "^PW609^LL406" in zpl and "^CI28" in zpl
    expected = [("text", e.x, e.y, e.text) if isinstance(e, Text)
                else ("code128", e.x, e.y, e.data) for e in elements]
    assert parse_fields(zpl) == expected
    assert any("REPRINT 3" in data for _, _, _, data in parse_fields(zpl))


@settings(max_examples=200)
@given(st.text(min_size=1, max_size=40).filter(str.strip))
def test_no_patient_name_can_break_out_of_its_field(name: str) -> None:
    elements = layout(content(formulary(), patient_name=name))
    zpl = label_format(elements)
    assert is_label_format(zpl) and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in zpl)
    assert parse_fields(zpl) == [("text", e.x, e.y, e.text) if isinstance(e, Text)
                                 else ("code128", e.x, e.y, e.data) for e in elements]


def _drawn(text: str) -> bytes:
    return render_png([Text(0, 0, 60, text, "test")])


@pytest.mark.parametrize(("one", "other"), [("é", "è"), ("í", "ì"), ("ñ", "n"), ("ü", "u"),
                                            ("ł", "l"), ("Ç", "C")])
def test_the_png_preview_draws_the_accents_a_us_pharmacy_prints(one: str, other: str) -> None:
    # Pillow's default bitmap font drew every accented letter as the same empty box.
    assert _drawn(one) != _drawn(other)
    assert _drawn(one) != _drawn("\uffff")  # not the font's "no such glyph" box either


def test_a_patients_accented_name_reaches_every_preview() -> None:
    elements = layout(content(formulary(), patient_name="Renée Díaz-Muñoz",
                              sig="Tome 1 tableta por día."))
    png = Image.open(io.BytesIO(render_png(elements)))
    assert png.size == (WIDTH_DOTS, HEIGHT_DOTS)
    pdf = render_pdf(elements)
    assert b"/FontFile2" in pdf  # the TrueType font is embedded: the letters print anywhere
    assert "Renée Díaz-Muñoz" in label_format(elements)
