"""Configurations of simulated floors for supervisor tests, written as real TOML files."""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path

from controller.config import Settings, load_config
from controller.domain.orders import Order, Patient
from tests.helpers import FORMULARY

ATORVASTATIN, LISINOPRIL = "00093-7146-01", "68180-0513-01"

ROBOT = """
[[robots]]
id = "{id}"
kind = "tablet-counter"
url = "{url}"
driver = {{ name = "serial-counter" }}
scale_noise_mg = 1.0
simulator = {{ seed = {seed}, time_scale = 50, scale_noise_mg = 1.0 }}
[[robots.channels]]
channel = {channel}
ndc = "{ndc}"
lot = "L1"
expiry = 2030-01-01
on_hand = {on_hand}
par = 50
capacity = 900
calibration = {{ sensitivity = 50, gate_ms = 40 }}
"""


FILLER = """
[[robots]]
id = "{id}"
kind = "vial-filler"
url = "{url}"
driver = {{ name = "modbus-filler", parity = "N" }}
scale_noise_mg = 1.0
simulator = {{ seed = {seed}, time_scale = {time_scale}, scale_noise_mg = 1.0, vials = 50 }}
[[robots.channels]]
channel = {channel}
ndc = "{ndc}"
lot = "L2"
expiry = 2030-01-01
on_hand = {on_hand}
par = 50
capacity = 900
calibration = {{ sensitivity = 50 }}
"""


def write_config(tmp_path: Path, robots: list[dict[str, object]], *, site: str = "test",
                 extra: str = "", site_extra: str = "") -> Settings:
    """A configuration of counters (and vial fillers: ``"kind": "vial-filler"``).

    A filler's machine runs 20 times fast unless the robot says ``time_scale``.
    ``extra`` is TOML put before the robots (``[mqtt]``, ``[stock]`` sections);
    ``site_extra`` more keys of ``[site]``.
    """
    text = f"""
formulary = "{FORMULARY}"
[site]
id = "{site}"
name = "Test Pharmacy"
address = "1 Test Road"
phone = "555-0100"
""" + site_extra + "\n" + extra + "".join(
        (FILLER if robot.get("kind") == "vial-filler" else ROBOT).format(
        **{"channel": 1, "time_scale": 20, **robot}) for robot in robots)
    path = tmp_path / "rxfill.toml"
    path.write_text(text)
    return load_config(path)


_RX = itertools.count(100)


def order(ndc: str, quantity: int, rx: str | None = None, easy_open: bool = False) -> Order:
    """An order for a made-up patient; each its own prescription unless ``rx`` says."""
    return Order(rx or f"RX{next(_RX)}", Patient("P1", "Pat Example", date(1960, 1, 2)), ndc,
                 quantity, easy_open)
