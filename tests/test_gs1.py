"""Stock bottles' GS1 DataMatrix codes: as scanners send them, and as they go wrong."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from controller.domain.drugs import Formulary
from controller.domain.gs1 import (
    GS,
    ScanError,
    bottle_code,
    check_digit,
    gtin_for,
    ndc_candidates,
    ndc_from_gtin,
    parse_bottle,
)
from tests.floors import ATORVASTATIN
from tests.helpers import formulary

GTIN = "00300937146018"  # atorvastatin 00093-7146-01 (4-4-2: 0093-7146-01)
EXPECTED = ("00300937146018", "0093714601", "AB12345", date(2026, 12, 31), "SER123")


def fields(raw: str) -> tuple[object, ...]:
    scan = parse_bottle(raw)
    return scan.gtin, scan.ndc10, scan.lot, scan.expiry, scan.serial


@pytest.mark.parametrize("raw", [
    f"]d201{GTIN}17261231" f"10AB12345{GS}21SER123",   # symbology identifier, GS after lot
    f"{GS}01{GTIN}17261231" f"10AB12345{GS}21SER123",  # leading FNC1 sent as GS
    f"01{GTIN}17261231" f"10AB12345{GS}21SER123",      # neither
    f"01{GTIN}17261231" f"10AB12345<GS>21SER123",      # a scanner set to spell out GS
    f"01{GTIN}21SER123{GS}17261231" f"10AB12345",      # another order; the last needs no GS
    f"(01){GTIN}(17)261231(10)AB12345(21)SER123",      # the printed form, typed by a person
    f"  ]d201{GTIN}17261231" f"10AB12345{GS}21SER123\r\n",  # a keyboard wedge's Enter
])
def test_a_bottle_code_reads_the_same_however_the_scanner_frames_it(raw: str) -> None:
    assert fields(raw) == EXPECTED


def test_day_00_means_the_end_of_the_month() -> None:
    assert parse_bottle(f"01{GTIN}17270200" f"10L{GS}21S").expiry == date(2027, 2, 28)


@pytest.mark.parametrize(("raw", "says"), [
    ("", "empty"),
    ("hello", "not a GS1 code"),
    (f"01{GTIN[:-1]}9" f"17261231" f"10L{GS}21S", "misread"),              # wrong check digit
    (f"01{GTIN}17261331" f"10L{GS}21S", "not a GS1 code"),               # month 13
    (f"01{GTIN}17261231" f"10{'A' * 21}{GS}21S", "lot 'AAAAAAAAAAAAAAAAAAAAA' is 21 characters"),
    (f"01{GTIN}17261231" f"10L{GS}21{'S' * 21}", "serial"),
    (f"01{GTIN}17261231" f"10AB1234521SER123", "lacks (21) serial (did the scanner drop the GS"),
    (f"01{GTIN}10L{GS}21S", "lacks (17) expiry"),
    (f"(01){GTIN}", "lacks (17) expiry, (10) lot, (21) serial"),
    (f"01{gtin_for(ATORVASTATIN)[:1]}1{gtin_for(ATORVASTATIN)[2:-1]}" f"0" f"17261231",
     "misread"),
    ("0109501101530003" "17261231" "10L\x1d21S", "not a US drug's"),      # a GTIN from Europe
])
def test_a_bad_scan_is_refused_saying_what_is_wrong(raw: str, says: str) -> None:
    with pytest.raises(ScanError) as caught:
        parse_bottle(raw)
    assert says in str(caught.value)


def test_the_ten_digit_ndc_is_matched_against_the_formulary() -> None:
    assert ndc_candidates("0093714601") == ("00093-7146-01", "00937-0146-01", "00937-1460-01")
    drugs = formulary()
    assert ndc_from_gtin(parse_bottle(bottle_code(ATORVASTATIN, "L1", date(2027, 1, 1), "S")),
                         drugs) == ATORVASTATIN
    with pytest.raises(ScanError, match="matches no drug in the formulary"):
        ndc_from_gtin(parse_bottle(f"01{gtin_for('12345-0678-90')}17270101" f"10L{GS}21S"),
                      drugs)


def test_an_ndc_the_formulary_holds_in_two_forms_is_not_guessed() -> None:
    # 0093714601 pads to 00093-7146-01 (4-4-2) and to 00937-0146-01 (5-3-2).
    drugs = formulary()
    twin = Formulary([*drugs, replace(drugs[ATORVASTATIN], ndc="00937-0146-01")])
    scan = parse_bottle(bottle_code(ATORVASTATIN, "L1", date(2027, 1, 1), "S"))
    with pytest.raises(ScanError, match="more than one form"):
        ndc_from_gtin(scan, twin)


@given(labeler=st.from_regex(r"0[0-9]{4}", fullmatch=True),
       product=st.from_regex(r"[0-9]{4}", fullmatch=True),
       package=st.from_regex(r"[0-9]{2}", fullmatch=True),
       lot=st.from_regex(r"[A-Z0-9]{1,20}", fullmatch=True),
       serial=st.from_regex(r"[A-Za-z0-9]{1,20}", fullmatch=True),
       expiry=st.dates(date(2000, 1, 1), date(2075, 12, 31)))  # GS1 YYMMDD window
def test_every_bottle_code_we_print_reads_back(labeler: str, product: str, package: str,
                                               lot: str, serial: str, expiry: date) -> None:
    ndc = f"{labeler}-{product}-{package}"
    scan = parse_bottle(bottle_code(ndc, lot, expiry, serial))
    assert (scan.lot, scan.serial, scan.expiry) == (lot, serial, expiry)
    assert ndc in ndc_candidates(scan.ndc10)
    assert check_digit(scan.gtin[:-1]) == int(scan.gtin[-1])


@given(st.text(max_size=60))
@example(raw="]")  # biip raised IndexError on a lone symbology flag
@example(raw="]d")
def test_any_text_is_either_a_bottle_or_a_scan_error(raw: str) -> None:
    try:
        parse_bottle(raw)
    except ScanError as exc:
        assert str(exc)
