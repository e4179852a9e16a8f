"""A prescription's checkable parts: the prescriber's NPI and DEA number, refills of scheduled
drugs. Pure; each check returns what is wrong in words, or nothing.

NPI: 10 digits whose last is a Luhn check digit computed over ``80840`` and
the first nine (CMS's rule). DEA number: two letters and seven digits; the
last digit is the last digit of (d1 + d3 + d5) + 2 × (d2 + d4 + d6); the first
letter is the registrant type, the second the prescriber's surname initial
(or 9 for a business).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from controller.domain.drugs import Formulary
from controller.domain.orders import Fulfilment, Order, fill_problems
from controller.domain.text import text_problem

NPI_PREFIX = "80840"
DEA_REGISTRANTS = frozenset("ABCDEFGHJKLMPRSTUX")
"""DEA registrant types (first letter) that may appear on a prescription's DEA number."""
MAX_REFILLS_III_IV = 5
MAX_REFILLS = 99
"""What the intake takes for any drug (the prescriber's word, up to this)."""
REFILL_WINDOW_DAYS = 183
"""Schedule III-IV refills: at most 5, within 6 months of the date written."""


def luhn_digit(digits: str) -> int:
    """The Luhn check digit for ``digits``."""
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return (10 - total % 10) % 10


def npi_problem(npi: str) -> str | None:
    """Why ``npi`` is not a valid National Provider Identifier, or None."""
    if not re.fullmatch(r"[0-9]{10}", npi):
        return f"NPI {npi!r} is not 10 digits"
    expected = luhn_digit(NPI_PREFIX + npi[:9])
    if int(npi[9]) != expected:
        return f"NPI {npi}: its check digit is {npi[9]}, expected {expected} (mistyped?)"
    return None


