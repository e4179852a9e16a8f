"""The counter's replies in the driver's terms: how a count may end, and the error each of the
ICD's error codes becomes."""

from __future__ import annotations

from drivers.errors import (
    BadRequest,
    Busy,
    DeviceError,
    DoorOpen,
    JammedOrEmpty,
    JobConflict,
    NoSuchChannel,
    NotCalibrated,
    OutputOccupied,
    ScaleNotStable,
    UnknownJob,
)
from drivers.tablet_counter import protocol as wire

END_STATUSES = frozenset(
    state.value for state in wire.JobState if state is not wire.JobState.COUNTING)
"""EN's STATUS: how a count ended, in the ICD's upper case."""

ERRORS: dict[str, type[DeviceError]] = {
    wire.ErrorCode.BAD_REQUEST: BadRequest,
    wire.ErrorCode.BAD_ARGUMENT: BadRequest,
    wire.ErrorCode.BUSY: Busy,
    wire.ErrorCode.NO_SUCH_CHANNEL: NoSuchChannel,
    wire.ErrorCode.DOOR_OPEN: DoorOpen,
    wire.ErrorCode.NOT_CALIBRATED: NotCalibrated,
    wire.ErrorCode.CHUTE_NOT_EMPTY: OutputOccupied,
    wire.ErrorCode.JAMMED_OR_EMPTY: JammedOrEmpty,
    wire.ErrorCode.UNKNOWN_JOB: UnknownJob,
    wire.ErrorCode.JOB_CONFLICT: JobConflict,
    wire.ErrorCode.SCALE_NOT_STABLE: ScaleNotStable,
}
