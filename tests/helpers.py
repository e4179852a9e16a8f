"""Small helpers shared by tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from controller.config import Settings
from controller.domain.audit import AuditKey
from controller.domain.drugs import Formulary, parse_formulary
from controller.domain.roles import Person, Role
from controller.robots.notices import Notice, OutputWaiting
from controller.robots.output import OutputError
from controller.robots.simulated import Simulator
from controller.robots.supervisor import Supervisor
from controller.store import Store
from drivers.base import CounterEvent, JobEnded, JobReport
from drivers.errors import DriverError
from drivers.events import EventStream

FORMULARY = Path(__file__).resolve().parent.parent / "config" / "formulary.csv"
AUDIT_KEY_TEXT = "tests' audit key, not a secret"
AUDIT_KEY = AuditKey(AUDIT_KEY_TEXT.encode())
"""What the tests' stores anchor their audit trails with (RXFILL_AUDIT_KEY for a CLI)."""


def cli_env(**more: str) -> dict[str, str]:
    """The environment of an rxfill command run by a test: the tests' audit key."""
    return {**os.environ, "RXFILL_AUDIT_KEY": AUDIT_KEY_TEXT, **more}


async def until_end(events: EventStream[CounterEvent], job: str | None = None,
                    seen: list[CounterEvent] | None = None) -> JobReport:
    """Read events until ``job`` (any job when None) ends; keep what passed in ``seen``."""
    async with asyncio.timeout(10):
        async for event in events:
            if seen is not None:
                seen.append(event)
            if isinstance(event, JobEnded) and job in (None, event.report.job):
                return event.report
    raise AssertionError("the event stream ended before the job did")


async def eventually(condition: Callable[[], bool], seconds: float = 10) -> None:
    """Wait (``seconds`` at most) until ``condition()`` holds, for state only seen by looking
    at it."""
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - a simulator's state has no event to await
            await asyncio.sleep(0.02)


async def open_store(url: str, **options: Any) -> Store:
    """A store as the site opens one: the tests' audit key and the sample formulary."""
    options.setdefault("audit_key", AUDIT_KEY)
    options.setdefault("formulary", formulary())
    return await Store.open(url, **options)


class Technician:
    """A technician who takes each robot's output as soon as it waits (for tests that are not
    about the output): subscribe it to a supervisor."""

    def __init__(self, supervisor: Supervisor, name: str = "tess") -> None:
        self.supervisor = supervisor
        self.name = name
        self.tasks: set[asyncio.Task[object]] = set()
        self.took: list[OutputWaiting] = []
        supervisor.subscribe(self._on)
        stop = supervisor.stop

        async def finish_then_stop() -> None:
            # What the technician is doing ends before the supervisor (and then the store)
            # stops, as a person's request would.
            await asyncio.gather(*self.tasks, return_exceptions=True)
            await stop()
        supervisor.stop = finish_then_stop  # type: ignore[method-assign]

    def _on(self, notice: Notice) -> None:
        if isinstance(notice, OutputWaiting):
            task = asyncio.get_running_loop().create_task(self._take(notice))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _take(self, notice: OutputWaiting) -> None:
        with contextlib.suppress(OutputError, DriverError, OSError):
            await self.supervisor.take_output(notice.robot, self.name, fill_id=notice.fill_id)
            self.took.append(notice)


def supervisor_of(settings: Settings, store: Store, sims: Mapping[str, Simulator], *,
                  technician: bool = True) -> Supervisor:
    """A supervisor of simulated robots; with ``technician``, someone takes each output at
    once (for tests that are not about the output)."""
    sup = Supervisor(settings, store, urls={r: s.url for r, s in sims.items()}, seed=1)
    if technician:
        Technician(sup)
    return sup


def tech(name: str = "tess") -> Person:
    """A technician."""
    return Person(name, frozenset({Role.TECHNICIAN}))


def pharm(name: str = "phil") -> Person:
    """A pharmacist."""
    return Person(name, frozenset({Role.PHARMACIST}))


def maint(name: str = "max") -> Person:
    """Someone of the maintenance staff."""
    return Person(name, frozenset({Role.MAINTENANCE}))


def admin(name: str = "al") -> Person:
    """An admin (who adds the tests' people)."""
    return Person(name, frozenset({Role.ADMIN}))


def formulary() -> Formulary:
    """The demo's sample formulary."""
    return parse_formulary(FORMULARY.read_text(encoding="utf-8"), str(FORMULARY))


DEMO_CONFIG = Path(__file__).resolve().parent.parent / "config" / "demo.toml"


def demo_config(folder: Path, *, site: str) -> Path:
    """The demo's configuration as site ``site`` (its own MQTT topics: tests that share the
    machine's broker, or run beside another suite, never see each other's messages), written
    in ``folder`` with its files where they are."""
    here = DEMO_CONFIG.parent
    text = DEMO_CONFIG.read_text()
    for key in ("formulary", "orders"):
        text = text.replace(f'{key} = "', f'{key} = "{here}/', 1)
    text = text.replace('id = "demo"', f'id = "{site}"', 1)
    text = text.replace('"../var/', f'"{here.parent}/var/')
    path = folder / "demo.toml"
    path.write_text(text)
    return path


TECH = Person("tess", frozenset({Role.TECHNICIAN}))
PHARM = Person("phil", frozenset({Role.PHARMACIST}))
BOTH = Person("bo", frozenset({Role.TECHNICIAN, Role.PHARMACIST}))
"""The people the pure workflow tests and the store's verification tests act as."""
