"""Configuration files: the demo loads; each kind of mistake is refused clearly."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from controller.config import load_config
from controller.demo.orders import load_orders
from controller.reading import ConfigError
from controller.robots.floor import make_driver
from drivers.settings import DriverTable
from drivers.tablet_counter.driver import SerialTabletCounter
from drivers.tablet_counter.settings import SerialCounterSettings

CONFIG = Path(__file__).resolve().parent.parent / "config"


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A copy of config/ to spoil."""
    for name in ("demo.toml", "formulary.csv", "demo-orders.toml"):
        shutil.copy(CONFIG / name, tmp_path / name)
    return tmp_path / "demo.toml"


def spoil(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path.name}"
    path.write_text(text.replace(old, new, count))


def test_demo_config_loads_with_its_formulary_and_orders() -> None:
    settings = load_config(CONFIG / "demo.toml")
    assert [r.id for r in settings.config.robots] == ["tc1", "fv1", "fv2"]
    assert len(settings.formulary) >= 25
    assert settings.config.orders is not None
    assert len(load_orders(settings.resolve(settings.config.orders))) >= 10


def test_formulary_is_marked_sample_data() -> None:
    assert "SAMPLE DATA" in (CONFIG / "formulary.csv").read_text().splitlines()[0]


MISTAKES: list[tuple[str, Callable[[Path], None], list[str]]] = [
    ("toml syntax", lambda p: spoil(p, 'id = "demo"', 'id = "demo'),
     ["demo.toml", "is not valid TOML", "line"]),
    ("missing key", lambda p: spoil(p, 'phone = "(217) 555-0142"\n', ""),
     ["key site.phone", "is missing"]),
    ("unknown key", lambda p: spoil(p, "on_hand = 400", "onhand = 400"),
     ["key robots[0] (tc1).channels[0].onhand", "not a known key"]),
    ("wrong type", lambda p: spoil(p, "on_hand = 400", 'on_hand = "lots"'),
     ["key robots[0] (tc1).channels[0].on_hand", "integer", "'lots'"]),
    ("bad date", lambda p: spoil(p, "expiry = 2027-09-30", 'expiry = "soon"'),
     ["channels[0].expiry", "date", "'soon'"]),
    ("bad ndc", lambda p: spoil(p, 'ndc = "00093-7146-01"', 'ndc = "93-7146-1"'),
     ["channels[0].ndc", "5-4-2"]),
    ("ndc not in formulary", lambda p: spoil(p, 'ndc = "00093-7146-01"', 'ndc = "99999-0000-01"'),
     ["robots[0] (tc1).channels[0].ndc", "99999-0000-01 is not in the formulary"]),
    ("unknown driver", lambda p: spoil(p, 'name = "serial-counter", baud = 115200',
                                       'name = "telepathy"'),
     ["robots[0] (tc1).driver", "telepathy", "serial-counter"]),
    ("bad baud", lambda p: spoil(p, "baud = 115200", "baud = 12345"),
     ["robots[0] (tc1).driver.baud", "12345 is not one of"]),
    ("duplicate robot", lambda p: spoil(p, 'id = "fv1"', 'id = "tc1"'),
     ["key robots", "'tc1'", "more than once"]),
    ("duplicate channel", lambda p: spoil(p, "channel = 2\n", "channel = 1\n"),
     ["robots[0] (tc1)", "channel(s) [1]", "more than once"]),
    ("over capacity", lambda p: spoil(p, "on_hand = 400", "on_hand = 4000"),
     ["channels[0]", "on_hand 4000 is more than capacity 600"]),
    ("calibration range", lambda p: spoil(p, "sensitivity = 55", "sensitivity = 0"),
     ["channels[0].calibration.sensitivity", "greater than or equal to 1"]),
    ("bad sim url", lambda p: spoil(p, 'url = "sim:pty"', 'url = "sim:usb"'),
     ["robots[0] (tc1).url", "sim:pty or sim:tcp"]),
    ("filler driver on a counter", lambda p: spoil(
        p, 'driver = { name = "serial-counter", baud = 115200 }',
        'driver = { name = "modbus-filler" }'),
     ["robots[0] (tc1).driver.name", "'modbus-filler' drives a vial-filler",
      "a tablet-counter is driven by one of: serial-counter"]),
    ("printer driver unknown", lambda p: spoil(p, 'url = "sim:tcp"\n\n# The REST',
                                                'url = "sim:tcp"\ndriver = "inkjet"\n\n# The REST'),
     ["key printer.driver", "no driver named 'inkjet'", "zpl-printer"]),
    ("printer driver of a counter", lambda p: spoil(
        p, 'url = "sim:tcp"\n\n# The REST',
        'url = "sim:tcp"\ndriver = "serial-counter"\n\n# The REST'),
     ["key printer.driver", "'serial-counter' drives a tablet-counter", "zpl-printer"]),
    ("counter channel beyond the ICD", lambda p: spoil(p, "channel = 2\n", "channel = 65\n"),
     ["robots[0] (tc1).channels", "channel(s) [65]", "expected 1-64"]),
    ("counter channel without gate", lambda p: spoil(
        p, "calibration = { sensitivity = 55, gate_ms = 40 }",
        "calibration = { sensitivity = 55 }"),
     ["robots[0] (tc1).channels", "need calibration.gate_ms", "channel(s) [1]"]),
    ("filler parity", lambda p: spoil(p, 'parity = "N"', 'parity = "X"'),
     ["robots[2] (fv2).driver.parity", "'E', 'N' or 'O'"]),
    ("filler heartbeat too slow", lambda p: spoil(p, "unit = 3,", "unit = 3, heartbeat_s = 2.5,"),
     ["robots[2] (fv2).driver.heartbeat_s", "less than 2"]),
    ("filler unit", lambda p: spoil(p, "unit = 3,", "unit = 300,"),
     ["robots[2] (fv2).driver.unit", "less than or equal to 247"]),
    ("formulary missing", lambda p: (p.parent / "formulary.csv").unlink(),
     ["key formulary", "formulary.csv", "No such file"]),
    ("formulary bad row", lambda p: spoil(p.parent / "formulary.csv", ",155,1.8,", ",heavy,1.8,"),
     ["formulary.csv: row 1 (line 4, NDC 00093-7146-01), column unit_mass_mg",
      "'heavy' is not a number"]),
]


