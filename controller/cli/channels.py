"""``rxfill calibrate channel|history|restore``: a bin's counting calibration, written to
the robot and recorded in the store for the NDC the bin holds (maintenance only). A robot
fills from a bin only with a calibration for the drug in it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from controller.cli.calibrate import calibrate_app
from controller.cli.common import (
    DEMO_CONFIG,
    ConfigOption,
    PasswordStdinOption,
    StoreOption,
    TokenOption,
    UserOption,
    credentials,
    fail,
    settings_of,
    with_store,
)
from controller.cli.diag import at_the_robot, maintainer, reach, robot_of
from controller.cli.guided import guided, table
from controller.config import ChannelCalibration, Robot, Settings
from controller.domain.roles import Duty
from controller.domain.tuning import Plan, Setting
from controller.robots.floor import make_driver
from controller.robots.tuning import TuningRefused, accept_guided, write_setting
from controller.store import Store, StoreError
from controller.store.calibration import Calibration
from drivers.errors import DriverError

BinArgument = Annotated[str, typer.Argument(help="ROBOT/NUMBER, for example tc1/3.")]


def bin_of(settings: Settings, text: str) -> tuple[Robot, int]:
    robot_id, _, number = text.partition("/")
    if not robot_id or not number.isdigit():
        raise fail(f"bin {text!r}: expected ROBOT/NUMBER, for example tc1/3", 2)
    return robot_of(settings, robot_id), int(number)


def _line(c: Calibration) -> str:
    settings = ", ".join(f"{k} {v}" for k, v in sorted(c.settings.items()))
    return (f"{c.id:>4}  {c.at:%Y-%m-%d %H:%M}  NDC {c.ndc}  {settings:<28} {c.source:<13} "
            f"{c.who}: {c.reason}")


async def write_to_robot(settings: Settings, robot: Robot, number: int,
                         wanted: ChannelCalibration | Mapping[str, Any], ndc: str) -> None:
    """Write the calibration to the robot and read it back (the driver checks)."""
    if not isinstance(wanted, ChannelCalibration):
        wanted = ChannelCalibration.model_validate(dict(wanted))
    async with reach(settings, robot) as (url, _), make_driver(robot, url) as driver:
        await write_setting(driver, number, Setting(wanted.sensitivity, wanted.gate_ms),
                            settings.formulary[ndc].unit_mass_mg)


@calibrate_app.command("channel")
def calibrate_channel(
    bin_: BinArgument,
    sensitivity: Annotated[int | None, typer.Option(
        help="Set by hand: counting sensitivity, 1-100 (without it: a guided calibration).")
    ] = None,
    gate_ms: Annotated[int | None, typer.Option(help="Set by hand: a counter's gate, 1-500 ms.")
                       ] = None,
    reason: Annotated[str, typer.Option(help="Why, when set by hand (a new drug…).")] = "",
    from_sensitivity: Annotated[int | None, typer.Option(
        help="Guided: start from this sensitivity (default: the channel's now).")] = None,
    from_gate_ms: Annotated[int | None, typer.Option(
        help="Guided: start from this gate (default: the channel's now).")] = None,
    sample: Annotated[int, typer.Option(help="Guided: tablets counted in each run.")] = 100,
    agree: Annotated[int, typer.Option(help="Guided: runs in a row that must agree.")] = 3,
    most_runs: Annotated[int, typer.Option(help="Guided: give up after this many runs.")] = 12,
    user: UserOption = None, token: TokenOption = None,
    password_stdin: PasswordStdinOption = False,
    config: ConfigOption = DEMO_CONFIG, store: StoreOption = None,
) -> None:
    """Calibrate a channel (a cell) for the drug it holds. Guided: count reference samples,
    weigh them, adjust, until runs agree; the result is a proposal (see calibrate accept),
    and the channel keeps its calibration until then. By hand (--sensitivity): written to
    the robot, read back, and recorded as the bin's calibration for its NDC."""
    settings = settings_of(config)
    robot, number = bin_of(settings, bin_)
    creds = credentials(user, token, password_stdin)
    if sensitivity is None:
        try:
            plan = Plan(sample=sample, agree=agree, most_runs=most_runs)
            ChannelCalibration(sensitivity=from_sensitivity or 50, gate_ms=from_gate_ms)
        except ValidationError as exc:
            raise fail(f"start: {exc.errors()[0]['msg']}", 2) from None
        except ValueError as exc:
            raise fail(f"guided calibration: {exc}", 2) from None
        at_the_robot(config, store, robot, settings,
                     lambda db: guided(db, settings, robot, number, creds, plan,
                                       (from_sensitivity, from_gate_ms)))
        return
    try:
        wanted = ChannelCalibration(sensitivity=sensitivity, gate_ms=gate_ms)
    except ValidationError as exc:
        raise fail(f"calibration: {exc.errors()[0]['msg']}", 2) from None
    if not reason.strip():
        raise fail("say why with --reason (a new drug, miscounts…)", 2)

    async def work(db: Store) -> str:
        me = await maintainer(db, creds, Duty.CALIBRATE)
        try:
            held = await db.stock.bin(robot.id, number)
            await write_to_robot(settings, robot, number, wanted, held.ndc)
            made = await db.calibration.record_calibration(
                robot.id, number, wanted.model_dump(exclude_none=True), by=me, reason=reason)
        except (StoreError, DriverError, TuningRefused, OSError, ValueError, LookupError) as exc:
            raise fail(f"{robot.id}/{number}: {exc}") from None
        return f"{robot.id}/{number} calibrated for NDC {made.ndc}:\n{_line(made)}"
    at_the_robot(config, store, robot, settings, work)


