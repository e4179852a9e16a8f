"""A stock bottle's GS1 DataMatrix, as a scanner sends it: GTIN → NDC, lot, expiry, serial.

The scanner's string may start with the symbology identifier (``]d2``) or a
leading FNC1 (sent as GS, 0x1D), or neither; a human may type the printed
form ``(01)…(17)…(10)…(21)…`` when a code will not scan. Between a
variable-length field (lot, serial) and the next field the GS is required:
without it the lot runs into the serial, the serial goes missing, and the
scan is refused as incomplete rather than read wrongly. US drug packages
carry all four elements (DSCSA), so all four are required.

A US drug's GTIN-14 is the packaging indicator, ``03``, the 10-digit NDC and
a check digit. The 10-digit NDC does not say where its dashes go (4-4-2,
5-3-2 or 5-4-1), so :func:`ndc_from_gtin` pads each of the three and takes
the one the formulary holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from biip import ParseError, parse

from controller.domain.drugs import Formulary

MAX_TEXT = 20
"""GS1's limit for a lot (AI 10) or a serial (AI 21)."""
GS = "\x1d"
_SYMBOLOGY = re.compile(r"^\](d2|C1|Q3|e0)")
_HUMAN = re.compile(r"\(([0-9]{2,4})\)")
REQUIRED = {"01": "GTIN", "17": "expiry", "10": "lot", "21": "serial"}


class ScanError(ValueError):
    """A scan that is not a usable GS1 bottle code; says what was wrong and what is expected."""


@dataclass(frozen=True, slots=True)
class BottleScan:
    """What a stock bottle's code says."""

    gtin: str
    ndc10: str
    """The 10 digits of the NDC inside the GTIN, without dashes."""
    lot: str
    expiry: date
    serial: str


def parse_bottle(raw: str) -> BottleScan:
    """Read a scanned GS1 bottle code, or raise ScanError naming the fault."""
    text = _normalise(raw)
    if not text:
        raise ScanError("the scan is empty; expected a GS1 DataMatrix from a stock bottle")
    _refuse_long_text(text)
    try:
        result = parse(text)
    except (ParseError, ValueError, IndexError, KeyError) as exc:
        # biip says ParseError, except on some inputs it never expected (a lone "]" is an
        # IndexError): a scan is never a traceback.
        raise ScanError(f"scan {raw!r} is not a GS1 code ({exc or type(exc).__name__}); "
                        f"expected (01) GTIN, (17) expiry, (10) lot and (21) serial") from None
    message = result.gs1_message
    if message is None:
        raise ScanError(f"scan {raw!r} is not a GS1 code: {_plain(result.gs1_message_error)}; "
                        f"expected (01) GTIN, (17) expiry, (10) lot and (21) serial")
    fields: dict[str, str] = {}
    dates: dict[str, date] = {}
    for element in message.element_strings:
        ai = element.ai.ai
        if ai in fields:
            raise ScanError(f"scan {raw!r} holds AI ({ai}) twice; a bottle's code holds it once")
        fields[ai] = element.value
        if element.date is not None:
            dates[ai] = element.date
        if ai == "01" and element.gtin_error:
            raise ScanError(f"GTIN {element.value} is misread: {_plain(element.gtin_error)}; "
                            f"scan the bottle again")
    missing = [f"({ai}) {name}" for ai, name in REQUIRED.items() if ai not in fields]
    if missing:
        ran_together = ("10" in fields) != ("21" in fields)
        hint = (" (did the scanner drop the GS separator after the lot or serial? they ran "
                "together)" if ran_together else "")
        raise ScanError(f"scan {raw!r} lacks {', '.join(missing)}{hint}; a stock bottle's "
                        f"code holds GTIN, expiry, lot and serial")
    for ai in ("10", "21"):
        if len(fields[ai]) > MAX_TEXT:
            raise ScanError(f"{REQUIRED[ai]} {fields[ai]!r} is {len(fields[ai])} characters; "
                            f"GS1 allows at most {MAX_TEXT}")
    if "17" not in dates:
        raise ScanError(f"expiry {fields['17']!r} is not a date; expected YYMMDD")
    gtin = fields["01"]
    if gtin[1:3] != "03":
        raise ScanError(f"GTIN {gtin} is not a US drug's (its digits 2-3 are {gtin[1:3]}, "
                        f"expected 03 before the NDC)")
    return BottleScan(gtin=gtin, ndc10=gtin[3:13], lot=fields["10"], expiry=dates["17"],
                      serial=fields["21"])


