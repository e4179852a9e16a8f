"""What waits in a robot's output (a filler's bay, a counter's chute) for a person to take."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog

from controller.clock import Clock
from controller.store import FillRecord

log = structlog.get_logger(__name__)


class OutputError(ValueError):
    """A person's "taken" that does not match what the robot's output holds."""


@dataclass(frozen=True, slots=True)
class Output:
    """A fill's vial or tablets in the output, since when, and whether it is the order's vial."""

    fill_id: int
    order_id: int
    job: str
    since: datetime
    complete: bool
    """The order's filled vial (it goes on to its label), not a partial or unconfirmed one."""


class OutputBay:
    """One robot's output: what it holds (``held``), until a person takes it."""

    def __init__(self, robot: str, clock: Clock) -> None:
        self.robot = robot
        self.held: Output | None = None
        self._clock = clock

    def waiting(self, fill_id: int | None = None) -> Output:
        """What the output holds (fill ``fill_id``'s, if named), or OutputError saying what
        it holds instead."""
        output = self.held
        if output is None:
            raise OutputError(f"{self.robot}'s output holds nothing recorded: nothing to take")
        if fill_id is not None and output.fill_id != fill_id:
            raise OutputError(f"{self.robot}'s output holds fill {output.fill_id} "
                              f"(order {output.order_id}), not fill {fill_id}")
        return output

    def hold(self, fill: FillRecord, complete: bool) -> bool:
        """The robot holds ``fill``'s vial or tablets; False when it was held already."""
        if self.held is not None and self.held.fill_id == fill.id:
            return False
        self.held = Output(fill.id, fill.order_id, fill.job, self._clock.now(), complete)
        log.info("output waits for a person", robot=self.robot, fill=fill.id)
        return True

    def taken(self) -> None:
        """A person took what it held."""
        self.held = None
