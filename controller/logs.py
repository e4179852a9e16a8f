"""structlog set-up: readable lines on a terminal, JSON lines otherwise.

Log lines name orders by their internal id and fills by their job id, never
by prescription number, and never carry a patient's name or birth date.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

import structlog

Format = Literal["auto", "json", "console"]


def configure_logging(level: str = "info", fmt: Format = "auto",
                      stream: TextIO | None = None, *, once: bool = False) -> None:
    """Send structured logs to ``stream`` (stderr by default) at ``level``; with ``once``,
    each warning (the same words about the same robot) is shown the first time only."""
    out = stream or sys.stderr
    as_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if as_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            *([_Once()] if once else []),
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    # pymodbus logs through the standard library, unstructured and in its own words: a
    # request it could not decode, a reply that never came. The driver turns each into one
    # of our errors (logged once, by robot) and the simulator answers them as the ICD says,
    # so its own lines would only repeat them, unstructured.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


class _Once:
    """Drops a warning already shown: same level, words and robot (or device)."""

    def __init__(self) -> None:
        self._seen: set[tuple[object, ...]] = set()

    def __call__(self, _logger: object, _name: str,
                 event: structlog.types.EventDict) -> structlog.types.EventDict:
        if event.get("level") not in ("warning", "error"):
            return event
        key = (event.get("level"), event.get("event"), event.get("robot"),
               event.get("device"))
        if key in self._seen:
            raise structlog.DropEvent
        self._seen.add(key)
        return event


class Trouble:
    """A loop's failure, logged once when it starts or changes and once when it ends.

    A loop that retries each second must not print a traceback a second: the
    first failure is logged with its traceback, a different one again, the
    same one never twice; ``recovered`` says when it works again. ``now`` is
    the failure standing, for a status page.
    """

    def __init__(self, what: str, logger: structlog.types.FilteringBoundLogger) -> None:
        self.what = what
        self.now: str | None = None
        self._log = logger

    def failed(self, exc: BaseException) -> None:
        """The loop failed with ``exc`` this time."""
        text = f"{type(exc).__name__}: {exc}"
        if text != self.now:
            self._log.error(f"{self.what} failing", error=text, exc_info=exc)
            self.now = text

    def recovered(self) -> None:
        """The loop worked this time."""
        if self.now is not None:
            self._log.info(f"{self.what} recovered", after=self.now)
            self.now = None
