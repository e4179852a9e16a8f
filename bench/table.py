"""The figures a bench measures, each against its baseline and its goal; one table of them,
and ``bench/results.json``.

A figure is a ratio (ours ÷ the baseline run side by side, the same way up as the goal) or a
figure of its own (transitions a second, milliseconds of latency) with the goal beside it.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).parent / "results.json"


@dataclass(frozen=True, slots=True)
class Figure:
    """One row of the table."""

    what: str
    value: float
    unit: str
    """"" for a ratio; otherwise what ``value`` counts ("/s", "ms", "%")."""
    goal: float | None = None
    at_least: bool = True
    """The goal is a floor (True) or a ceiling (False)."""
    ours: str = ""
    """What was measured, in words with its number."""
    baseline: str = ""
    """What it was measured against, with its number."""

    @property
    def met(self) -> bool | None:
        """The goal is met (None: no goal)."""
        if self.goal is None:
            return None
        return self.value >= self.goal if self.at_least else self.value <= self.goal

    def shown(self, value: float) -> str:
        if self.unit == "":
            return f"{value:.2f}"
        if self.unit == "/s":
            return f"{value:,.0f}/s"
        digits = 3 if value < 1 else 1 if value < 100 else 0
        return f"{value:.{digits}f} {self.unit}".rstrip()


def table(figures: Sequence[Figure]) -> str:
    """The figures as one table, the goal and whether it is met beside each."""
    width = max(len(f.what) for f in figures)
    lines = [f"{'what':<{width}}  {'figure':>12}  {'goal':>10}  met   measured (ours / baseline)"]
    for f in figures:
        goal = "" if f.goal is None else ("≥ " if f.at_least else "≤ ") + f.shown(f.goal)
        met = {None: "", True: "yes", False: "NO"}[f.met]
        detail = " / ".join(part for part in (f.ours, f.baseline) if part)
        lines.append(f"{f.what:<{width}}  {f.shown(f.value):>12}  {goal:>10}  {met:<4}  "
                     f"{detail}")
    return "\n".join(lines)


def write_results(figures: Sequence[Figure], *, quick: bool, path: Path = RESULTS) -> None:
    """``bench/results.json``: every figure, the commit, the machine."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(),
               "platform": platform.platform(), "load_average": list(os.getloadavg())}
    path.write_text(json.dumps({
        "at": datetime.now(UTC).isoformat(timespec="seconds"), "commit": commit,
        "quick": quick, "machine": machine,
        "figures": [{**asdict(f), "met": f.met} for f in figures],
    }, indent=2) + "\n")
