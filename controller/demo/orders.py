"""The demo's sample orders file: ``[[orders]]`` tables of prescriptions, each with what the demo
tells the simulator to do while it is filled."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pydantic import Field, ValidationError, field_validator

from controller.domain.ndc import parse_ndc
from controller.domain.orders import MAX_QUANTITY, Order, Patient, Prescriber
from controller.reading import ConfigError, Model, explain, read_toml


class PrescriberEntry(Model):
    """A prescriber, as an orders file writes one."""

    name: str = Field(min_length=1)
    npi: str = Field(pattern=r"^[0-9]{10}$")
    dea: str | None = Field(default=None, pattern=r"^[A-Z][A-Z9][0-9]{7}$")


class OrderEntry(Model):
    """An order as written in a sample orders file."""

    class PatientEntry(Model):
        """The patient, as the file writes it."""

        id: str = Field(min_length=1)
        name: str = Field(min_length=1)
        birth_date: date
        easy_open: bool = False

    class Simulate(Model):
        """What the demo tells the simulator to do during this order."""

        jam_after: int | None = Field(default=None, ge=0)
        miscount: int = 0
        cap_fault: bool = False

    rx_number: str = Field(pattern=r"^[A-Za-z0-9-]{1,20}$")
    patient: PatientEntry
    ndc: str
    quantity: int = Field(ge=1, le=MAX_QUANTITY)
    sig: str = Field(min_length=1, description="the directions, as the label prints them")
    refills: int = Field(default=0, ge=0)
    days_supply: int | None = Field(default=None, ge=1)
    prescriber: PrescriberEntry | None = Field(default=None, description=(
        "who wrote it (default: the file's prescriber)"))
    simulate: Simulate = Simulate()

    @field_validator("ndc")
    @classmethod
    def _ndc(cls, value: str) -> str:
        return parse_ndc(value)

    def to_order(self, written: date | None = None) -> Order:
        """The domain's order (``written`` on that date)."""
        patient = Patient(self.patient.id, self.patient.name, self.patient.birth_date)
        p = self.prescriber
        return Order(self.rx_number, patient, self.ndc, self.quantity, self.patient.easy_open,
                     sig=self.sig, prescriber=Prescriber(p.name, p.npi, p.dea) if p else None,
                     refills=self.refills, days_supply=self.days_supply, written=written)


class OrdersFile(Model):
    """A file of sample orders: ``[[orders]]`` tables, and the prescriber of those that name
    none."""

    prescriber: PrescriberEntry
    orders: list[OrderEntry] = Field(min_length=1)


def load_orders(path: Path) -> list[OrderEntry]:
    """Read a sample orders file."""
    data = read_toml(path)
    try:
        read = OrdersFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(explain(path, exc.errors(include_url=False), data)) from None
    return [entry if entry.prescriber else entry.model_copy(update={
        "prescriber": read.prescriber}) for entry in read.orders]
