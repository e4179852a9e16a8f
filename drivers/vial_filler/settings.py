"""The Modbus vial filler driver's ``driver`` table."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from drivers.settings import DriverSettings
from drivers.vial_filler import protocol as wire


class ModbusFillerSettings(DriverSettings):
    """The vendor Modbus ICD driver for vial fillers (TCP or RTU)."""

    name: Literal["modbus-filler"] = "modbus-filler"
    unit: int = Field(default=wire.DEFAULT_UNIT, ge=1, le=247)
    baud: int = wire.DEFAULT_BAUD
    parity: Literal["E", "N", "O"] = Field(
        default="E", description="8E1 by the ICD; a simulator's pty carries no parity: N")
    timeout_ms: int = Field(default=500, ge=20, le=10_000)
    retries: int = Field(default=2, ge=0, le=10)
    poll_hz: float = Field(default=5.0, gt=0, le=50, description="while busy")
    idle_poll_hz: float = Field(default=1.0, gt=0, le=50,
                                description="while idle (never faster than poll_hz)")
    heartbeat_s: float = Field(default=1.0, gt=0, lt=2.0,
                               description="below the ICD's 2 s")

    @field_validator("baud")
    @classmethod
    def _baud(cls, value: int) -> int:
        if value not in wire.BAUD_RATES:
            raise ValueError(f"baud {value} is not one of {wire.BAUD_RATES}")
        return value