def ndc_candidates(ndc10: str) -> tuple[str, ...]:
    """The three 11-digit 5-4-2 NDCs a 10-digit NDC can be: from 4-4-2, 5-3-2 and 5-4-1."""
    if not re.fullmatch(r"[0-9]{10}", ndc10):
        raise ScanError(f"NDC {ndc10!r} is not 10 digits")
    four_four_two = "0" + ndc10
    five_three_two = ndc10[:5] + "0" + ndc10[5:]
    five_four_one = ndc10[:9] + "0" + ndc10[9:]
    return tuple(f"{d[:5]}-{d[5:9]}-{d[9:]}"
                 for d in (four_four_two, five_three_two, five_four_one))


def ndc_from_gtin(scan: BottleScan, formulary: Formulary) -> str:
    """The formulary's 11-digit NDC that the scanned GTIN holds, or ScanError."""
    known = sorted({ndc for ndc in ndc_candidates(scan.ndc10) if ndc in formulary})
    if not known:
        raise ScanError(f"GTIN {scan.gtin} holds NDC {scan.ndc10}, which matches no drug in "
                        f"the formulary (tried {', '.join(ndc_candidates(scan.ndc10))})")
    if len(known) > 1:
        raise ScanError(f"GTIN {scan.gtin} holds NDC {scan.ndc10}, which the formulary holds "
                        f"in more than one form ({', '.join(known)}); restock by hand")
    return known[0]


def gtin_for(ndc: str, indicator: int = 0) -> str:
    """The GTIN-14 of an 11-digit NDC as its labeler prints it (for simulators and tests).

    The 10-digit form drops the padding zero: from the labeler part when it
    starts with 0, else from the product part, else from the package part.
    """
    labeler, product, package = ndc.split("-")
    if labeler.startswith("0"):
        ten = labeler[1:] + product + package
    elif product.startswith("0"):
        ten = labeler + product[1:] + package
    elif package.startswith("0"):
        ten = labeler + product + package[1:]
    else:
        raise ValueError(f"NDC {ndc} has no padding zero; it has no 10-digit form")
    body = f"{indicator}03{ten}"
    return body + str(check_digit(body))


def check_digit(body: str) -> int:
    """The GS1 mod-10 check digit of ``body`` (weights 3, 1, … from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def bottle_code(ndc: str, lot: str, expiry: date, serial: str) -> str:
    """A bottle's DataMatrix content as a scanner sends it (``]d2``, GS after lot)."""
    return f"]d201{gtin_for(ndc)}17{expiry:%y%m%d}10{lot}{GS}21{serial}"


def _normalise(raw: str) -> str:
    text = raw.strip().replace("<GS>", GS)
    text = _SYMBOLOGY.sub("", text).lstrip(GS)
    if text.startswith("("):
        # The printed form: each "(AI)" starts a field; a GS ends the one before.
        parts = _HUMAN.split(text)
        if parts[0]:
            return text  # not the printed form after all; let the parser say why
        fields = [f"{ai}{value}" for ai, value in zip(parts[1::2], parts[2::2], strict=True)]
        return GS.join(fields)
    return text


_FIXED = {"01": 14, "02": 14, "11": 6, "13": 6, "15": 6, "16": 6, "17": 6, "20": 2}
"""Fixed-length AIs a bottle code may hold, and the length of their values."""


def _refuse_long_text(text: str) -> None:
    """Refuse a lot or serial over 20 characters by name (a parser only sees it misalign)."""
    for segment in text.split(GS):
        while segment[:2] in _FIXED:
            segment = segment[2 + _FIXED[segment[:2]]:]
        ai, value = segment[:2], segment[2:]
        if ai in ("10", "21") and len(value) > MAX_TEXT:
            raise ScanError(f"{REQUIRED[ai]} {value!r} is {len(value)} characters; GS1 allows "
                            f"at most {MAX_TEXT} (or a GS separator is missing after it)")


def _plain(error: str | None) -> str:
    return (error or "unreadable").rstrip(".")
