"""Configuration: TOML files in config/, read into pydantic models.

A bad file is refused at start with a message that names the file, the key
and what was expected. Paths in a file are relative to that file's folder.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from controller.domain.drugs import Formulary, FormularyError, parse_formulary
from controller.domain.ndc import parse_ndc
from controller.domain.orders import MAX_QUANTITY, Order, Patient, Prescriber
from controller.domain.stock import LotMixing, RestockPolicy
from drivers.registry import UnknownDriverError, drivers_of, find_driver
from drivers.settings import DriverTable

Slug = Annotated[str, Field(pattern=r"^[a-z0-9-]+$", min_length=1, max_length=32)]


class ConfigError(ValueError):
    """A configuration file that cannot be used, with every reason why."""


class Model(BaseModel):
    """Base of every config model: unknown keys are mistakes; a number is finite (TOML reads
    ``nan`` and ``inf``, which would pass any comparison-based check unnoticed)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Site(Model):
    """The pharmacy."""

    id: Slug
    name: str = Field(min_length=1)
    address: str = Field(min_length=1)
    phone: str = Field(pattern=r"^[0-9+()\- .]{7,20}$")
    pharmacist: str | None = Field(default=None, min_length=1, description=(
        "the pharmacist in charge, named on labels while no pharmacist has signed on duty"))


class ChannelCalibration(Model):
    """A channel's or cell's counting sensor settings, as the ICDs bound them.

    A tablet counter needs ``gate_ms``; a vial filler has none (its cells'
    expected tablet mass comes from the formulary).
    """

    sensitivity: int = Field(ge=1, le=100)
    gate_ms: int | None = Field(default=None, ge=1, le=500)


class Channel(Model):
    """A robot's channel or cell and the bin of stock it holds."""

    channel: int = Field(ge=1, le=240)
    ndc: str
    lot: str = Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9-]+$")
    expiry: date
    on_hand: int = Field(ge=0)
    par: int = Field(ge=0)
    capacity: int = Field(gt=0)
    calibration: ChannelCalibration

    @field_validator("ndc")
    @classmethod
    def _ndc(cls, value: str) -> str:
        return parse_ndc(value)

    @model_validator(mode="after")
    def _fits(self) -> Self:
        if self.on_hand > self.capacity:
            raise ValueError(f"on_hand {self.on_hand} is more than capacity {self.capacity}")
        if self.par >= self.capacity:
            raise ValueError(f"par {self.par} must be below capacity {self.capacity}")
        return self


class SimulatorSettings(Model):
    """How to run a robot's simulator when its url is ``sim:pty`` or ``sim:tcp``."""

    seed: int = 0
    time_scale: float = Field(default=1.0, gt=0, le=1000)
    scale_noise_mg: float = Field(default=1.0, ge=0)
    vials: int = Field(default=200, ge=0, description="vials in each hopper (vial fillers)")


class Robot(Model):
    """One robot: how to reach it and what its bins hold."""

    id: Slug
    kind: Literal["tablet-counter", "vial-filler"]
    url: str = Field(min_length=1, description=(
        "a counter: /dev/ttyUSB0 or socket://host:port; a filler: modbus-tcp://host:port or "
        "modbus-rtu:/dev/ttyUSB0; either: sim:pty or sim:tcp"))
    driver: DriverTable = Field(description=(
        "the driver's name in the registry and its settings; load_config checks them with "
        "that driver's own model (a DriverSettings)"))
    scale_noise_mg: float = Field(default=2.0, gt=0,
                                  description="1-sigma scale noise the weight check allows")
    simulator: SimulatorSettings = SimulatorSettings()
    channels: list[Channel] = Field(min_length=1)

    @property
    def simulated(self) -> bool:
        """True when rxfill starts this robot's simulator itself."""
        return self.url.startswith("sim:")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value.startswith("sim:") and value not in ("sim:pty", "sim:tcp"):
            raise ValueError(f"{value!r}: a simulated robot's url is sim:pty or sim:tcp")
        return value

    @field_validator("channels")
    @classmethod
    def _unique_channels(cls, channels: list[Channel], info: ValidationInfo) -> list[Channel]:
        numbers = [c.channel for c in channels]
        repeated = sorted({n for n in numbers if numbers.count(n) > 1})
        if repeated:
            raise ValueError(f"channel(s) {repeated} appear more than once")
        kind = info.data.get("kind")
        if kind == "tablet-counter" and any(c.calibration.gate_ms is None for c in channels):
            missing = [c.channel for c in channels if c.calibration.gate_ms is None]
            raise ValueError(f"a tablet counter's channels need calibration.gate_ms "
                             f"(missing on channel(s) {missing})")
        return channels


class StoreSettings(Model):
    """Where the store lives."""

    path: Path = Path("var/rxfill.sqlite")


