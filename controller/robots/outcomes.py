"""What a robot's problems are called in the recovery table (``domain/recovery.py``): the
problem of each fill outcome, and of each refusal to start a fill."""

from __future__ import annotations

from controller.domain.orders import FillOutcome
from controller.domain.recovery import Problem
from drivers import errors

PROBLEM_OF_OUTCOME: dict[FillOutcome, Problem] = {
    FillOutcome.JAM: Problem.JAM,
    FillOutcome.RAN_EMPTY: Problem.RAN_EMPTY,
    FillOutcome.NO_VIAL: Problem.NO_VIAL,
    FillOutcome.DOOR_OPENED: Problem.DOOR_OPENED,
    FillOutcome.CAP_FAULT: Problem.CAP_FAULT,
    FillOutcome.SCALE_FAULT: Problem.SCALE_FAULT,
    FillOutcome.SAFE: Problem.SAFE,
    FillOutcome.ABORTED: Problem.ABORTED,
    FillOutcome.WEIGHT_OFF: Problem.WEIGHT_OFF,
    FillOutcome.COUNT_BY_HAND: Problem.COUNT_BY_HAND,
}


def problem_of_refusal(error: errors.DeviceError) -> Problem:
    """The recovery table's name for a robot's refusal to start a fill."""
    match error:
        case errors.Busy():
            return Problem.REFUSED_BUSY
        case errors.OutputOccupied():
            return Problem.REFUSED_OUTPUT_OCCUPIED
        case errors.DoorOpen():
            return Problem.REFUSED_DOOR_OPEN
        case errors.NotCalibrated():
            return Problem.REFUSED_NOT_CALIBRATED
        case errors.NoSuchChannel():
            return Problem.REFUSED_NO_SUCH_BIN
        case errors.JammedOrEmpty():
            return Problem.REFUSED_STOPPED
        case _:
            return Problem.REFUSED_BAD_REQUEST
