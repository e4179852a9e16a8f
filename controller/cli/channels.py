"""``rxfill calibrate channel|history|restore``: a bin's counting calibration, written to
the robot and recorded in the store for the NDC the bin holds (maintenance only). A robot
fills from a bin only with a calibration for the drug in it."""

from __future__ import annotations

from typing import Annotated

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
from controller.config import ChannelCalibration, Robot, Settings
from controller.domain.roles import Duty
from controller.robots.floor import make_driver
from controller.store import Store, StoreError
from controller.store.calibration import Calibration
from drivers import base
from drivers.errors import DriverError
from drivers.filler_types import CellCalibration

BinArgument = Annotated[str, typer.Argument(help="ROBOT/NUMBER, for example tc1/3.")]


def _bin(settings: Settings, text: str) -> tuple[Robot, int]:
    robot_id, _, number = text.partition("/")
    if not robot_id or not number.isdigit():
        raise fail(f"bin {text!r}: expected ROBOT/NUMBER, for example tc1/3", 2)
    return robot_of(settings, robot_id), int(number)


def _line(c: Calibration) -> str:
    settings = ", ".join(f"{k} {v}" for k, v in sorted(c.settings.items()))
    return (f"{c.id:>4}  {c.at:%Y-%m-%d %H:%M}  NDC {c.ndc}  {settings:<28} {c.source:<13} "
            f"{c.who}: {c.reason}")


async def _write_to_robot(settings: Settings, robot: Robot, number: int,
                          wanted: ChannelCalibration, ndc: str) -> None:
    """Write the calibration to the robot and read it back (the driver checks)."""
    async with reach(settings, robot) as (url, _), make_driver(robot, url) as driver:
        if isinstance(driver, base.TabletCounter):
            if wanted.gate_ms is None:
                raise StoreError("a counter's channel needs --gate-ms too")
            await driver.write_calibration(number, base.Calibration(wanted.sensitivity,
                                                                    wanted.gate_ms))
        else:
            unit = settings.formulary[ndc].unit_mass_mg
            await driver.write_calibration(number, CellCalibration(wanted.sensitivity, unit))


@calibrate_app.command("channel")
def calibrate_channel(
    bin_: BinArgument,
    sensitivity: Annotated[int, typer.Option(help="Counting sensitivity, 1-100.")],
    reason: Annotated[str, typer.Option(help="Why (a new drug, miscounts…).")],
    gate_ms: Annotated[int | None, typer.Option(help="A counter's gate, 1-500 ms.")] = None,
    user: UserOption = None, token: TokenOption = None,
    password_stdin: PasswordStdinOption = False,
    config: ConfigOption = DEMO_CONFIG, store: StoreOption = None,
) -> None:
    """Calibrate a channel (a cell) for the drug it holds: written to the robot and read
    back, then recorded in the store as the bin's calibration for that NDC."""
    settings = settings_of(config)
    robot, number = _bin(settings, bin_)
    try:
        wanted = ChannelCalibration(sensitivity=sensitivity, gate_ms=gate_ms)
    except ValidationError as exc:
        raise fail(f"calibration: {exc.errors()[0]['msg']}", 2) from None
    creds = credentials(user, token, password_stdin)

    async def work(db: Store) -> str:
        me = await maintainer(db, creds, Duty.CALIBRATE)
        try:
            held = await db.stock.bin(robot.id, number)
            await _write_to_robot(settings, robot, number, wanted, held.ndc)
            made = await db.calibration.record_calibration(
                robot.id, number, wanted.model_dump(exclude_none=True), by=me, reason=reason)
        except (StoreError, DriverError, OSError, ValueError, LookupError) as exc:
            raise fail(f"{robot.id}/{number}: {exc}") from None
        return f"{robot.id}/{number} calibrated for NDC {made.ndc}:\n{_line(made)}"
    at_the_robot(config, store, robot, settings, work)


@calibrate_app.command("history")
def calibrate_history(bin_: BinArgument, config: ConfigOption = DEMO_CONFIG,
                      store: StoreOption = None) -> None:
    """A bin's calibrations, newest (the bin's own) first."""
    settings = settings_of(config)
    robot, number = _bin(settings, bin_)

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
    robot, number = _bin(settings, bin_)
    creds = credentials(user, token, password_stdin)

    async def work(db: Store) -> str:
        me = await maintainer(db, creds, Duty.CALIBRATE)
        try:
            earlier = next((c for c in await db.calibration.calibration_history(
                robot.id, number) if c.id == version), None)
            if earlier is not None:
                await _write_to_robot(settings, robot, number,
                                      ChannelCalibration.model_validate(dict(earlier.settings)),
                                      earlier.ndc)
            made = await db.calibration.restore_calibration(robot.id, number, version, by=me)
        except (StoreError, DriverError, OSError, ValueError, LookupError) as exc:
            raise fail(f"{robot.id}/{number}: {exc}") from None
        return f"{robot.id}/{number}: {_line(made)}"
    at_the_robot(config, store, robot, settings, work)
