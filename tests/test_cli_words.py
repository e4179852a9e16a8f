"""The command line in a new user's hands: --version, ports in use, simulators' arguments."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.tablet_counter.driver import SerialTabletCounter
from simulators.commands import COUNTER_COMMANDS, FILLER_COMMANDS, apply
from simulators.tablet_counter.server import CounterSimulator
from simulators.vial_filler.server import FillerSimulator
from tests.helpers import FORMULARY, cli_env, until_end
from tests.test_cli import RXFILL


def rxfill(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RXFILL, *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd, env=cli_env(), stdin=subprocess.DEVNULL)


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as held:
        yield held.getsockname()[1]


def one_line(run: subprocess.CompletedProcess[str], *expected: str) -> None:
    said = run.stderr.strip()
    assert run.returncode == 2, (run.returncode, said)
    assert len(said.splitlines()) == 1 and "Traceback" not in said, said
    for text in expected:
        assert text in said, said


def test_version(tmp_path: Path) -> None:
    run = rxfill("--version", cwd=tmp_path)
    assert run.returncode == 0 and run.stdout.startswith("rxfill ")
    assert run.stdout.split()[1][0].isdigit()


def test_run_on_a_port_in_use_is_one_line(tmp_path: Path, taken_port: int) -> None:
    one_line(rxfill("run", "--port", str(taken_port), "--store", str(tmp_path / "s.sqlite"),
                    cwd=tmp_path), f"127.0.0.1:{taken_port}", "in use")
    assert not (tmp_path / "s.sqlite").exists()  # refused before the store was made


@pytest.mark.parametrize("kind", ["counter", "filler"])
def test_a_simulator_on_a_busy_or_bad_port_is_one_line(tmp_path: Path, taken_port: int,
                                                       kind: str) -> None:
    scheme = "tcp" if kind == "counter" else "modbus-tcp"
    one_line(rxfill("simulate", kind, "--listen", f"{scheme}://127.0.0.1:{taken_port}",
                    cwd=tmp_path), "in use")
    one_line(rxfill("simulate", kind, "--listen", f"{scheme}://127.0.0.1:99999",
                    cwd=tmp_path), "0-65535")


@pytest.mark.parametrize(("line", "says"), [
    ("stock 99 5", "channel 99: this counter has channels 1-4"),
    ("stock 1 -5", "N is -5; expected 0 or more"),
    ("jam -3", "K is -3; expected 0 or more"),
    ("drop x", "N is 'x'; expected a whole number"),
    ("empty 0", "channel 0"),
])
def test_counter_fault_commands_refuse_bad_arguments_in_words(line: str, says: str) -> None:
    sim = CounterSimulator(channels=4, seed=1)
    before = {n: c.stock for n, c in sim.device.channels.items()}
    answer = apply(COUNTER_COMMANDS, sim, line)
    assert answer.startswith(f"cannot do {line!r}") and says in answer, answer
    assert {n: c.stock for n, c in sim.device.channels.items()} == before


@pytest.mark.parametrize(("line", "says"), [
    ("stock 99 5", "cell 99: this filler has cells 1-"),
    ("slow -1", "SECONDS is -1.0; expected 0 or more"),
    ("slow nan", "expected a number"),
    ("slow inf", "expected a number"),
    ("vials 20 -1", "N is -1"),
])
def test_filler_fault_commands_refuse_bad_arguments_in_words(line: str, says: str) -> None:
    sim = FillerSimulator(seed=1)
    answer = apply(FILLER_COMMANDS, sim, line)
    assert answer.startswith(f"cannot do {line!r}") and says in answer, answer
    assert sim.reply_delay_s == 0
    assert apply(FILLER_COMMANDS, sim, "slow 0.5") == "ok: slow 0.5"


async def test_a_standalone_simulator_weighs_the_formularys_tablets(tmp_path: Path) -> None:
    formulary = FORMULARY
    process = await asyncio.create_subprocess_exec(
        *RXFILL, "simulate", "counter", "--listen", "tcp://127.0.0.1:0", "--time-scale", "50",
        "--formulary", str(formulary), "--drug", "2=00093-7146-01",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=cli_env())
    assert process.stdout is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        url = line.removeprefix("listening on ").strip()
        async with SerialTabletCounter(name="tc-alone", url=url) as tc:
            events = tc.events()
            await tc.count("J1", 2, 20)
            report = await until_end(events, "J1")
    finally:
        process.kill()
        await process.wait()
    # atorvastatin 20 mg weighs 155 mg a tablet in the sample formulary (not the default 250)
    assert report.count == 20 and abs(report.weight_mg - 20 * 155) < 20 * 155 * 0.1


def test_on_a_terminal_a_warning_is_shown_once() -> None:
    import io

    import structlog

    from controller.logs import configure_logging

    out = io.StringIO()
    configure_logging("info", "json", out, once=True)
    log = structlog.get_logger("test")
    for _ in range(3):
        log.warning("mqtt broker unreachable", broker="h:1")
        log.warning("robot link lost", robot="tc1")
        log.info("fill ended", robot="tc1")
    log.warning("robot link lost", robot="tc2")
    configure_logging("info", "json")
    lines = out.getvalue().splitlines()
    assert sum("mqtt broker unreachable" in line for line in lines) == 1
    assert sum("robot link lost" in line for line in lines) == 2  # tc1 once, tc2 once
    assert sum("fill ended" in line for line in lines) == 3  # information is not repeated noise


def test_demo_serve_on_a_port_in_use_says_so_before_filling(tmp_path: Path,
                                                             taken_port: int) -> None:
    run = rxfill("demo", "--serve", "--port", str(taken_port), "--mqtt", "off", cwd=tmp_path)
    assert run.returncode == 2 and f"127.0.0.1:{taken_port}" in run.stdout
    assert "filling" not in run.stdout and "Traceback" not in run.stdout + run.stderr
