"""Reading a person's files: UTF-8 text and TOML, checked by pydantic models whose mistakes are
told one line each, naming the file, the key and what was expected.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict


class ConfigError(ValueError):
    """A configuration file that cannot be used, with every reason why."""


class Model(BaseModel):
    """Base of every config model: unknown keys are mistakes; a number is finite (TOML reads
    ``nan`` and ``inf``, which would pass any comparison-based check unnoticed)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def read_text(path: Path, expected: str) -> str:
    """The file's text; ConfigError, naming it, when it is not UTF-8 text (or a file)."""
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory; expected {expected}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file: {exc.strerror}; "
                          f"expected {expected}") from None
    if b"\0" in raw:
        raise ConfigError(f"{path}: is a binary file (it holds NUL bytes); expected {expected} "
                          f"in UTF-8") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: line {line}: byte 0x{raw[exc.start]:02x} is not UTF-8; "
                          f"expected {expected} in UTF-8 (saved in another encoding?)") from None


def read_toml(path: Path) -> dict[str, Any]:
    text = read_text(path, "a TOML configuration file")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: is not valid TOML: {exc}") from None


def mistake(loc: tuple[int | str, ...], message: str, got: Any) -> dict[str, Any]:
    """A mistake found after pydantic's pass, in the shape of pydantic's errors."""
    return {"loc": loc, "msg": message, "type": "value_error", "input": got}


def explain(path: Path, errors: list[Any], data: Any) -> str:
    """One line per mistake: file, key (robots named by id), what was wrong and expected."""
    lines = []
    for error in errors:
        key = key_of(error["loc"], data)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "is missing; it is required"
        elif error["type"] == "extra_forbidden":
            message = "is not a known key (misspelt?)"
        shown = error["type"] != "missing" and not isinstance(error["input"], dict | list)
        got = f" (got {error['input']!r:.60})" if shown else ""
        lines.append(f"{path}: key {key}: {message}{got}")
    return "\n".join(lines)


def key_of(loc: tuple[int | str, ...], data: Any) -> str:
    """The dotted key of ``loc``, with each list item named by its ``id`` where it has one."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int):
            node = node[item] if isinstance(node, list) and item < len(node) else None
            name = node.get("id") if isinstance(node, dict) else None
            parts[-1] += f"[{item}]" + (f" ({name})" if isinstance(name, str) else "")
        elif isinstance(node, dict) and item not in node and node.get("name") == item:
            continue  # pydantic names the union member by its tag; the file has no such key
        else:
            parts.append(item)
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts) or "(top level)"
