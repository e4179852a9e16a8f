"""Issue 11, item 11: every number the weight check uses is finite and positive.

The formulary and the configuration refuse NaN, infinities, zero and negatives with the file,
row and column (or key); the weight check refuses any input that is not a finite number, so
that nothing can make every weight "agree".
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.config import load_config
from controller.domain.drugs import FormularyError, parse_formulary
from controller.domain.weight import WeightVerdict, check_weight
from controller.reading import ConfigError

CONFIG = Path(__file__).resolve().parent.parent / "config"
FORMULARY_TEXT = (CONFIG / "formulary.csv").read_text(encoding="utf-8")
ATORVASTATIN_ROW = "00093-7146-01,atorvastatin,20 mg,tablet,155,1.8,128,"
COLUMNS = {"unit_mass_mg": 4, "unit_mass_spread_pct": 5, "unit_volume_mm3": 6}


def _spoilt_row(column: str, value: str) -> str:
    fields = ATORVASTATIN_ROW.split(",")
    fields[COLUMNS[column]] = value
    return FORMULARY_TEXT.replace(ATORVASTATIN_ROW, ",".join(fields))


@pytest.mark.parametrize("column", sorted(COLUMNS))
@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity", "0", "-1", "0.0"])
def test_the_formulary_refuses_a_number_that_is_not_finite_and_positive(
        column: str, value: str) -> None:
    with pytest.raises(FormularyError) as caught:
        parse_formulary(_spoilt_row(column, value), "formulary.csv")
    message = str(caught.value)
    # The file, the row (and its line in the file), the column and what was expected.
    assert "formulary.csv: row 1 (line 4, NDC 00093-7146-01)" in message, message
    assert f"column {column}" in message and "finite number above 0" in message, message


def test_a_nan_spread_no_longer_makes_every_weight_agree() -> None:
    # Before: 'nan' parsed as a float and passed `value <= 0`; the weight check's band became
    # NaN and every weight, however wrong, agreed.
    with pytest.raises(FormularyError, match="unit_mass_spread_pct"):
        parse_formulary(_spoilt_row("unit_mass_spread_pct", "nan"))


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    for name in ("demo.toml", "formulary.csv", "demo-orders.toml"):
        shutil.copy(CONFIG / name, tmp_path / name)
    return tmp_path / "demo.toml"


@pytest.mark.parametrize(("old", "new", "key"), [
    ("scale_noise_mg = 1.0\nsimulator", "scale_noise_mg = nan\nsimulator",
     "robots[0] (tc1).scale_noise_mg"),
    ("scale_noise_mg = 1.0\nsimulator", "scale_noise_mg = inf\nsimulator",
     "robots[0] (tc1).scale_noise_mg"),
    ("scale_noise_mg = 1.0\nsimulator", "scale_noise_mg = 0.0\nsimulator",
     "robots[0] (tc1).scale_noise_mg"),
    ("scale_noise_mg = 1.0\nsimulator", "scale_noise_mg = -2.0\nsimulator",
     "robots[0] (tc1).scale_noise_mg"),
    ("time_scale = 25, scale_noise_mg = 1.0", "time_scale = 25, scale_noise_mg = inf",
     "robots[0] (tc1).simulator.scale_noise_mg"),
    ("low_deadband_pct = 10", "low_deadband_pct = nan", "alarms.low_deadband_pct"),
])
def test_the_configuration_refuses_a_number_that_is_not_finite_or_not_positive(
        demo: Path, old: str, new: str, key: str) -> None:
    text = demo.read_text()
    assert old in text
    demo.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError) as caught:
        load_config(demo)
    message = str(caught.value)
    assert str(demo) in message and f"key {key}" in message, message


BAD = [math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("name", ["measured_mg", "unit_mass_mg", "spread_pct",
                                  "scale_noise_mg"])
@pytest.mark.parametrize("value", [*BAD, 0.0, -1.0])
def test_the_weight_check_refuses_any_input_that_is_not_a_finite_positive_number(
        name: str, value: float) -> None:
    args = {"count": 30, "measured_mg": 30 * 155.0, "unit_mass_mg": 155.0,
            "spread_pct": 1.8, "scale_noise_mg": 1.0}
    if name == "measured_mg" and value == 0.0:
        return  # an empty vial weighs 0 mg: a real reading, which disagrees with 30 tablets
    args[name] = value
    words = {"measured_mg": "measured weight", "unit_mass_mg": "unit mass",
             "spread_pct": "spread", "scale_noise_mg": "scale noise"}[name]
    with pytest.raises(ValueError, match=words):
        check_weight(**args)  # type: ignore[arg-type]


def test_the_weight_check_refuses_a_negative_count() -> None:
    with pytest.raises(ValueError, match="count"):
        check_weight(count=-1, measured_mg=0, unit_mass_mg=155, spread_pct=1.8,
                     scale_noise_mg=1.0)


@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(allow_nan=True,
                                                                  allow_infinity=True))
def test_no_number_a_file_can_hold_makes_a_wrong_weight_agree(spread: float,
                                                               noise: float) -> None:
    # Ten tablets short of thirty: whatever spread and noise are given, this never agrees.
    try:
        result = check_weight(count=30, measured_mg=20 * 155.0, unit_mass_mg=155.0,
                              spread_pct=spread, scale_noise_mg=noise)
    except ValueError:
        return
    assert result.verdict is not WeightVerdict.AGREES
