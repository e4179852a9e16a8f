"""The prescriber's NPI and DEA number, and refills of scheduled drugs."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.domain.prescriptions import (
    dea_check_digit,
    dea_problem,
    luhn_digit,
    npi_problem,
    refill_problem,
)


def test_a_known_good_npi_and_its_typos() -> None:
    assert npi_problem("1234567893") is None  # CMS's worked example
    assert "check digit is 4, expected 3" in (npi_problem("1234567894") or "")
    assert "not 10 digits" in (npi_problem("123456789") or "")
    assert "not 10 digits" in (npi_problem("12345678a3") or "")


@given(st.from_regex(r"[0-9]{9}", fullmatch=True), st.integers(0, 9), st.integers(0, 8))
def test_every_single_digit_typo_in_an_npi_is_caught(body: str, wrong: int, at: int) -> None:
    npi = body + str(luhn_digit("80840" + body))
    assert npi_problem(npi) is None
    typo = npi[:at] + str(wrong) + npi[at + 1:]
    assert (npi_problem(typo) is None) == (typo == npi)


def test_dea_numbers() -> None:
    assert dea_problem("AB1234563", "Brown") is None  # 1+3+5 + 2×(2+4+6) = 33 → 3
    assert "check digit is 4, expected 3" in (dea_problem("AB1234564") or "")
    assert "not the initial of the prescriber's surname (S)" in (
        dea_problem("AB1234563", "Smith") or "")
    assert dea_problem("A91234563", "Smith") is None  # a business
    assert "not a registrant type" in (dea_problem("IB1234563") or "")
    assert "two letters and seven digits" in (dea_problem("AB123456") or "")


@given(st.sampled_from("ABFGMPR"), st.from_regex(r"[A-Z]", fullmatch=True),
       st.from_regex(r"[0-9]{6}", fullmatch=True))
def test_a_dea_number_we_build_is_valid_and_one_digit_off_is_not(kind: str, initial: str,
                                                                  six: str) -> None:
    good = f"{kind}{initial}{six}{dea_check_digit(six)}"
    assert dea_problem(good, initial + "ane") is None
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    assert dea_problem(bad) is not None


@pytest.mark.parametrize(("schedule", "refills", "until", "ok"), [
    (None, 11, None, True),
    ("II", 0, None, True),
    ("II", 1, None, False),
    ("III", 5, date(2027, 5, 1), True),
    ("IV", 6, None, False),
    ("IV", 2, date(2027, 6, 30), False),  # more than 6 months after it was written
    ("V", 11, None, True),
])
def test_refills_of_scheduled_drugs(schedule: str | None, refills: int, until: date | None,
                                    ok: bool) -> None:
    problem = refill_problem(schedule, refills, date(2026, 11, 23), until)
    assert (problem is None) == ok, problem


def test_digits_are_ascii_digits() -> None:
    from controller.domain.ndc import NdcError, parse_ndc

    assert "not 10 digits" in (npi_problem("\u0ed0234567893") or "")  # a Lao zero
    with pytest.raises(NdcError):
        parse_ndc("\u0ed0\u0ed0093-7146-01")


def test_the_surname_whose_initial_a_dea_number_carries() -> None:
    from controller.domain.prescriptions import surname
    for name in ("Grace Baker, MD", "Dr. Grace Baker", "Baker, Grace", "Grace Baker, M.D.",
                 "Baker, Grace, MD", "grace baker"):
        assert (surname(name) or "").lower() == "baker", name
    assert surname("MD") is None
