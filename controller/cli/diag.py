"""``rxfill drivers`` and ``rxfill diag``: what maintenance staff ask of the drivers and the
robots before they trust them (which drivers are installed; is this robot there, who is
it, how fast does it answer)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import asdict
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated

import typer

from controller.cli.common import (
    DEMO_CONFIG,
    ConfigOption,
    Credentials,
    StoreOption,
    fail,
    settings_of,
    signed_in,
    store_path,
    with_store,
)
from controller.config import Robot, Settings
from controller.domain.roles import Duty, Person, RoleError, require
from controller.robots.floor import make_driver
from controller.robots.simulated import Simulator, start_simulators
from controller.store import Store
from controller.store.lock import StoreInUse, supervising
from drivers.errors import DriverError
from drivers.registry import GROUP, UnknownDriverError, find_driver
from drivers.trace import Frame, Tap

diag_app = typer.Typer(help="Diagnostics: is a robot there, who is it, how fast it answers.",
                       no_args_is_help=True)


def drivers() -> None:
    """The drivers the registry finds: name, kind, the package each comes from, its class."""
    lines = [f"{'NAME':<16} {'KIND':<16} {'PACKAGE':<24} CLASS"]
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        package = f"{ep.dist.name} {ep.dist.version}" if ep.dist else "?"
        try:
            kind = find_driver(ep.name).kind
        except UnknownDriverError as exc:
            kind = f"broken: {exc}"
        lines.append(f"{ep.name:<16} {kind:<16} {package:<24} {ep.value}")
    typer.echo("\n".join(lines))


def robot_of(settings: Settings, robot_id: str) -> Robot:
    robots = {r.id: r for r in settings.config.robots}
    if robot_id not in robots:
        raise fail(f"no robot {robot_id!r} in {settings.path}; expected one of "
                   f"{', '.join(robots)}", 2)
    return robots[robot_id]


@contextlib.contextmanager
def link_of(robot: Robot, store: Path) -> Iterator[None]:
    """Hold the store's supervisor lock while a command speaks to a real robot itself: a
    running site's link is the robot's only one, so the command is refused (exit 1, saying
    so) while a site supervises the store. A ``sim:`` robot's simulator is the command's own."""
    if robot.simulated:
        yield
        return
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(supervising(store))
        except StoreInUse as exc:
            raise fail(f"refused: {exc}; the running site holds {robot.id}'s link (its "
                       f"console and API show the robot, and its Maintenance page the "
                       f"robot's wire)") from None
        yield


def at_the_robot(config: Path, store: Path | None, robot: Robot, settings: Settings,
                 work: Callable[[Store], Awaitable[str]]) -> None:
    """Do ``work`` with the store open, holding the robot's link (:func:`link_of`)."""
    with link_of(robot, store_path(config, store, settings)):
        with_store(config, store, work, settings=settings)


async def maintainer(db: Store, creds: Credentials, duty: Duty) -> Person:
    """The signed-in person, who must hold a role ``duty`` needs (exit 1 saying why not)."""
    me = await signed_in(db, creds)
    try:
        require(me, duty)
    except RoleError as exc:
        raise fail(f"refused: {exc}") from None
    return me


@contextlib.asynccontextmanager
async def reach(settings: Settings, robot: Robot) -> AsyncIterator[tuple[str, Simulator | None]]:
    """The robot's address, and its simulator when it is a ``sim:`` robot (started here)."""
    if not robot.simulated:
        yield robot.url, None
        return
    alone = dataclasses.replace(settings, config=settings.config.model_copy(
        update={"robots": [robot]}))
    sims = await start_simulators(alone)
    try:
        yield sims[robot.id].url, sims[robot.id]
    finally:
        for sim in sims.values():
            await sim.close()


async def ping(settings: Settings, robot: Robot, count: int) -> list[str]:
    """Ask the robot who it is, then its status ``count`` times, timing each answer."""
    async with reach(settings, robot) as (url, _):
        driver = make_driver(robot, url)
        async with driver:
            who = await driver.identify()
            times = []
            for _ in range(count):
                began = time.perf_counter()
                await driver.status()
                times.append((time.perf_counter() - began) * 1000)
    facts = ", ".join(f"{k} {v}" for k, v in asdict(who).items())
    where = f"{url} (simulated)" if robot.simulated else url
    return [f"{robot.id} at {where}: {facts}",
            f"{count} status requests: round trip min {min(times):.2f} ms, median "
            f"{statistics.median(times):.2f} ms, max {max(times):.2f} ms"]


@diag_app.command("ping")
def diag_ping(
    robot: Annotated[str, typer.Argument(help="The robot's id in the configuration.")],
    count: Annotated[int, typer.Option(help="Status requests to time.", min=1, max=10_000)] = 20,
    config: ConfigOption = DEMO_CONFIG, store: StoreOption = None,
) -> None:
    """Identity, firmware and round-trip time (min/median/max) of one robot. Refused while a
    site supervises the store: its link to the robot is the robot's only one."""
    settings = settings_of(config)
    target = robot_of(settings, robot)
    where = store or settings.resolve(settings.config.store.path)
    try:
        with link_of(target, where):
            lines = asyncio.run(ping(settings, target, count))
    except (DriverError, OSError) as exc:
        raise fail(f"{robot} did not answer: {exc}") from None
    typer.echo("\n".join(lines))



async def trace(settings: Settings, robot: Robot, seconds: float, interval: float,
                file: Path | None) -> int:
    """Hold the robot's link, ask its status every ``interval`` s for ``seconds``, and show
    every frame (or register exchange) as it goes; the count of frames."""
    frames: list[Frame] = []
    out = file.open("w", encoding="utf-8") if file else None

    def show(frame: Frame) -> None:
        frames.append(frame)
        typer.echo(frame.line())
        if out is not None:
            out.write(frame.to_json() + "\n")
            out.flush()
    try:
        async with reach(settings, robot) as (url, _):
            driver = make_driver(robot, url)
            tap = getattr(driver, "trace", None)
            if not isinstance(tap, Tap):
                raise fail(f"{robot.id}'s driver ({type(driver).__name__}) keeps no trace")
            tap.listen(show)
            async with driver:
                loop = asyncio.get_running_loop()
                ends = loop.time() + seconds
                while loop.time() < ends:
                    await driver.status()
                    await asyncio.sleep(max(0.0, min(interval, ends - loop.time())))
    finally:
        if out is not None:
            out.close()
    return len(frames)


@diag_app.command("trace")
def diag_trace(
    robot: Annotated[str, typer.Argument(help="The robot's id in the configuration.")],
    seconds: Annotated[float, typer.Option(help="How long to watch.", min=0.1)] = 10.0,
    interval: Annotated[float, typer.Option(help="Seconds between status requests.",
                                            min=0.01)] = 0.5,
    file: Annotated[Path | None, typer.Option(help="Also write the frames here, one JSON "
                                              "object a line (replayable in a test).")] = None,
    config: ConfigOption = DEMO_CONFIG, store: StoreOption = None,
) -> None:
    """Every frame (serial) or register read and write (Modbus) between this command and
    the robot, timestamped, while it asks the robot's status. Refused while a site
    supervises the store: the console's Maintenance page shows that site's wire, live."""
    settings = settings_of(config)
    target = robot_of(settings, robot)
    where = store or settings.resolve(settings.config.store.path)
    try:
        with link_of(target, where):
            count = asyncio.run(trace(settings, target, seconds, interval, file))
    except (DriverError, OSError) as exc:
        raise fail(f"{robot}: {exc}") from None
    typer.echo(f"{count} frames" + (f", written to {file}" if file else ""), err=True)
