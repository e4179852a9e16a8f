"""Every bench, one table: ``python -m bench`` (``make bench``), or ``--quick`` for a short
form (``make bench-quick``, under a minute). Each figure is measured against its baseline side
by side, in alternating rounds, medians; the table prints each with its goal, and
``bench/results.json`` keeps them with the commit and the machine."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import time

from bench.table import Figure, table, write_results

SECTIONS = ("store_transitions", "filler_roundtrip", "fleet", "idle_cost", "alarm_latency",
            "wire_limits", "driver_roundtrip", "mqtt_outbox", "api_intake")
"""The benches, each a module of this package with ``figures(quick)``."""


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    parser.add_argument("--only", action="append", choices=SECTIONS, metavar="BENCH",
                        help=f"run only this bench (repeatable): {', '.join(SECTIONS)}")
    args = parser.parse_args()
    figures: list[Figure] = []
    for name in args.only or SECTIONS:
        began = time.perf_counter()
        module = importlib.import_module(f"bench.{name}")
        made = asyncio.run(module.figures(quick=args.quick))
        figures += made
        print(f"bench.{name}: {len(made)} figure(s) in {time.perf_counter() - began:.0f} s",
              file=sys.stderr)
    print(table(figures))
    write_results(figures, quick=args.quick)
    print(f"written: bench/results.json ({len(figures)} figures)")


if __name__ == "__main__":
    main()
