"""Small charts drawn on the server as SVG (no chart library, no script): bars for stock
and throughput, and the weight check's window. Grey, but where something is wrong."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: its label, its value and its length as a share of the chart (0..1)."""

    label: str
    value: int
    share: float


def bars(values: list[tuple[str, int]], *, top: int | None = None) -> list[Bar]:
    """Bars scaled to the largest value (or ``top``)."""
    most = max([top or 0, *(v for _, v in values), 1])
    return [Bar(label, value, value / most) for label, value in values]


@dataclass(frozen=True, slots=True)
class StockBar:
    """A bin's stock against its par and capacity, as shares of the capacity."""

    on_hand: float
    par: float
    low: bool
    """At or below par: the bar takes its alarm's colour."""


def stock_bar(on_hand: int, par: int, capacity: int) -> StockBar:
    """The bar of a bin holding ``on_hand`` with ``par`` and ``capacity``."""
    whole = max(capacity, on_hand, 1)
    return StockBar(max(on_hand, 0) / whole, par / whole, on_hand <= par)


@dataclass(frozen=True, slots=True)
class WeightWindow:
    """The weight check drawn: the measured mass against the expected one ± its tolerance,
    as shares of the chart's width (the chart spans the window and a margin each side)."""

    low: float
    high: float
    expected: float
    measured: float
    inside: bool


def weight_window(measured: float, expected: float, tolerance: float) -> WeightWindow:
    """Where ``measured`` falls against ``expected`` ± ``tolerance``."""
    half = max(tolerance * 2, abs(measured - expected) * 1.2, 1.0)
    lo = expected - half

    def share(x: float) -> float:
        return min(max((x - lo) / (2 * half), 0.0), 1.0)
    return WeightWindow(share(expected - tolerance), share(expected + tolerance),
                        share(expected), share(measured), abs(measured - expected) <= tolerance)


@dataclass(frozen=True, slots=True)
class RunErrors:
    """A guided calibration's runs as a line chart: each run's count error (in percent of the
    tablets weighed), on a 0..1 scale both ways, with zero and the ±1 % band marked."""

    points: list[tuple[float, float, float]]
    """x, y (0 at the top) and the error, per run."""
    zero: float
    band: tuple[float, float]
    most: float
    """The largest error drawn, in percent (the chart's top and bottom)."""


def run_errors(runs: list[dict[str, object]], band_pct: float = 1.0) -> RunErrors:
    errors = [100.0 * int(str(r["error"])) / max(1, int(str(r["weighed"]))) for r in runs]
    most = max([band_pct * 2, *(abs(e) for e in errors)])

    def y(pct: float) -> float:
        return 0.5 - pct / most / 2

    step = 1.0 / max(1, len(errors) - 1)
    return RunErrors([(i * step, y(e), e) for i, e in enumerate(errors)], y(0.0),
                     (y(band_pct), y(-band_pct)), most)
