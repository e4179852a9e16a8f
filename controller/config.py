"""Configuration: TOML files in config/, read into pydantic models.

A bad file is refused at start with a message that names the file, the key
and what was expected. Paths in a file are relative to that file's folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from controller.domain.drugs import Formulary, FormularyError, parse_formulary
from controller.domain.ndc import parse_ndc
from controller.domain.stock import LotMixing, RestockPolicy
from controller.reading import ConfigError, Model, explain, mistake, read_text, read_toml
from drivers.registry import UnknownDriverError, drivers_of, find_driver
from drivers.settings import DriverClass, DriverTable

Slug = Annotated[str, Field(pattern=r"^[a-z0-9-]+$", min_length=1, max_length=32)]


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
    store_poll_ms: int = Field(default=10, ge=1, le=1000, description=(
        "where the system cannot tell the site that the store's file was written (Linux "
        "can: inotify), how often it looks whether another process (the CLI) changed the "
        "store, so that the alarms that causes go out at once"))

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
    idle_minutes: float = Field(default=15.0, gt=0, le=480, description=(
        "the console signs a person out after this long without activity (HIPAA's "
        "automatic logoff)"))


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
    data = read_toml(path)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(explain(path, exc.errors(include_url=False), data)) from None
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


def _with_drivers(path: Path, config: Config, data: dict[str, Any]) -> Config:
    """``config`` with each robot's ``driver`` table checked by the model of the driver it
    names (found in the registry), and its channels by what that driver addresses."""
    errors: list[Any] = []
    robots = []
    for number, robot in enumerate(config.robots):
        loc: tuple[int | str, ...] = ("robots", number, "driver")
        table = robot.driver.model_dump()
        cls, wrong = _driver_of(robot.kind, robot.driver.name, (*loc, "name"))
        if cls is None:
            errors += wrong
            continue
        try:
            driver = cls.settings.model_validate(table)
        except ValidationError as exc:
            errors += [{**e, "loc": loc + tuple(e["loc"])}
                       for e in exc.errors(include_url=False)]
            continue
        beyond = [c.channel for c in robot.channels if c.channel > cls.max_channels]
        if beyond:
            errors.append(mistake(("robots", number, "channels"), (
                f"channel(s) {beyond} are beyond what a {robot.kind} driven by "
                f"{robot.driver.name!r} addresses; expected 1-{cls.max_channels}"), beyond))
        robots.append(robot.model_copy(update={"driver": driver}))
    errors += _driver_of("label-printer", config.printer.driver, ("printer", "driver"))[1]
    if errors:
        raise ConfigError(explain(path, errors, data))
    return config.model_copy(update={"robots": robots})


def _driver_of(kind: str, name: str, loc: tuple[int | str, ...]
               ) -> tuple[type[DriverClass] | None, list[Any]]:
    """The registry's driver ``name``, if it drives a ``kind``; otherwise None and the mistake
    at ``loc`` (no such driver, one that cannot be loaded, or another kind's)."""
    try:
        cls = find_driver(name)
    except UnknownDriverError as exc:
        return None, [mistake(loc, str(exc), name)]
    if cls.kind != kind:
        return None, [mistake(loc, (
            f"{name!r} drives a {cls.kind}; a {kind} is driven by one of: "
            f"{', '.join(drivers_of(kind)) or 'none installed'}"), name)]
    return cls, []


