"""Drugs and the formulary: what each NDC is, weighs and looks like."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass

from controller.domain.ndc import NdcError, parse_ndc

SCHEDULES = ("II", "III", "IV", "V")
COLUMNS = (
    "ndc", "generic_name", "strength", "dosage_form", "unit_mass_mg", "unit_mass_spread_pct",
    "unit_volume_mm3", "dea_schedule", "tall_man_name", "auxiliary_labels", "colour", "shape",
    "imprint",
)
"""Required columns; ``package_quantity`` may be added."""


class FormularyError(ValueError):
    """A formulary file that cannot be read; says which line and column."""


@dataclass(frozen=True, slots=True)
class Drug:
    """One product of the formulary, by NDC."""

    ndc: str
    generic_name: str
    strength: str
    dosage_form: str
    unit_mass_mg: float
    """Mean mass of one tablet or capsule."""
    unit_mass_spread_pct: float
    """Standard deviation of one unit's mass, as a percentage of the mean."""
    unit_volume_mm3: float
    dea_schedule: str | None
    tall_man_name: str | None
    auxiliary_labels: tuple[str, ...]
    colour: str
    shape: str
    imprint: str
    package_quantity: int | None = None
    """Tablets in a full stock bottle of this NDC (optional column), for a restock by scan
    alone."""

    @property
    def display_name(self) -> str:
        """The name a label or screen shows: tall-man where ISMP lists one."""
        name = self.tall_man_name or self.generic_name
        return f"{name} {self.strength} {self.dosage_form}"

    @property
    def description(self) -> str:
        """What the tablet looks like, as labels print it."""
        return f"{self.colour} {self.shape}, imprint {self.imprint}"


class Formulary:
    """The drugs this pharmacy knows, looked up by NDC."""

    def __init__(self, drugs: list[Drug]) -> None:
        self._drugs = {drug.ndc: drug for drug in drugs}

    def __contains__(self, ndc: object) -> bool:
        return ndc in self._drugs

    def __iter__(self) -> Iterator[Drug]:
        return iter(self._drugs.values())

    def __len__(self) -> int:
        return len(self._drugs)

    def get(self, ndc: str) -> Drug | None:
        """The drug with this NDC, or None."""
        return self._drugs.get(ndc)

    def __getitem__(self, ndc: str) -> Drug:
        return self._drugs[ndc]


AUXILIARY_LABELS: dict[str, str] = {
    "AVOID_GRAPEFRUIT": "Avoid grapefruit and grapefruit juice.",
    "TAKE_WITH_FOOD": "Take with food.",
    "DO_NOT_STOP": "Do not stop taking without asking your doctor.",
    "NO_ALCOHOL": "Do not drink alcohol while taking this medicine.",
    "MAY_CAUSE_DIZZINESS": "May cause dizziness.",
    "MAY_CAUSE_DROWSINESS": "May cause drowsiness. Use care driving or operating machinery.",
    "TAKE_ON_EMPTY_STOMACH": "Take on an empty stomach.",
    "SWALLOW_WHOLE": "Swallow whole. Do not crush or chew.",
    "TAKE_BEFORE_MEALS": "Take before meals.",
    "AVOID_SUN": "Avoid prolonged sunlight.",
    "TAKE_IN_MORNING": "Take in the morning.",
    "FINISH_ALL": "Finish all of this medicine unless your doctor says otherwise.",
    "TAKE_WITH_WATER": "Take with a full glass of water.",
    "CONTROLLED_TRANSFER": ("Caution: Federal law prohibits the transfer of this drug to any "
                            "person other than the patient for whom it was prescribed."),
}
"""The auxiliary warnings a label may carry, by the formulary's code."""


def parse_formulary(text: str, source: str = "formulary") -> Formulary:
    """Read a formulary CSV (lines starting with ``#`` are comments).

    A mistake is a FormularyError naming the file, the row (and its line in the file), the
    column and what was expected.
    """
    numbered = [(n, line) for n, line in enumerate(text.splitlines(), start=1)
                if not line.lstrip().startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(line for _, line in numbered)))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise FormularyError(f"{source}: header lacks column(s) {', '.join(missing)}; "
                             f"expected {', '.join(COLUMNS)}")
    drugs: list[Drug] = []
    seen: set[str] = set()
    for number, row in enumerate(reader, start=1):
        line = numbered[reader.line_num - 1][0] if reader.line_num <= len(numbered) else "?"
        where = f"{source}: row {number} (line {line}, NDC {(row.get('ndc') or '').strip()})"
        drug = _drug(row, where)
        if drug.ndc in seen:
            raise FormularyError(f"{where}: NDC {drug.ndc} appears twice")
        seen.add(drug.ndc)
        drugs.append(drug)
    if not drugs:
        raise FormularyError(f"{source}: holds no drugs")
    return Formulary(drugs)


def _drug(row: dict[str, str], where: str) -> Drug:
    try:
        ndc = parse_ndc(row["ndc"])
    except NdcError as exc:
        raise FormularyError(f"{where}, column ndc: {exc}") from None
    schedule = row["dea_schedule"].strip() or None
    if schedule is not None and schedule not in SCHEDULES:
        raise FormularyError(f"{where}, column dea_schedule: {schedule!r} is not blank, "
                             f"II, III, IV or V")
    auxiliary = tuple(c.strip() for c in row["auxiliary_labels"].split(";") if c.strip())
    unknown = [code for code in auxiliary if code not in AUXILIARY_LABELS]
    if unknown:
        raise FormularyError(f"{where}, column auxiliary_labels: {', '.join(unknown)} not known; "
                             f"expected codes among {', '.join(sorted(AUXILIARY_LABELS))}")
    return Drug(
        ndc=ndc,
        generic_name=_text(row, "generic_name", where),
        strength=_text(row, "strength", where),
        dosage_form=_text(row, "dosage_form", where),
        unit_mass_mg=_positive(row, "unit_mass_mg", where),
        unit_mass_spread_pct=_positive(row, "unit_mass_spread_pct", where),
        unit_volume_mm3=_positive(row, "unit_volume_mm3", where),
        dea_schedule=schedule,
        tall_man_name=row["tall_man_name"].strip() or None,
        auxiliary_labels=auxiliary,
        colour=_text(row, "colour", where),
        shape=_text(row, "shape", where),
        imprint=_text(row, "imprint", where),
        package_quantity=_package(row, where),
    )


def _package(row: dict[str, str], where: str) -> int | None:
    raw = (row.get("package_quantity") or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) == 0:
        raise FormularyError(f"{where}, column package_quantity: {raw!r} is not a whole number "
                             f"above 0 (or blank)")
    return int(raw)


def _text(row: dict[str, str], column: str, where: str) -> str:
    value = (row.get(column) or "").strip()
    if not value:
        raise FormularyError(f"{where}, column {column}: is empty; expected text")
    return value


def _positive(row: dict[str, str], column: str, where: str) -> float:
    raw = (row.get(column) or "").strip()
    try:
        value = float(raw)
    except ValueError:
        raise FormularyError(f"{where}, column {column}: {raw!r} is not a number; expected a "
                             f"finite number above 0") from None
    # float() reads 'nan' and 'inf'; NaN passes any comparison-based check unnoticed.
    if not math.isfinite(value) or value <= 0:
        raise FormularyError(f"{where}, column {column}: {raw!r}: expected a finite number "
                             f"above 0")
    return value
