"""``rxfill simulate``: a simulated robot on a pty or a TCP port, with fault commands typed on
standard input. With ``--formulary`` and ``--drug CH=NDC`` its channels or cells hold those
drugs, and their tablets weigh what the formulary says each weighs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from controller.cli.common import fail
from controller.domain.drugs import Drug, FormularyError, parse_formulary
from controller.domain.ndc import NdcError, parse_ndc
from controller.logs import configure_logging
from controller.reading import ConfigError, read_text
from simulators.commands import COUNTER_COMMANDS, FILLER_COMMANDS, apply, help_text
from simulators.tablet_counter.parts import SimChannel
from simulators.tablet_counter.server import CounterSimulator
from simulators.vial_filler.parts import SimCell
from simulators.vial_filler.server import FillerSimulator

simulate_app = typer.Typer(help="Run a simulated robot on a pty or a TCP port.",
                           no_args_is_help=True)

FormularyOption = Annotated[Path | None, typer.Option(
    help="A formulary CSV: the drugs --drug names, and what their tablets weigh.")]
DrugOption = Annotated[list[str] | None, typer.Option(
    help="CH=NDC: this channel (cell) holds that drug of --formulary (repeat for more).")]




def drugs_of(formulary: Path | None, drugs: list[str], count: int,
             word: str) -> dict[int, Drug]:
    """Each ``CH=NDC`` of ``drugs`` read against ``formulary``; exit 2 with words if wrong."""
    if drugs and formulary is None:
        raise fail("--drug needs --formulary FILE (the drugs' tablet masses)", 2)
    if formulary is None:
        return {}
    try:
        table = parse_formulary(read_text(formulary, "a formulary CSV file"), str(formulary))
    except (ConfigError, FormularyError) as exc:
        raise fail(str(exc), 2) from None
    held: dict[int, Drug] = {}
    for given in drugs:
        number, _, code = given.partition("=")
        if not number.isdigit() or not 1 <= int(number) <= count:
            raise fail(f"--drug {given!r}: expected {word.upper()}=NDC with {word} 1-{count}",
                       2)
        try:
            ndc = parse_ndc(code)
        except NdcError as exc:
            raise fail(f"--drug {given!r}: {exc}", 2) from None
        if ndc not in table:
            raise fail(f"--drug {given!r}: NDC {ndc} is not in {formulary}", 2)
        held[int(number)] = table[ndc]
    return held


def counter_channels(count: int, held: dict[int, Drug]) -> int | list[SimChannel]:
    """A counter's channels, those holding a drug at its tablets' mass."""
    if not held:
        return count
    return [SimChannel(n, unit_mass_mg=held[n].unit_mass_mg,
                       spread_pct=held[n].unit_mass_spread_pct) if n in held else SimChannel(n)
            for n in range(1, count + 1)]


def filler_cells(count: int, held: dict[int, Drug]) -> int | list[SimCell]:
    """A filler's cells, those holding a drug at its tablets' mass (calibrated for it)."""
    if not held:
        return count
    return [SimCell(n, unit_mass_mg=held[n].unit_mass_mg,
                    spread_pct=held[n].unit_mass_spread_pct,
                    cal_unit_dmg=round(held[n].unit_mass_mg * 10)) if n in held else SimCell(n)
            for n in range(1, count + 1)]


@simulate_app.command("filler", epilog=help_text(FILLER_COMMANDS))
def simulate_filler(
    listen: Annotated[str, typer.Option(
        help="modbus-tcp://HOST:PORT or modbus-rtu+pty")] = "modbus-rtu+pty",
    unit: Annotated[int, typer.Option(min=1, max=247)] = 1,
    cells: Annotated[int, typer.Option(min=1, max=240)] = 12,
    seed: Annotated[int, typer.Option()] = 0,
    time_scale: Annotated[float, typer.Option(min=0.001)] = 1.0,
    baud: Annotated[int, typer.Option()] = 19200,
    formulary: FormularyOption = None, drug: DrugOption = None,
) -> None:
    """A vial filler speaking the Modbus ICD; prints 'listening on <url>' when ready."""
    configure_logging("warning", "auto")
    held = filler_cells(cells, drugs_of(formulary, drug or [], cells, "cell"))
    host, port = "", 0
    if listen.startswith("modbus-tcp://"):
        host, _, number = listen.removeprefix("modbus-tcp://").rpartition(":")
        if not host or not number.isdigit() or int(number) > 65535:
            typer.echo(f"--listen {listen!r}: expected modbus-tcp://HOST:PORT, a port "
                       f"0-65535", err=True)
            raise typer.Exit(2)
        port = int(number)
    elif listen != "modbus-rtu+pty":
        typer.echo(f"--listen {listen!r}: expected modbus-tcp://HOST:PORT or modbus-rtu+pty",
                   err=True)
        raise typer.Exit(2)

    async def serve() -> None:
        try:
            sim = FillerSimulator(unit=unit, cells=held, seed=seed, time_scale=time_scale,
                                  baud=baud)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        async with sim:
            try:
                url = await (sim.listen_tcp(host, port) if host else sim.listen_rtu_pty())
            except OSError as exc:
                raise _cannot_listen(listen, exc) from None
            await _until_stopped(url, lambda line: apply(FILLER_COMMANDS, sim, line))

    asyncio.run(serve())


@simulate_app.command("counter", epilog=help_text(COUNTER_COMMANDS))
def simulate_counter(
    listen: Annotated[str, typer.Option(help="'pty' or tcp://HOST:PORT")] = "pty",
    channels: Annotated[int, typer.Option(min=1, max=64)] = 8,
    seed: Annotated[int, typer.Option()] = 0,
    time_scale: Annotated[float, typer.Option(min=0.001)] = 1.0,
    baud: Annotated[int, typer.Option()] = 115200,
    formulary: FormularyOption = None, drug: DrugOption = None,
) -> None:
    """A tablet counter speaking the serial ICD; prints 'listening on <url>' when ready."""
    configure_logging("warning", "auto")
    held = counter_channels(channels, drugs_of(formulary, drug or [], channels, "channel"))
    if listen != "pty" and not listen.startswith("tcp://"):
        typer.echo(f"--listen {listen!r}: expected 'pty' or tcp://HOST:PORT", err=True)
        raise typer.Exit(2)
    try:
        sim = CounterSimulator(channels=held, seed=seed, time_scale=time_scale, baud=baud)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None

    async def serve() -> None:
        if listen == "pty":
            url = await sim.listen_pty()
        else:
            host, _, port = listen.removeprefix("tcp://").rpartition(":")
            if not host or not port.isdigit() or int(port) > 65535:
                typer.echo(f"--listen {listen!r}: expected tcp://HOST:PORT, a port 0-65535",
                           err=True)
                raise typer.Exit(2)
            try:
                url = await sim.listen_tcp(host, int(port))
            except (OSError, OverflowError) as exc:
                raise _cannot_listen(listen, exc) from None
        async with sim:
            await _until_stopped(url, lambda line: apply(COUNTER_COMMANDS, sim, line))

    asyncio.run(serve())


async def _until_stopped(url: str, answer: Callable[[str], str]) -> None:
    """Say where the simulator listens, take a person's fault commands on standard input
    (``answer`` answers each), and wait for SIGINT or SIGTERM."""
    print(f"listening on {url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    _read_commands(answer, loop)
    await stop.wait()


def _cannot_listen(listen: str, exc: BaseException) -> typer.Exit:
    why = (os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno else str(exc))
    return fail(f"--listen {listen}: cannot listen there: {why} (in use? another port, or "
                f"pty)", 2)


def _read_commands(apply: Callable[[str], str], loop: asyncio.AbstractEventLoop) -> None:
    """Let a person type fault commands on standard input (when it can be watched)."""
    buffer = bytearray()

    def readable() -> None:
        try:
            data = os.read(sys.stdin.fileno(), 1024)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(sys.stdin.fileno())
            return
        buffer.extend(data)
        while b"\n" in buffer:
            line, _, rest = bytes(buffer).partition(b"\n")
            buffer[:] = rest
            answer = apply(line.decode(errors="replace"))
            print(answer, file=sys.stderr, flush=True)

    with contextlib.suppress(OSError, ValueError):  # stdin is a file or closed: no commands
        loop.add_reader(sys.stdin.fileno(), readable)
