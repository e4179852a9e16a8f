"""A guided channel calibration at the command line: the runs as they come (on stderr), the
proposal recorded and said (``rxfill calibrate accept`` makes it the bin's; ``rxfill calibrate
runs`` shows the table again)."""

from __future__ import annotations

import typer

from controller.cli.calibrate import PromptedHands
from controller.cli.common import Credentials, fail
from controller.cli.diag import maintainer, reach
from controller.config import Robot, Settings
from controller.domain.roles import Duty
from controller.domain.tuning import Plan, Run
from controller.robots.floor import make_driver
from controller.robots.simulated import SimulatedHands
from controller.robots.tuning import TuningRefused, ready_to_guide, record_tuned, tune_channel
from controller.store import Store, StoreError
from controller.store.calibration import GuidedCalibration
from drivers.errors import DriverError

HEAD = "RUN  SENS  GATE  COUNTED  WEIGHT MG  WEIGHED  ERROR"


def run_line(number: int, run: dict[str, object]) -> str:
    gate = run.get("gate_ms")
    error = int(str(run["error"]))
    pct = 100.0 * error / max(1, int(str(run["weighed"])))
    return (f"{number:>3}  {run['sensitivity']!s:>4}  {gate if gate is not None else '-'!s:>4}  "
            f"{run['counted']!s:>7}  {run['weight_mg']!s:>9}  {run['weighed']!s:>7}  "
            f"{error:+d} ({pct:+.1f} %)")


def verdict(made: GuidedCalibration) -> str:
    """What a guided calibration came to, in a line."""
    if made.proposal is None:
        return f"guided calibration {made.id} of {made.robot}/{made.bin}: {made.why}"
    settings = ", ".join(f"{k} {v}" for k, v in sorted(made.proposal.items()))
    return (f"guided calibration {made.id} of {made.robot}/{made.bin} (NDC {made.ndc}): "
            f"{made.state}: {settings}")


def table(made: GuidedCalibration) -> str:
    return "\n".join([HEAD, *(run_line(n, r) for n, r in enumerate(made.runs, 1)),
                      verdict(made)])


def _progress(run: Run, number: int) -> None:
    if number == 1:
        typer.echo(HEAD, err=True)
    typer.echo(run_line(number, run.as_dict()), err=True)


async def guided(db: Store, settings: Settings, robot: Robot, number: int, creds: Credentials,
                 plan: Plan, start: tuple[int | None, int | None]) -> str:
    """Run the calibration at the robot, record its runs, and say what to do next."""
    me = await maintainer(db, creds, Duty.CALIBRATE)
    try:
        drug = await ready_to_guide(db, settings.formulary, robot.id, number, plan)
        async with reach(settings, robot) as (url, sim):
            hands = SimulatedHands(sim) if sim else PromptedHands(robot.id)
            async with make_driver(robot, url) as driver:
                tuned = await tune_channel(
                    driver, channel=number, unit_mass_mg=drug.unit_mass_mg,
                    unit_volume_mm3=drug.unit_volume_mm3, plan=plan, hands=hands,
                    say=_progress, start_sensitivity=start[0], start_gate_ms=start[1])
        made = await record_tuned(db, robot.id, number, tuned, me)
    except (TuningRefused, StoreError, DriverError, OSError, LookupError) as exc:
        raise fail(f"{robot.id}/{number}: {exc}") from None
    said = verdict(made)
    if made.proposal is None:
        raise fail(said)
    return (f"{said}\nthe channel keeps its calibration until a person with the "
            f"maintenance role accepts: rxfill calibrate accept {robot.id}/{number} {made.id}")
