"""What a label printer is handed: a label's layout, in the printer's dots.

The controller lays a label out (``controller/domain/labels.py``); the printer's driver turns
the layout into its own language (ZPL II for ours). These Protocols are the shape of that
layout, so neither side imports the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class TextLine(Protocol):
    """One line of text: top-left corner and height, in dots."""

    @property
    def x(self) -> int: ...
    @property
    def y(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def text(self) -> str: ...


@runtime_checkable
class Code128(Protocol):
    """A Code 128 barcode: top-left corner, bar height and narrowest bar, in dots."""

    @property
    def x(self) -> int: ...
    @property
    def y(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def module(self) -> int: ...
    @property
    def data(self) -> str: ...


class Layout(Protocol):
    """A whole label: its size in dots and what is on it, in order."""

    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def elements(self) -> Sequence[TextLine | Code128]: ...