@pytest.mark.parametrize(("mistake", "make", "expected"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_bad_config_is_refused_naming_file_key_and_expectation(
    demo: Path, mistake: str, make: Callable[[Path], None], expected: list[str]
) -> None:
    make(demo)
    with pytest.raises(ConfigError) as caught:
        load_config(demo)
    message = str(caught.value)
    assert str(demo.parent) in message
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere\.toml: cannot read the file"):
        load_config(tmp_path / "nowhere.toml")


def test_every_mistake_in_a_file_is_reported_at_once(demo: Path) -> None:
    spoil(demo, "on_hand = 400", 'on_hand = "lots"')
    spoil(demo, 'phone = "(217) 555-0142"\n', "")
    with pytest.raises(ConfigError) as caught:
        load_config(demo)
    assert len(str(caught.value).splitlines()) == 2


def test_bad_order_in_orders_file_is_refused(demo: Path) -> None:
    orders = demo.parent / "demo-orders.toml"
    spoil(orders, "quantity = 30", "quantity = 0")
    with pytest.raises(ConfigError, match=r"orders\[0\]\.quantity: .*greater than or equal to 1"):
        load_orders(orders)


def test_a_robots_driver_is_built_from_its_drivers_own_settings(demo: Path) -> None:
    spoil(demo, 'name = "serial-counter", baud = 115200', 'name = "serial-counter", baud = 9600')
    settings = load_config(demo)
    robot = settings.config.robots[0]
    assert isinstance(robot.driver, SerialCounterSettings) and robot.driver.baud == 9600
    driver = make_driver(robot, "socket://127.0.0.1:9")
    assert isinstance(driver, SerialTabletCounter) and driver.baud == 9600
    # A Robot that did not come through load_config is checked by the driver's model too.
    table = DriverTable.model_validate({"name": "serial-counter", "baud": 12345})
    raw = robot.model_copy(update={"driver": table})
    with pytest.raises(ValueError, match="baud 12345 is not one of"):
        make_driver(raw, "socket://127.0.0.1:9")
