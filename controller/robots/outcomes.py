"""What a robot's refusals are called in the recovery table (``domain/recovery.py``); a fill
outcome's problem is in ``domain/fills.OUTCOMES``."""

from __future__ import annotations

from controller.domain.recovery import Problem
from drivers import errors


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