@calibrate_app.command("history")
def calibrate_history(bin_: BinArgument, config: ConfigOption = DEMO_CONFIG,
                      store: StoreOption = None) -> None:
    """A bin's calibrations, newest (the bin's own) first."""
    settings = settings_of(config)
    robot, number = bin_of(settings, bin_)

    async def work(db: Store) -> str:
        history = await db.calibration.calibration_history(robot.id, number)
        return "\n".join(_line(c) for c in history) or f"{bin_}: never calibrated"
    with_store(config, store, work, settings=settings)


@calibrate_app.command("restore")
def calibrate_restore(
    bin_: BinArgument,
    version: Annotated[int, typer.Argument(help="The version (calibrate history's first column).")],
    user: UserOption = None, token: TokenOption = None,
    password_stdin: PasswordStdinOption = False,
    config: ConfigOption = DEMO_CONFIG, store: StoreOption = None,
) -> None:
    """Make an earlier calibration the bin's again (for the drug it was made for only):
    written to the robot, then recorded as a new version."""
    settings = settings_of(config)
    robot, number = bin_of(settings, bin_)
    creds = credentials(user, token, password_stdin)

    async def work(db: Store) -> str:
        me = await maintainer(db, creds, Duty.CALIBRATE)
        try:
            earlier = next((c for c in await db.calibration.calibration_history(
                robot.id, number) if c.id == version), None)
            if earlier is not None:
                await write_to_robot(settings, robot, number,
                                      ChannelCalibration.model_validate(dict(earlier.settings)),
                                      earlier.ndc)
            made = await db.calibration.restore_calibration(robot.id, number, version, by=me)
        except (StoreError, DriverError, TuningRefused, OSError, ValueError, LookupError) as exc:
            raise fail(f"{robot.id}/{number}: {exc}") from None
        return f"{robot.id}/{number}: {_line(made)}"
    at_the_robot(config, store, robot, settings, work)


@calibrate_app.command("accept")
def calibrate_accept(
    bin_: BinArgument,
    guided_id: Annotated[int, typer.Argument(help="The guided calibration's number.")],
    user: UserOption = None, token: TokenOption = None,
    password_stdin: PasswordStdinOption = False,
    config: ConfigOption = DEMO_CONFIG, store: StoreOption = None,
) -> None:
    """Accept a guided calibration's proposal: written to the robot, read back, and recorded
    as the bin's calibration (maintenance only)."""
    settings = settings_of(config)
    robot, number = bin_of(settings, bin_)
    creds = credentials(user, token, password_stdin)

    async def work(db: Store) -> str:
        me = await maintainer(db, creds, Duty.CALIBRATE)
        try:
            async with reach(settings, robot) as (url, _), make_driver(robot, url) as driver:
                calibration = await accept_guided(db, driver, settings.formulary, robot.id,
                                                  number, guided_id, me)
        except (StoreError, DriverError, TuningRefused, OSError, ValueError,
                LookupError) as exc:
            raise fail(f"{robot.id}/{number}: {exc}") from None
        settings_said = ", ".join(f"{k} {v}" for k, v in sorted(calibration.settings.items()))
        return (f"{robot.id}/{number} calibrated for NDC {calibration.ndc}: {settings_said} "
                f"(guided calibration {guided_id}, version {calibration.id})")
    at_the_robot(config, store, robot, settings, work)


@calibrate_app.command("runs")
def calibrate_runs(
    bin_: BinArgument,
    config: ConfigOption = DEMO_CONFIG, store: StoreOption = None,
) -> None:
    """A bin's guided calibrations, newest first, each with its runs."""
    settings = settings_of(config)
    robot, number = bin_of(settings, bin_)

    async def work(db: Store) -> str:
        made = await db.calibration.guided_calibrations(robot.id, number)
        return "\n\n".join(table(g) for g in made) or f"{bin_}: no guided calibration"
    with_store(config, store, work, settings=settings)
