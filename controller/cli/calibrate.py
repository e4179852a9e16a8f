"""``rxfill calibrate``: a robot's scale, through its ICD commands (tare, span, check), by a
person with the maintenance role; each calibration is in the audit trail."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

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
)
from controller.cli.diag import at_the_robot, maintainer, reach, robot_of
from controller.domain.roles import Duty
from controller.domain.scale import ScaleRefused
from controller.robots.floor import make_driver
from controller.robots.scales import ScaleCalibration, calibrate_scale
from controller.robots.simulated import SimulatedHands
from controller.store import Store
from drivers.errors import DriverError

calibrate_app = typer.Typer(help="Calibration: a robot's scale.", no_args_is_help=True)


class PromptedHands:
    """A person at a real robot, told what to put on the scale and answering with Enter."""

    def __init__(self, robot: str) -> None:
        self._robot = robot

    async def put(self, mass_mg: int) -> None:
        await self._ask(f"Put the {mass_mg} mg mass on {self._robot}'s scale, then press Enter")

    async def take_off(self) -> None:
        await self._ask(f"Empty {self._robot}'s scale (chute or bay), then press Enter")

    async def return_sample(self, channel: int) -> None:
        await self._ask(f"Pour the counted tablets (chute or vial) back into {self._robot}'s "
                        f"channel {channel}, then press Enter")

    async def _ask(self, words: str) -> None:
        typer.echo(words, err=True)
        await asyncio.to_thread(input)


def _said(done: ScaleCalibration) -> str:
    verdict = "passed" if done.passed else "FAILED: the scale is out of span; do not fill"
    return (f"{done.robot}: scale calibrated; reference {done.before.mass_mg} mg read "
            f"{done.before.read_mg} mg before the span and {done.after.read_mg} mg after; "
            f"check {done.check.mass_mg} mg read {done.check.read_mg} mg "
            f"(±{done.check.tolerance_mg:g} mg allowed): {verdict}")


@calibrate_app.command("scale")
def calibrate_scale_command(
    robot: Annotated[str, typer.Argument(help="The robot's id in the configuration.")],
    reference_mg: Annotated[int, typer.Option(help="The reference mass to span on, in mg.",
                                              min=1)],
    check_mg: Annotated[int | None, typer.Option(
        help="A second mass to check with (default: half the reference).", min=1)] = None,
    user: UserOption = None, token: TokenOption = None,
    password_stdin: PasswordStdinOption = False,
    config: ConfigOption = DEMO_CONFIG, store: StoreOption = None,
) -> None:
    """Tare the robot's scale empty, span it on the reference mass, check it on a second
    mass. Refused while a job runs, while a site holds the robot's link, and to anyone
    without the maintenance role; recorded in the audit trail."""
    settings = settings_of(config)
    target = robot_of(settings, robot)
    creds = credentials(user, token, password_stdin)

    async def work(db: Store) -> str:
        me = await maintainer(db, creds, Duty.CALIBRATE)
        try:
            async with reach(settings, target) as (url, sim):
                hands = SimulatedHands(sim) if sim else PromptedHands(robot)
                async with make_driver(target, url) as driver:
                    done = await calibrate_scale(
                        driver, robot=robot, reference_mg=reference_mg, check_mg=check_mg,
                        noise_mg=target.scale_noise_mg, hands=hands,
                        say=lambda words: typer.echo(words, err=True))
        except ScaleRefused as exc:
            raise fail(f"refused: {exc}") from None
        except (DriverError, OSError) as exc:
            raise fail(f"{robot}: {exc}") from None
        await db.calibration.record_scale_check(robot, done.passed, {
            "reference_mg": done.before.mass_mg, "before_mg": done.before.read_mg,
            "after_mg": done.after.read_mg, "check_mg": done.check.mass_mg,
            "check_read_mg": done.check.read_mg}, by=me)
        if not done.passed:
            raise fail(f"{_said(done)}; {robot} fills nothing until its scale passes a check")
        return _said(done)

    at_the_robot(config, store, target, settings, work)
