"""The driver error tree: every driver raises these, never a transport's own.

Each error carries the device it came from and, where there was one, the
request sent and the reply received, so that a log line or a technician's
screen can say exactly what went wrong on which robot.
"""

from __future__ import annotations


class DriverError(Exception):
    """Base of every error a driver raises."""

    def __init__(
        self, message: str, *, device: str, request: str | None = None, reply: str | None = None
    ) -> None:
        super().__init__(message)
        self.device = device
        self.request = request
        self.reply = reply

    def __str__(self) -> str:
        text = f"{self.device}: {self.args[0]}"
        if self.request is not None:
            text += f" (request {self.request!r}"
            text += f", reply {self.reply!r})" if self.reply is not None else ")"
        return text


class NotConnectedError(DriverError):
    """The driver is not open, or could not be opened."""


class LinkError(DriverError):
    """The link to the device failed or dropped while in use."""


class ReplyTimeout(LinkError):
    """No reply came after every retry of the same request."""


class ProtocolError(DriverError):
    """The device answered something the interface does not allow."""


class DeviceError(DriverError):
    """The device understood the request and refused it with an error code."""

    def __init__(
        self,
        message: str,
        *,
        device: str,
        code: str,
        request: str | None = None,
        reply: str | None = None,
    ) -> None:
        super().__init__(message, device=device, request=request, reply=reply)
        self.code = code


class BadRequest(DeviceError):
    """The device says the request or one of its arguments is malformed."""


class Busy(DeviceError):
    """A job is in progress."""


class NoSuchChannel(DeviceError):
    """The channel or cell does not exist on this device."""


class DoorOpen(DeviceError):
    """The door is open."""


class NotCalibrated(DeviceError):
    """The channel or cell is not calibrated."""


class OutputOccupied(DeviceError):
    """The last job's tablets or vial were not taken yet."""


class JammedOrEmpty(DeviceError):
    """The device stopped on a jam or an empty channel and must be cleared first."""


class UnknownJob(DeviceError):
    """The device does not remember that job."""


class JobConflict(DeviceError):
    """The job id is already in use with other parameters."""


class ScaleNotStable(DeviceError):
    """The scale has not settled."""


class ExceptionReply(ProtocolError):
    """A Modbus device answered with an exception (illegal function, address or value)."""

    def __init__(self, message: str, *, device: str, exception_code: int,
                 request: str | None = None, reply: str | None = None) -> None:
        super().__init__(message, device=device, request=request, reply=reply)
        self.exception_code = exception_code


class PrinterNotReady(DeviceError):
    """The printer cannot print now: out of labels, head open, paused (``code`` says which)."""