def dea_check_digit(six: str) -> int:
    """The DEA number's check digit for its first six digits."""
    d = [int(c) for c in six]
    return (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10


def dea_problem(dea: str, prescriber_surname: str | None = None) -> str | None:
    """Why ``dea`` is not a valid DEA registration number (for this prescriber), or None."""
    value = dea.strip().upper()
    if not re.fullmatch(r"[A-Z][A-Z9][0-9]{7}", value):
        return f"DEA number {dea!r} is not two letters and seven digits"
    if value[0] not in DEA_REGISTRANTS:
        return f"DEA number {value}: {value[0]!r} is not a registrant type"
    expected = dea_check_digit(value[2:8])
    if int(value[8]) != expected:
        return f"DEA number {value}: its check digit is {value[8]}, expected {expected}"
    initial = (prescriber_surname or "").strip()[:1].upper()
    if initial and value[1] != "9" and value[1] != initial:
        return (f"DEA number {value}: its second letter {value[1]} is not the initial of "
                f"the prescriber's surname ({initial})")
    return None


def refill_problem(schedule: str | None, refills: int, written: date | None = None,
                   valid_until: date | None = None) -> str | None:
    """Why ``refills`` are not allowed for a drug of ``schedule``, or None.

    Schedule II: none. III and IV: at most 5, within 6 months of the date
    written (``valid_until`` if the prescription gives one). V and
    unscheduled: the prescriber's word.
    """
    if refills < 0:
        return f"refills {refills}: expected 0 or more"
    if schedule == "II" and refills:
        return f"refills {refills}: a schedule II drug may not be refilled (expected 0)"
    if schedule in ("III", "IV"):
        if refills > MAX_REFILLS_III_IV:
            return (f"refills {refills}: a schedule {schedule} drug may be refilled at most "
                    f"{MAX_REFILLS_III_IV} times")
        if written is not None and valid_until is not None and (
                valid_until - written).days > REFILL_WINDOW_DAYS:
            return (f"refills until {valid_until}: a schedule {schedule} drug's refills end "
                    f"6 months after it was written ({written})")
    return None


SUFFIXES = frozenset({"MD", "DO", "DDS", "DMD", "DPM", "OD", "DVM", "NP", "FNP", "APRN", "PA",
                      "PA-C", "CNM", "PHD", "JR", "SR", "II", "III", "IV", "DR"})
"""Degrees, titles and generations that follow (or precede) a prescriber's name."""


def surname(name: str) -> str | None:
    """The family name in ``Grace Baker, MD``, ``Dr. Grace Baker`` or ``Baker, Grace``."""
    def words(text: str) -> list[str]:
        return [w for w in text.replace(".", " ").split()
                if w.upper().strip(",") not in SUFFIXES]
    head, comma, tail = name.partition(",")
    if comma and words(tail) and len(words(head)) == 1:
        return words(head)[0]  # "Baker, Grace"
    found = words(head)
    return found[-1] if found else None


PRESCRIPTION_LIFE_DAYS = 365
"""An unscheduled (or C-V) prescription is filled within a year of the date written."""
MAX_DAYS_SUPPLY = 365


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an order, and where: ``field`` is the path of its key."""

    field: tuple[str, ...]
    message: str


def prescription_problems(order: Order, formulary: Formulary, today: date) -> list[Problem]:
    """Every reason ``order`` cannot be filled as written, each with the field it is about.

    Empty when it can. Form (digits, lengths, ranges) is the intake's business;
    this checks what needs the formulary, the calendar or several fields at once.
    """
    problems = [Problem((name,), message) for name, message in fill_problems(order, formulary)]
    texts = [(("rx_number",), order.rx_number), (("sig",), order.sig),
             (("patient", "id"), order.patient.id), (("patient", "name"), order.patient.name),
             (("patient", "address"), order.patient.address or "")]
    if order.prescriber is not None:
        texts.append((("prescriber", "name"), order.prescriber.name))
    problems += [Problem(where, why) for where, text in texts if (why := text_problem(text))]
    drug = formulary.get(order.ndc)
    if not order.sig.strip():
        problems.append(Problem(("sig",), "the directions are empty; the label prints them "
                                          "first"))
    if order.days_supply is not None and not 1 <= order.days_supply <= MAX_DAYS_SUPPLY:
        problems.append(Problem(("days_supply",), f"days' supply {order.days_supply}: expected "
                                                  f"1 to {MAX_DAYS_SUPPLY}"))
    if order.patient.birth_date > today:
        problems.append(Problem(("patient", "birth_date"),
                                f"birth date {order.patient.birth_date} is in the future"))
    if order.fulfilment is Fulfilment.SHIP and not (order.patient.address or "").strip():
        problems.append(Problem(("patient", "address"),
                                "a mail order needs the patient's address"))
    schedule = drug.dea_schedule if drug is not None else None
    prescriber = order.prescriber
    if prescriber is None:
        problems.append(Problem(("prescriber",), "the prescriber (name, NPI) is missing"))
    else:
        if why := npi_problem(prescriber.npi):
            problems.append(Problem(("prescriber", "npi"), why))
        if prescriber.dea:
            if why := dea_problem(prescriber.dea, surname(prescriber.name)):
                problems.append(Problem(("prescriber", "dea"), why))
        elif schedule is not None:
            problems.append(Problem(("prescriber", "dea"),
                                    f"a schedule {schedule} drug needs the prescriber's DEA "
                                    f"number"))
    if why := refill_problem(schedule, order.refills):
        problems.append(Problem(("refills",), why))
    if not 0 <= order.fill_number <= order.refills:
        problems.append(Problem(("fill_number",), (
            f"fill {order.fill_number}: the prescription allows the original fill (0) and "
            f"{order.refills} refill(s), so 0 to {order.refills}")))
    if order.written is not None:
        if order.written > today:
            problems.append(Problem(("written",), f"written {order.written}, in the future"))
        else:
            life = REFILL_WINDOW_DAYS if schedule in ("II", "III", "IV") else (
                PRESCRIPTION_LIFE_DAYS)
            if (today - order.written).days > life:
                problems.append(Problem(("written",), f"written {order.written}: more than "
                                                      f"{life} days ago, it has expired"))
    return problems