class StockSettings(Model):
    """Restocking rules."""

    expiring_days: int = Field(default=30, ge=0, le=365, description=(
        "a bottle expiring within this many days is refused; a loaded lot alarms"))
    lot_mixing: LotMixing = Field(default=LotMixing.FEFO, description=(
        "fefo: a new lot may join an older one, which is dispensed first; refuse: it may not"))

    @property
    def policy(self) -> RestockPolicy:
        """The domain's restock policy."""
        return RestockPolicy(expiring_days=self.expiring_days, mixing=self.lot_mixing)


class AlarmSettings(Model):
    """When alarms are raised and cleared."""

    low_deadband_pct: float = Field(default=10.0, ge=0, le=100, description=(
        "a bin_low clears only above par plus this share of par"))
    hopper_low_vials: int = Field(default=10, ge=0, description=(
        "a vial filler's hopper with this many vials or fewer raises vial_hopper_low"))
    output_waiting_s: float = Field(default=120.0, gt=0, le=86_400, description=(
        "a vial or tablets waiting this long in a robot's output raise output_waiting"))


class MqttSettings(Model):
    """The broker the supervisor publishes to (icd/mqtt-alarms.md)."""

    broker: str = Field(default="embedded", description=(
        "embedded (an amqtt broker in the supervisor's process, on loopback), "
        "mqtt://HOST[:PORT], mqtts://HOST[:PORT], or off"))
    embedded_port: int = Field(default=0, ge=0, le=65535,
                               description="the embedded broker's port; 0 picks a free one")
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = Field(default=None, description="CA certificates for mqtts://")
    keepalive_s: int = Field(default=5, ge=2, le=300, description=(
        "short, so that a half-open link is noticed within 1.5 × this"))

    @field_validator("broker")
    @classmethod
    def _broker(cls, value: str) -> str:
        if value in ("embedded", "off"):
            return value
        try:
            broker_address(value)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        return value


def broker_address(url: str) -> tuple[str, int, bool]:
    """(host, port, tls) of ``mqtt://HOST[:PORT]`` or ``mqtts://HOST[:PORT]``."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"broker {url!r}: expected embedded, off, mqtt://HOST[:PORT] or "
                         f"mqtts://HOST[:PORT]")
    host, colon, port = rest.rstrip("/").rpartition(":")
    if not colon:
        host, port = rest.rstrip("/"), ""
    if not host or (port and not port.isdigit()):
        raise ValueError(f"broker {url!r}: expected mqtt://HOST[:PORT] with a numeric port")
    tls = scheme == "mqtts"
    return host, int(port) if port else (8883 if tls else 1883), tls


class PrinterSettings(Model):
    """The label printer at the filling station."""

    url: str = Field(default="sim:tcp", description=(
        "tcp://HOST[:PORT] (raw ZPL, 9100 by default), or sim:tcp for a simulated printer"))
    driver: str = "zpl-printer"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value != "sim:tcp" and not value.startswith("tcp://"):
            raise ValueError(f"printer url {value!r}: expected tcp://HOST[:PORT] or sim:tcp")
        return value


class ApiSettings(Model):
    """Where the REST API listens (``rxfill run``, ``rxfill demo --serve``)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8470, ge=0, le=65535, description="0 picks a free port")
    token_hours: float = Field(default=8.0, gt=0, le=24, description=(
        "how long a sign-in lasts"))


class AuditSettings(Model):
    """Where the key that anchors the audit trail lives (outside the store)."""

    key_file: Path = Field(default=Path("var/audit.key"), description=(
        "created (readable by its owner only) when the site first runs; RXFILL_AUDIT_KEY in "
        "the environment takes its place"))


class LoggingSettings(Model):
    """Log level and format (auto: readable on a terminal, JSON lines otherwise)."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class Config(Model):
    """A whole rxfill configuration file."""

    site: Site
    formulary: Path
    store: StoreSettings = StoreSettings()
    logging: LoggingSettings = LoggingSettings()
    stock: StockSettings = StockSettings()
    alarms: AlarmSettings = AlarmSettings()
    mqtt: MqttSettings = MqttSettings()
    printer: PrinterSettings = PrinterSettings()
    api: ApiSettings = ApiSettings()
    audit: AuditSettings = AuditSettings()
    orders: Path | None = Field(default=None, description="sample orders the demo fills")
    robots: list[Robot] = Field(min_length=1)

    @field_validator("robots")
    @classmethod
    def _unique_robots(cls, robots: list[Robot]) -> list[Robot]:
        ids = [r.id for r in robots]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"robot id(s) {repeated} appear more than once")
        return robots


@dataclass(frozen=True)
class Settings:
    """A checked configuration: the file, its models and its formulary."""

    path: Path
    config: Config
    formulary: Formulary

    def resolve(self, path: Path) -> Path:
        """``path`` taken relative to the configuration file's folder."""
        return path if path.is_absolute() else (self.path.parent / path)


