"""What a standalone simulator holds: with ``--formulary`` and ``--drug CH=NDC`` its channels
or cells hold those drugs, and their tablets weigh what the formulary says each weighs."""

from __future__ import annotations

from pathlib import Path

from controller.cli.common import fail
from controller.config import ConfigError, read_text
from controller.domain.drugs import Drug, FormularyError, parse_formulary
from controller.domain.ndc import NdcError, parse_ndc
from simulators.tablet_counter.device import SimChannel
from simulators.vial_filler.device import SimCell


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
