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
