"""Fault commands a person types at a standalone simulator, one a line.

Each simulator has a table: a command's words, what its arguments are, and
what it does. One interpreter reads a line against a table and answers what
happened or what was expected, so every simulator's commands read the same.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from simulators.tablet_counter.server import CounterSimulator
from simulators.vial_filler.server import FillerSimulator

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Command(Generic[S]):
    """One fault command: its words, its arguments' names and types, and what it does."""

    words: tuple[str, ...]
    args: tuple[tuple[str, type[int] | type[float]], ...]
    does: str
    run: Callable[..., object]
    """Called with the simulator, then the arguments."""
    least: tuple[float, ...] = ()
    """The smallest value each argument may take (none given: any)."""

    @property
    def usage(self) -> str:
        """How to type it."""
        return " ".join([*self.words, *(name for name, _ in self.args)])


def help_text(commands: Sequence[Command[S]]) -> str:
    """The table as a help text."""
    width = max(len(c.usage) for c in commands) + 2
    lines = [f"  {c.usage:<{width}}{c.does}" for c in commands]
    return "fault commands, one a line on standard input:\n" + "\n".join(lines) + "\n"


def apply(commands: Sequence[Command[S]], sim: S, line: str) -> str:
    """Carry out one line; the answer says what happened, or what was wrong and expected."""
    words = line.split()
    if not words:
        return ""
    for command in commands:
        fixed = len(command.words)
        if tuple(words[:fixed]) != command.words or len(words) != fixed + len(command.args):
            continue
        try:
            values = [_value(name, kind, text) for (name, kind), text in zip(
                command.args, words[fixed:], strict=True)]
            for (name, _), value, least in zip(command.args, values, command.least,
                                               strict=False):
                if value < least:
                    raise ValueError(f"{name} is {value}; expected {least:g} or more")
            command.run(sim, *values)
        except (ValueError, KeyError) as exc:
            why = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            return f"cannot do {line.strip()!r}: {why}; usage: {command.usage}"
        return f"ok: {line.strip()}"
    return f"unknown command {line.strip()!r}\n{help_text(commands)}"


def _value(name: str, kind: type[int] | type[float], text: str) -> float:
    what = "a whole number" if kind is int else "a number"
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{name} is {text!r}; expected {what}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} is {text!r}; expected {what}")
    return value


def _channel(sim: CounterSimulator, channel: int) -> int:
    if channel not in sim.device.channels:
        raise ValueError(f"channel {channel}: this counter has channels 1-"
                         f"{len(sim.device.channels)}")
    return channel


def _cell(sim: FillerSimulator, cell: int) -> int:
    if cell not in sim.device.cells:
        raise ValueError(f"cell {cell}: this filler has cells 1-{len(sim.device.cells)}")
    return cell


C = CounterSimulator
F = FillerSimulator

COUNTER_COMMANDS: list[Command[CounterSimulator]] = [
    Command(("jam",), (("K", int),), "the running or next job jams after K tablets",
            lambda sim, k: setattr(sim.device.faults, "jam_after", k), (0,)),
    Command(("empty",), (("CH", int),), "channel CH runs empty",
            lambda sim, ch: sim.device.set_stock(_channel(sim, ch), 0)),
    Command(("stock",), (("CH", int), ("N", int)), "put N tablets in channel CH",
            lambda sim, ch, n: sim.device.set_stock(_channel(sim, ch), n), (1, 0)),
    Command(("door", "open"), (), "open the door", lambda sim: sim.device.open_door()),
    Command(("door", "close"), (), "close the door", lambda sim: sim.device.close_door()),
    Command(("miscount",), (("M", int),),
            "the next job's sensor runs M tablets ahead (negative: behind)",
            lambda sim, m: setattr(sim.device.faults, "miscount", m)),
    Command(("drop",), (("N", int),), "the next N replies are never sent", C.drop_replies,
            (0,)),
    Command(("garble",), (("N", int),), "the next N replies go out with a wrong checksum",
            C.garble_replies, (0,)),
    Command(("power",), (), "a power cycle", C.power_cycle),
]
"""The tablet counter's fault commands."""

FILLER_COMMANDS: list[Command[FillerSimulator]] = [
    Command(("jam",), (("K", int),), "the running or next job jams after K tablets",
            lambda sim, k: setattr(sim.device.faults, "jam_after", k), (0,)),
    Command(("empty",), (("C", int),), "cell C runs empty",
            lambda sim, c: sim.device.set_stock(_cell(sim, c), 0)),
    Command(("stock",), (("C", int), ("N", int)), "put N tablets in cell C",
            lambda sim, c, n: sim.device.set_stock(_cell(sim, c), n), (1, 0)),
    Command(("vials",), (("SIZE", int), ("N", int)), "put N vials in the SIZE-dram hopper",
            lambda sim, size, n: sim.device.set_vials(size, n), (1, 0)),
    Command(("door", "open"), (), "open the door", lambda sim: sim.device.open_door()),
    Command(("door", "close"), (), "close the door", lambda sim: sim.device.close_door()),
    Command(("estop", "press"), (), "press the emergency stop",
            lambda sim: sim.device.press_estop()),
    Command(("estop", "release"), (), "release the emergency stop",
            lambda sim: sim.device.release_estop()),
    Command(("cap",), (), "the next vial's cap fails",
            lambda sim: setattr(sim.device.faults, "cap_fault", True)),
    Command(("scale",), (), "the next weighing fails",
            lambda sim: setattr(sim.device.faults, "scale_fault", True)),
    Command(("miscount",), (("M", int),),
            "the next job's counter runs M tablets ahead (negative: behind)",
            lambda sim, m: setattr(sim.device.faults, "miscount", m)),
    Command(("take",), (), "a person takes the vial out of the output bay",
            lambda sim: sim.device.take_vial()),
    Command(("drop",), (("N", int),), "the next N replies are never sent", F.drop_replies,
            (0,)),
    Command(("slow",), (("SECONDS", float),), "every reply waits SECONDS (0: no more)",
            lambda sim, s: setattr(sim, "reply_delay_s", s), (0,)),
]
"""The vial filler's fault commands."""
