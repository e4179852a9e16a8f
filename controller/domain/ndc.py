"""National Drug Codes in the 11-digit 5-4-2 form, with dashes."""

from __future__ import annotations

import re

_DASHED = re.compile(r"[0-9]{5}-[0-9]{4}-[0-9]{2}")
_DIGITS = re.compile(r"[0-9]{11}")


class NdcError(ValueError):
    """Text that is not an 11-digit NDC."""


def parse_ndc(text: str) -> str:
    """The NDC in ``text`` as ``NNNNN-NNNN-NN``: 11 digits, dashed 5-4-2 or bare."""
    value = text.strip()
    if _DASHED.fullmatch(value):
        return value
    if _DIGITS.fullmatch(value):
        return f"{value[:5]}-{value[5:9]}-{value[9:]}"
    raise NdcError(
        f"NDC {text!r} is not 11 digits in the 5-4-2 form (for example 00093-7146-01)"
    )


_TEN_DASHED = re.compile(r"([0-9]{4,5})-([0-9]{3,4})-([0-9]{1,2})")


def parse_any_ndc(text: str) -> str:
    """Like :func:`parse_ndc`, and also a dashed 10-digit NDC (4-4-2, 5-3-2 or 5-4-1), whose
    dashes say where the missing zero goes. Bare 10 digits are ambiguous: refused."""
    value = text.strip()
    match = _TEN_DASHED.fullmatch(value)
    if match and len(value) == 12:
        labeler, product, package = match.groups()
        return f"{labeler:0>5}-{product:0>4}-{package:0>2}"
    try:
        return parse_ndc(value)
    except NdcError:
        raise NdcError(f"NDC {text!r} is neither 11 digits (5-4-2) nor a dashed 10-digit NDC "
                       f"(4-4-2, 5-3-2, 5-4-1); bare 10 digits are ambiguous") from None


def ndc11(ndc: str) -> str:
    """The 11 digits of a 5-4-2 NDC without dashes (``68180051301``), as HL7's NDC code
    system takes it (its other form is the package's own 10-digit dashed one, which the
    11-digit form cannot always give back)."""
    digits = parse_ndc(ndc).replace("-", "")
    return digits
