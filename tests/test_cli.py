"""The rxfill command as a person runs it: demo, simulate, config check."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import cast

import httpx
import pytest

from controller.domain.recovery import rules_markdown
from drivers.base import JobOutcome, PoweredUp
from drivers.filler_types import CapType, FillerFault
from drivers.registry import UnknownDriverError, driver_names, find_driver
from drivers.tablet_counter.driver import SerialTabletCounter
from drivers.vial_filler.driver import ModbusVialFiller
from tests.helpers import cli_env, until_end
from tests.sites import PASSWORD

ROOT = Path(__file__).resolve().parent.parent
RXFILL = [sys.executable, "-m", "controller"]


def test_demo_fills_the_sample_orders_and_logs_no_patient_data(tmp_path: Path) -> None:
    store = tmp_path / "demo.sqlite"
    run = subprocess.run([*RXFILL, "demo", "--store", str(store), "--log-level", "info"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert store.exists()
    out = run.stdout
    assert "Demo fills" in out
    assert "jam" in out and "weight_off" in out and "count_by_hand" in out
    assert "no robot holds NDC 00093-0147-01" in out
    assert "not enough on hand: 120 asked" in out
    # The bin that ran low: its alarm as an MQTT subscriber received it, the restock, the end.
    low = out.index("mqtt ← alarms/bin-low-tc1-5: bin_low medium unack_active")
    restocked = out.index("mqtt ← events/restocked: robot tc1, bin 5")
    over = out.index("mqtt ← alarms/bin-low-tc1-5: (empty, retained: the alarm is over)")
    assert low < restocked < over
    # Every filled vial: its label printed, scanned by the technician, verified and released
    # by a pharmacist who is not the technician.
    assert "technician tess counted the vial by hand: 90" in out
    assert "label printer: 10 label(s) printed" in out
    assert out.count("scanned onto the vial by tess") == 10
    assert out.count("verified by phil, released to the pickup bin") == 10
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every log line is JSON off a terminal
    assert any(r["event"] == "fill ended" for r in records)
    orders = tomllib.loads((ROOT / "config" / "demo-orders.toml").read_text())["orders"]
    secrets = set()
    for entry in orders:
        patient = entry["patient"]
        secrets |= {entry["rx_number"], patient["name"], str(patient["birth_date"])}
        secrets |= set(patient["name"].split())
    for text, where in ((run.stderr, "logs"), (run.stdout, "screen")):
        leaked = sorted(s for s in secrets if s in text)
        assert leaked == [], f"patient data in the demo's {where}: {leaked}"


def test_demo_serve_keeps_the_api_up_for_the_demos_people(tmp_path: Path) -> None:
    demo = subprocess.Popen([*RXFILL, "demo", "--serve", "--port", "0", "--mqtt", "off"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            cwd=tmp_path)
    assert demo.stdout is not None
    try:
        for line in demo.stdout:
            if match := re.search(r"serving the API at (\S+) .*phil / (\S+);", line):
                url, password = match[1], match[2]
                break
        else:
            raise AssertionError("the demo ended without serving")
        with httpx.Client(base_url=url, timeout=10) as client:
            token = client.post("/api/sign-in", json={"name": "phil", "password": password}
                                ).json()["token"]
            orders = client.get("/api/orders", headers={"Authorization": f"Bearer {token}"})
            states = [o["state"] for o in orders.json()]
            assert len(states) == 14 and states.count("released") == 10
            assert client.get("/docs").status_code == 200
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=30) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        demo.stdout.close()


def start_simulator(*args: str, kind: str = "counter") -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([*RXFILL, "simulate", kind, *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("listening on "), line
    return proc, line.removeprefix("listening on ").strip()


def stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """Interrupt the simulator; what it printed after its first line, on stdout and stderr."""
    proc.terminate()
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    return out, err


@pytest.mark.parametrize("listen", ["pty", "tcp://127.0.0.1:0"])
async def test_standalone_simulator_prints_one_line_and_serves(listen: str) -> None:
    proc, url = start_simulator("--listen", listen, "--channels", "3", "--time-scale", "50")
    try:
        assert url.startswith("/dev/") if listen == "pty" else url.startswith("socket://")
        async with SerialTabletCounter(name="tc", url=url) as tc:
            assert (await tc.identify()).channels == 3
    finally:
        out, _ = stop(proc)
    assert out == ""  # exactly one line: "listening on <url>"


async def test_a_person_injects_faults_on_standard_input() -> None:
    proc, url = start_simulator("--listen", "pty", "--time-scale", "50", "--seed", "4")
    try:
        assert proc.stdin is not None and proc.stderr is not None
        proc.stdin.write("jam 3\n")
        proc.stdin.flush()
        answer = await asyncio.wait_for(asyncio.to_thread(proc.stderr.readline), 10)
        assert answer.strip() == "ok: jam 3"
        proc.stdin.write("fly away\n")
        proc.stdin.flush()
        async with SerialTabletCounter(name="tc", url=url) as tc:
            events = tc.events()
            await tc.count("J1", 1, 10)
            report = await until_end(events, "J1")
            proc.stdin.write("power\n")
            proc.stdin.flush()
            async with asyncio.timeout(10):
                async for event in events:
                    if isinstance(event, PoweredUp):
                        break
        assert (report.outcome, report.count) == (JobOutcome.JAM, 3)
        assert event == PoweredUp("1.4.2")
    finally:
        _, err = stop(proc)
    assert "unknown command 'fly away'" in err


def test_simulator_refuses_a_bad_listen_address() -> None:
    run = subprocess.run([*RXFILL, "simulate", "counter", "--listen", "udp://x"],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 2
    assert "expected 'pty' or tcp://HOST:PORT" in run.stderr


def test_config_check_names_the_mistake(tmp_path: Path) -> None:
    good = subprocess.run([*RXFILL, "config", "check", str(ROOT / "config" / "demo.toml")],
                          capture_output=True, text=True, timeout=30)
    assert good.returncode == 0 and "ok (3 robot(s)" in good.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text((ROOT / "config" / "demo.toml").read_text().replace(
        'formulary = "formulary.csv"', f'formulary = "{ROOT / "config" / "formulary.csv"}"'
    ).replace("par = 100", "par = -1", 1))
    run = subprocess.run([*RXFILL, "config", "check", str(bad)], capture_output=True, text=True,
                         timeout=30)
    assert run.returncode == 2
    assert "robots[0] (tc1).channels[0].par: Input should be greater than or equal to 0" in \
        run.stderr


def test_registry_finds_the_serial_counter_by_name() -> None:
    assert "serial-counter" in driver_names()
    assert find_driver("serial-counter") is cast(object, SerialTabletCounter)
    with pytest.raises(UnknownDriverError, match=r"no driver named 'nope'.*serial-counter"):
        find_driver("nope")


@pytest.mark.parametrize("listen", ["modbus-rtu+pty", "modbus-tcp://127.0.0.1:0"])
async def test_standalone_filler_prints_one_line_and_serves(listen: str) -> None:
    proc, url = start_simulator("--listen", listen, "--cells", "5", "--unit", "7",
                                "--time-scale", "50", kind="filler")
    try:
        assert url.startswith("modbus-rtu:/dev/" if "rtu" in listen else "modbus-tcp://")
        async with ModbusVialFiller(name="fv", url=url, unit=7, parity="N") as fv:
            identity = await fv.identify()
        assert (identity.cells, identity.unit) == (5, 7)
    finally:
        out, _ = stop(proc)
    assert out == ""


async def test_a_person_injects_filler_faults_on_standard_input() -> None:
    proc, url = start_simulator("--listen", "modbus-tcp://127.0.0.1:0", "--time-scale", "20",
                                kind="filler")
    try:
        assert proc.stdin is not None and proc.stderr is not None
        proc.stdin.write("vials 13 0\nvials 7 3\n")
        proc.stdin.flush()
        answers = [await asyncio.wait_for(asyncio.to_thread(proc.stderr.readline), 10)
                   for _ in range(2)]
        async with ModbusVialFiller(name="fv", url=url, heartbeat_interval=0.02) as fv:
            await fv.start(5, 1, 10, 13, CapType.CHILD_RESISTANT)
            async with asyncio.timeout(10):
                while not (report := await fv.job(5)).stopped:  # noqa: ASYNC110 - polled
                    await asyncio.sleep(0.02)
    finally:
        stop(proc)
    assert answers[0].strip() == "ok: vials 13 0"
    assert "no hopper for 7 drams" in answers[1]
    assert report.fault is FillerFault.NO_VIAL


def test_rules_prints_the_recovery_table_the_readme_shows() -> None:
    run = subprocess.run([*RXFILL, "rules"], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0
    assert run.stdout.strip() == rules_markdown()
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert rules_markdown() in readme, "README.md's recovery table differs from the code's"


def test_a_technician_records_what_became_of_a_partial_vial(tmp_path: Path) -> None:
    from tests.test_cli_stock import AS_ANA, add_technician
    store = tmp_path / "demo.sqlite"
    demo = subprocess.run([*RXFILL, "demo", "--store", str(store)], capture_output=True,
                          text=True, timeout=120, env=cli_env())
    assert demo.returncode == 0, demo.stderr[-2000:]
    asyncio.run(add_technician(store, "ana"))

    def vials(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*RXFILL, "vials", *args, "--store", str(store)],
                              capture_output=True, text=True, timeout=30, env=cli_env(),
                              input=PASSWORD + "\n")

    listed = vials("list", "--all")
    assert "17 tablets, returned by tess" in listed.stdout  # the jam's partial vial
    again = vials("waste", "1", *AS_ANA)
    assert again.returncode == 1 and "already returned by tess" in again.stderr
    unsigned = vials("waste", "1")
    assert unsigned.returncode == 2 and "sign in first" in unsigned.stderr
    missing = subprocess.run([*RXFILL, "vials", "list", "--store", str(tmp_path / "no.sqlite")],
                             capture_output=True, text=True, timeout=30)
    assert missing.returncode == 2 and "no such store file" in missing.stderr


@pytest.mark.parametrize("broker", ["mqtt://127.0.0.1:1", "mqtt://no-such-host.invalid:1883"])
def test_the_demo_fills_its_orders_when_the_broker_is_not_there(tmp_path: Path,
                                                                  broker: str) -> None:
    run = subprocess.run([*RXFILL, "demo", "--mqtt", broker], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Traceback" not in run.stdout + run.stderr
    assert "unreachable" in run.stdout and "wait in the store's outbox" in run.stdout
    assert "verified by phil, released to the pickup bin" in run.stdout
    # One summary line at the end; piped, the logs are warnings and errors only.
    assert run.stdout.rstrip().splitlines()[-1].startswith("demo done: 10 of 14 orders "
                                                           "released, 4 in exception")
    levels = {json.loads(line)["level"] for line in run.stderr.splitlines() if line.strip()}
    assert levels <= {"warning", "error"}, levels
