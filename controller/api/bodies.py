"""The REST API's bodies: what each request takes (every field checked, unknown keys refused)
and how an order is shown."""

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from controller.domain.ndc import NdcError, parse_ndc
from controller.domain.orders import MAX_QUANTITY, Fulfilment, Order, Patient, Prescriber, Priority
from controller.domain.prescriptions import MAX_DAYS_SUPPLY, MAX_REFILLS
from controller.domain.text import text_problem
from controller.store import OrderRecord


def _plain_text(value: str) -> str:
    if why := text_problem(value):
        raise ValueError(why)
    return value


Line = Annotated[str, AfterValidator(_plain_text)]


class Body(BaseModel):
    """Request bodies: unknown keys are mistakes; text is trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PatientIn(Body):
    id: Line = Field(min_length=1, max_length=40, description="the pharmacy's patient id")
    name: Line = Field(min_length=1, max_length=200)
    birth_date: date
    address: Line | None = Field(default=None, max_length=400,
                                 description="where a mail order goes")
    easy_open: bool = Field(default=False, description="easy-open caps, not child-resistant")


class PrescriberIn(Body):
    name: Line = Field(min_length=1, max_length=200)
    npi: str = Field(pattern=r"^[0-9]{10}$", description="10 digits, the last a Luhn check")
    dea: str | None = Field(default=None, pattern=r"^[A-Za-z][A-Za-z9][0-9]{7}$",
                            description="needed for a scheduled drug")


class OrderIn(Body):
    """A prescription to fill."""

    rx_number: str = Field(pattern=r"^[A-Za-z0-9-]{1,20}$")
    patient: PatientIn
    ndc: str = Field(description="11 digits, 5-4-2 with dashes or bare")
    quantity: int = Field(strict=True, ge=1, le=MAX_QUANTITY)
    sig: Line = Field(min_length=1, max_length=500, description="the directions")
    prescriber: PrescriberIn
    refills: int = Field(default=0, strict=True, ge=0, le=MAX_REFILLS)
    fill_number: int = Field(default=0, strict=True, ge=0, le=MAX_REFILLS, description=(
        "0 for the prescription's original fill, n for its n-th refill; the same "
        "(rx_number, fill_number) sent again is the same order"))
    days_supply: int | None = Field(default=None, strict=True, ge=1, le=MAX_DAYS_SUPPLY)
    priority: Priority = Priority.ROUTINE
    fulfilment: Fulfilment = Fulfilment.PICKUP
    written: date | None = Field(default=None, description="the date the prescriber wrote it")

    @field_validator("ndc")
    @classmethod
    def _ndc(cls, value: str) -> str:
        try:
            return parse_ndc(value)
        except NdcError as exc:
            raise ValueError(str(exc)) from None

    def to_order(self) -> Order:
        p, d = self.patient, self.prescriber
        return Order(
            rx_number=self.rx_number,
            patient=Patient(p.id, p.name, p.birth_date, p.address), ndc=self.ndc,
            quantity=self.quantity, easy_open=p.easy_open, sig=self.sig,
            prescriber=Prescriber(d.name, d.npi, d.dea.upper() if d.dea else None),
            refills=self.refills, days_supply=self.days_supply, priority=self.priority,
            fulfilment=self.fulfilment, written=self.written, fill_number=self.fill_number)


class SignIn(Body):
    name: str = Field(min_length=1, max_length=80)
    password: str = Field(min_length=1, max_length=1000)


class Cancel(Body):
    reason: Line = Field(min_length=1, max_length=500)
    tablets: Literal["returned", "wasted"] | None = Field(default=None, description=(
        "an order with a filled vial (filled, labeled, verified): what became of the vial's "
        "tablets; a pharmacist's to say"))


class Retry(Body):
    robot: str | None = Field(default=None, description="a robot to send it to; any if absent")


class HandCount(Body):
    count: int = Field(strict=True, ge=1, le=MAX_QUANTITY)
    weight_mg: float = Field(gt=0, allow_inf_nan=False,
                             description="the vial's net weight on the bench scale")
    robot: str | None = Field(default=None, description="the bin counted from (with bin); "
                                                        "the last fill's bin if absent")
    bin: int | None = Field(default=None, ge=1)
    found: int | None = Field(default=None, strict=True, ge=0, le=MAX_QUANTITY, description=(
        "when the robot left a vial its scale could not confirm: the tablets found in it"))


class Reprint(Body):
    reason: Line | None = Field(default=None, max_length=500,
                                description="needed once the label has printed")


class Scan(Body):
    scanned: str = Field(min_length=1, max_length=64, description="what the scanner read")


class Witness(Body):
    count: int = Field(strict=True, ge=0, le=MAX_QUANTITY)


class Reject(Body):
    reason: Line = Field(min_length=1, max_length=500)
    fill_again: bool = Field(description="fill it again (QUEUED), or give it up (CANCELLED)")
    tablets: Literal["returned", "wasted"] = Field(
        description="what became of the rejected vial's tablets")


class ReleaseIn(Body):
    destination: Literal["pickup", "shipping"]
    carrier: Line | None = Field(default=None, max_length=40)
    tracking: Line | None = Field(default=None, max_length=60)


def order_out(order: OrderRecord) -> dict[str, Any]:
    """An order as the API shows it."""
    return {
        "id": order.id, "rx_number": order.rx_number, "state": order.state,
        "reason": order.reason, "ndc": order.ndc, "quantity": order.quantity,
        "patient": {"id": order.patient_id, "name": order.patient_name,
                    "birth_date": order.patient_birth_date.isoformat(),
                    "address": order.patient_address, "easy_open": order.easy_open},
        "sig": order.sig,
        "prescriber": {"name": order.prescriber_name, "npi": order.prescriber_npi,
                       "dea": order.prescriber_dea},
        "refills": order.refills, "fill_number": order.fill_number,
        "days_supply": order.days_supply, "schedule": order.schedule,
        "priority": order.priority, "fulfilment": order.fulfilment,
        "written": order.written_on.isoformat() if order.written_on else None,
        "received_at": order.received_at.isoformat(),
        "updated_at": order.updated_at.isoformat(),
    }


