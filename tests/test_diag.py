"""``rxfill drivers`` and ``rxfill diag ping``, run as a person runs them, against simulators
on real ptys and sockets."""

from __future__ import annotations

import subprocess
from pathlib import Path

from controller.store.lock import supervising
from tests.floors import ATORVASTATIN, write_config
from tests.test_cli import RXFILL, start_simulator, stop

DEMO = Path(__file__).resolve().parent.parent / "config" / "demo.toml"


def rxfill(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RXFILL, *args], capture_output=True, text=True, timeout=60)


def test_drivers_names_each_installed_driver_its_kind_and_package() -> None:
    run = rxfill("drivers")
    assert run.returncode == 0, run.stderr
    rows = {line.split()[0]: line.split() for line in run.stdout.splitlines()[1:]}
    assert rows["serial-counter"][1] == "tablet-counter"
    assert rows["modbus-filler"][1] == "vial-filler"
    assert rows["zpl-printer"][1] == "label-printer"
    assert rows["serial-counter"][2] == "rxfill"
    assert rows["serial-counter"][-1] == "drivers.tablet_counter.driver:SerialTabletCounter"


def test_ping_says_who_a_simulated_robot_is_and_how_fast_it_answers() -> None:
    counter = rxfill("diag", "ping", "tc1", "--count", "5", "--config", str(DEMO))
    assert counter.returncode == 0, counter.stderr
    who, times = counter.stdout.splitlines()
    assert who.startswith("tc1 at /dev/") and "(simulated): vendor RXSIM" in who
    assert "firmware 1.4.2" in who and "channels 5" in who
    assert times.startswith("5 status requests: round trip min ") and "median" in times
    filler = rxfill("diag", "ping", "fv1", "--count", "3", "--config", str(DEMO))
    assert filler.returncode == 0, filler.stderr
    assert "fv1 at modbus-tcp://" in filler.stdout and "cells " in filler.stdout


def test_ping_of_a_robot_a_running_site_holds_is_refused(tmp_path: Path) -> None:
    proc, url = start_simulator("--listen", "tcp://127.0.0.1:0", "--channels", "3")
    try:
        settings = write_config(tmp_path, [{"id": "tc9", "url": url, "seed": 1,
                                            "ndc": ATORVASTATIN, "on_hand": 100}])
        store = tmp_path / "site.sqlite"
        args = ("diag", "ping", "tc9", "--count", "3", "--config", str(settings.path),
                "--store", str(store))
        with supervising(store):
            refused = rxfill(*args)
        assert refused.returncode == 1
        assert "refused: store" in refused.stderr and "in use by another supervisor" in (
            refused.stderr)
        answered = rxfill(*args)
        assert answered.returncode == 0, answered.stderr
        assert answered.stdout.startswith(f"tc9 at {url}: vendor RXSIM")
    finally:
        stop(proc)


def test_ping_of_an_unknown_robot_names_the_robots_there_are() -> None:
    run = rxfill("diag", "ping", "tc7", "--config", str(DEMO))
    assert run.returncode == 2
    assert "no robot 'tc7'" in run.stderr and "expected one of tc1, fv1, fv2" in run.stderr


def test_ping_of_a_robot_that_is_not_there_says_so(tmp_path: Path) -> None:
    settings = write_config(tmp_path, [{"id": "tc9", "url": "socket://127.0.0.1:9", "seed": 1,
                                        "ndc": ATORVASTATIN, "on_hand": 100}])
    run = rxfill("diag", "ping", "tc9", "--config", str(settings.path),
                 "--store", str(tmp_path / "s.sqlite"))
    assert run.returncode == 1
    assert run.stderr.startswith("error: tc9 did not answer: tc9: cannot open socket:")