def load_config(path: Path) -> Settings:
    """Read, validate and cross-check a configuration file."""
    data = _read_toml(path)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_explain(path, exc.errors(include_url=False), data)) from None
    config = _with_drivers(path, config, data)
    settings = Settings(path, config, Formulary([]))
    formulary_path = settings.resolve(config.formulary)
    try:
        formulary = parse_formulary(read_text(formulary_path, "a formulary CSV file"),
                                    str(formulary_path))
    except ConfigError as exc:
        raise ConfigError(f"{path}: key formulary: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: key formulary: cannot read {formulary_path}: "
                          f"{exc.strerror}; expected a formulary CSV file") from None
    except FormularyError as exc:
        raise ConfigError(f"{path}: key formulary: {exc}") from None
    problems = [
        f"{path}: key robots[{r}] ({robot.id}).channels[{c}].ndc: NDC {channel.ndc} is not in "
        f"the formulary {formulary_path}; expected one of its NDCs"
        for r, robot in enumerate(config.robots)
        for c, channel in enumerate(robot.channels)
        if channel.ndc not in formulary
    ]
    if problems:
        raise ConfigError("\n".join(problems))
    return Settings(path, config, formulary)


def read_text(path: Path, expected: str) -> str:
    """The file's text; ConfigError, naming it, when it is not UTF-8 text (or a file)."""
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory; expected {expected}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file: {exc.strerror}; "
                          f"expected {expected}") from None
    if b"\0" in raw:
        raise ConfigError(f"{path}: is a binary file (it holds NUL bytes); expected {expected} "
                          f"in UTF-8") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: line {line}: byte 0x{raw[exc.start]:02x} is not UTF-8; "
                          f"expected {expected} in UTF-8 (saved in another encoding?)") from None


def _read_toml(path: Path) -> dict[str, Any]:
    text = read_text(path, "a TOML configuration file")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: is not valid TOML: {exc}") from None


def _with_drivers(path: Path, config: Config, data: dict[str, Any]) -> Config:
    """``config`` with each robot's ``driver`` table checked by the model of the driver it
    names (found in the registry), and its channels by what that driver addresses."""
    errors: list[Any] = []
    robots = []
    for number, robot in enumerate(config.robots):
        loc: tuple[int | str, ...] = ("robots", number, "driver")
        table = robot.driver.model_dump()
        try:
            cls = find_driver(robot.driver.name)
        except (UnknownDriverError, ImportError) as exc:
            errors.append(_error((*loc, "name"), f"{exc}", robot.driver.name))
            continue
        if cls.kind != robot.kind:
            errors.append(_error((*loc, "name"), (
                f"{robot.driver.name!r} drives a {cls.kind}; a {robot.kind} is driven by one "
                f"of: {', '.join(drivers_of(robot.kind)) or 'none installed'}"),
                robot.driver.name))
            continue
        try:
            driver = cls.settings.model_validate(table)
        except ValidationError as exc:
            errors += [{**e, "loc": loc + tuple(e["loc"])}
                       for e in exc.errors(include_url=False)]
            continue
        beyond = [c.channel for c in robot.channels if c.channel > cls.max_channels]
        if beyond:
            errors.append(_error(("robots", number, "channels"), (
                f"channel(s) {beyond} are beyond what a {robot.kind} driven by "
                f"{robot.driver.name!r} addresses; expected 1-{cls.max_channels}"), beyond))
        robots.append(robot.model_copy(update={"driver": driver}))
    if errors:
        raise ConfigError(_explain(path, errors, data))
    return config.model_copy(update={"robots": robots})


def _error(loc: tuple[int | str, ...], message: str, got: Any) -> dict[str, Any]:
    """A mistake found after pydantic's pass, in the shape of pydantic's errors."""
    return {"loc": loc, "msg": message, "type": "value_error", "input": got}


def _explain(path: Path, errors: list[Any], data: Any) -> str:
    """One line per mistake: file, key (robots named by id), what was wrong and expected."""
    lines = []
    for error in errors:
        key = _key(error["loc"], data)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "is missing; it is required"
        elif error["type"] == "extra_forbidden":
            message = "is not a known key (misspelt?)"
        shown = error["type"] != "missing" and not isinstance(error["input"], dict | list)
        got = f" (got {error['input']!r:.60})" if shown else ""
        lines.append(f"{path}: key {key}: {message}{got}")
    return "\n".join(lines)


def _key(loc: tuple[int | str, ...], data: Any) -> str:
    """The dotted key of ``loc``, with each list item named by its ``id`` where it has one."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int):
            node = node[item] if isinstance(node, list) and item < len(node) else None
            name = node.get("id") if isinstance(node, dict) else None
            parts[-1] += f"[{item}]" + (f" ({name})" if isinstance(name, str) else "")
        elif isinstance(node, dict) and item not in node and node.get("name") == item:
            continue  # pydantic names the union member by its tag; the file has no such key
        else:
            parts.append(item)
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts) or "(top level)"


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
    data = _read_toml(path)
    try:
        read = OrdersFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_explain(path, exc.errors(include_url=False), data)) from None
    return [entry if entry.prescriber else entry.model_copy(update={
        "prescriber": read.prescriber}) for entry in read.orders]
