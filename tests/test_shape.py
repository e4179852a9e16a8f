"""The code's shape: modules that do one thing, functions that fit on a screen, and a picture
of the packages that is the code's own (docs/architecture.md)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
PACKAGES = ("controller", "drivers", "simulators", "tests", "bench", "docs")


def _sources() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
                  if "migrations" not in path.parts)


def test_every_module_and_function_is_small() -> None:
    too_long = []
    for path in _sources():
        text = path.read_text()
        name = path.relative_to(ROOT)
        if (lines := text.count("\n")) > MAX_MODULE_LINES:
            too_long.append(f"{name}: {lines} lines (at most {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}:{node.lineno} {node.name}: {length} lines "
                                    f"(at most {MAX_FUNCTION_LINES})")
    assert too_long == [], "\n".join(too_long)


def test_the_packages_picture_is_the_one_the_code_draws() -> None:
    spec = importlib.util.spec_from_file_location("architecture", ROOT / "docs" /
                                                  "architecture.py")
    assert spec is not None and spec.loader is not None
    architecture = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(architecture)
    page = (ROOT / "docs" / "architecture.md").read_text()
    assert "flowchart TD" in page and "controller_store" in page
    assert page == architecture.drawn(page), "run make pictures: the code's imports changed"
