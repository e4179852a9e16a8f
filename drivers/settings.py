"""A driver's settings: the ``driver`` table of a robot's configuration, as the driver reads it.

Each driver class declares its own pydantic model (a subclass of :class:`DriverSettings`) and
builds itself from it (:meth:`DriverClass.configured`). The configuration finds the class by
the table's ``name`` in the registry and validates the rest of the table with that class's
model, so a vendor's driver is configured exactly like ours.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field


class DriverTable(BaseModel):
    """A ``driver`` table before its driver is known: a name, and keys for that driver."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(min_length=1, description="the driver's name in the registry")


class DriverSettings(DriverTable):
    """Base of every driver's settings model: unknown keys are mistakes, numbers finite."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DriverClass(Protocol):
    """What the registry's entry point must be: a driver class that configures itself."""

    kind: ClassVar[str]
    """What it drives: ``tablet-counter``, ``vial-filler`` or ``label-printer``."""
    settings: ClassVar[type[DriverSettings]]
    """The model its ``driver`` table is validated with."""
    max_channels: ClassVar[int]
    """The highest channel (or cell) number the device addresses; 0 for a printer."""

    @classmethod
    def configured(cls, settings: Any, *, name: str, url: str,
                   time_scale: float = 1.0) -> Any:
        """The driver of ``name`` at ``url`` from its validated ``settings``; ``time_scale``
        is how much faster than real time a simulated device runs (its watchdogs too)."""
        ...
