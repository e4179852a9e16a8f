"""A driver from another package: registered, configured and run exactly like ours.

The test writes a small vendor package in a temporary folder (its own pyproject.toml with an
``rxfill.drivers`` entry point, and the installed metadata pip would write for it), puts it on
the path, and runs rxfill's conformance kit and the demo's fills through it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import demo_config

ROOT = Path(__file__).resolve().parent.parent

DRIVER = '''\
"""Acme's tablet counter: the vendor ICD, and a journal of every count it is asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from drivers.settings import DriverSettings
from drivers.tablet_counter.driver import SerialTabletCounter


class AcmeCounterSettings(DriverSettings):
    """Acme's driver table: where its journal is."""

    name: Literal["acme-counter"] = "acme-counter"
    journal: Path = Field(description="a file the driver notes every count in")


class AcmeCounter(SerialTabletCounter):
    """Acme's counter speaks the vendor ICD and keeps a journal."""

    settings = AcmeCounterSettings

    @classmethod
    def configured(cls, settings: AcmeCounterSettings, *, name: str, url: str,
                   time_scale: float = 1.0) -> AcmeCounter:
        driver = cls(name=name, url=url)
        driver.journal = settings.journal
        return driver

    journal: Path | None = None

    async def count(self, job: str, channel: int, quantity: int) -> None:
        if self.journal is not None:
            with self.journal.open("a") as out:
                out.write(f"{self.name} {job} channel {channel} quantity {quantity}\\n")
        await super().count(job, channel, quantity)
'''

PYPROJECT = '''\
[project]
name = "acme-rxfill"
version = "0.1"
dependencies = ["rxfill"]

[project.entry-points."rxfill.drivers"]
acme-counter = "acme_rxfill.driver:AcmeCounter"
'''


@pytest.fixture
def vendor(tmp_path: Path) -> Path:
    """The vendor's package, as pip would install it: the module and its dist-info."""
    folder = tmp_path / "site-packages"
    (folder / "acme_rxfill").mkdir(parents=True)
    (folder / "acme_rxfill" / "__init__.py").write_text('"""Acme\'s rxfill drivers."""\n')
    (folder / "acme_rxfill" / "driver.py").write_text(DRIVER)
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    info = folder / "acme_rxfill-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-rxfill\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[rxfill.drivers]\nacme-counter = acme_rxfill.driver:AcmeCounter\n")
    return folder


def _env(vendor: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(vendor), str(ROOT)])}


def test_the_conformance_kit_runs_against_a_vendors_driver(vendor: Path,
                                                          tmp_path: Path) -> None:
    journal = tmp_path / "kit-journal.txt"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/conformance/test_tablet_counter_kit.py",
         "--driver", "acme-counter", "--driver-settings", f'journal = "{journal}"',
         "-p", "no:cacheprovider", "-p", "no:xdist", "-v",
         "-o", "addopts="], cwd=ROOT, env=_env(vendor), capture_output=True, text=True,
        timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    ran = re.findall(r"\[(?:serial|tcp)-acme-counter[^]]*\] PASSED", run.stdout)
    summary = re.search(r"(\d+) passed", run.stdout)
    assert summary is not None and len(ran) == int(summary[1]) >= 10, run.stdout[-3000:]
    assert "kit-acme-counter" in journal.read_text()  # the kit ran the vendor's class


def test_a_robot_configured_with_a_vendors_driver_fills_orders(vendor: Path,
                                                               tmp_path: Path) -> None:
    journal = tmp_path / "journal.txt"
    config = demo_config(tmp_path, site="vendor-driver")
    text = config.read_text()
    ours = 'driver = { name = "serial-counter", baud = 115200 }'
    assert ours in text
    config.write_text(text.replace(ours, f'driver = {{ name = "acme-counter", journal = '
                                         f'"{journal}" }}'))
    run = subprocess.run([sys.executable, "-m", "controller", "demo", "--config", str(config),
                          "--mqtt", "off", "--store", str(tmp_path / "store.sqlite")],
                         cwd=tmp_path, env=_env(vendor), capture_output=True, text=True,
                         timeout=180)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert run.stdout.rstrip().splitlines()[-1].startswith("demo done: 10 of 14 orders released")
    counted = journal.read_text().splitlines()
    assert counted and all(line.startswith("tc1 ") for line in counted)


def _config_check(vendor: Path, folder: Path, tc1_driver: str) -> tuple[int, str]:
    """``rxfill config check`` of the demo's site with tc1's driver table ``tc1_driver``, the
    vendor's package on the path: its exit code, and what it said."""
    config = demo_config(folder, site="vendor-driver")
    config.write_text(config.read_text().replace(
        'driver = { name = "serial-counter", baud = 115200 }', f"driver = {tc1_driver}"))
    run = subprocess.run([sys.executable, "-m", "controller", "config", "check", str(config)],
                         cwd=folder, env=_env(vendor), capture_output=True, text=True,
                         timeout=60)
    return run.returncode, run.stderr + run.stdout


def test_a_vendors_driver_table_is_checked_by_the_vendors_model(vendor: Path,
                                                                tmp_path: Path) -> None:
    code, said = _config_check(vendor, tmp_path, '{ name = "acme-counter", jornal = "x.txt" }')
    assert code != 0
    assert "key robots[0] (tc1).driver.journal: is missing" in said, said
    assert "key robots[0] (tc1).driver.jornal: is not a known key" in said, said


def test_a_broken_vendor_package_is_named_not_a_traceback(vendor: Path, tmp_path: Path) -> None:
    (vendor / "acme_rxfill-0.1.dist-info" / "entry_points.txt").write_text(
        "[rxfill.drivers]\nacme-counter = acme_rxfill.driver:NoSuchCounter\n")
    code, said = _config_check(vendor, tmp_path, '{ name = "acme-counter", journal = "x.txt" }')
    assert code != 0 and "Traceback" not in said, said
    assert "key robots[0] (tc1).driver.name: entry point 'acme-counter' " in said, said
    assert "cannot be loaded: AttributeError" in said, said
