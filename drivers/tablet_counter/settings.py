"""The serial tablet counter driver's ``driver`` table."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from drivers.settings import DriverSettings
from drivers.tablet_counter import protocol as wire


class SerialCounterSettings(DriverSettings):
    """The vendor serial ICD driver for tablet counters."""

    name: Literal["serial-counter"] = "serial-counter"
    baud: int = wire.DEFAULT_BAUD
    reply_timeout_ms: int = Field(default=100, ge=10, le=5000)
    retries: int = Field(default=wire.RETRIES, ge=0, le=10)

    @field_validator("baud")
    @classmethod
    def _baud(cls, value: int) -> int:
        if value not in wire.BAUD_RATES:
            raise ValueError(f"baud {value} is not one of {wire.BAUD_RATES}")
        return value
