"""Drivers found by name through the ``rxfill.drivers`` entry-point group.

A vendor's package adds a driver by declaring, in its own pyproject.toml::

    [project.entry-points."rxfill.drivers"]
    acme-counter = "acme_rxfill.driver:AcmeCounter"
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import cast

from drivers.settings import DriverClass, DriverSettings

GROUP = "rxfill.drivers"


class UnknownDriverError(LookupError):
    """No installed package provides a driver of that name."""


def driver_names() -> list[str]:
    """The names of every installed driver, sorted."""
    return sorted({ep.name for ep in entry_points(group=GROUP)})


def find_driver(name: str) -> type[DriverClass]:
    """The driver class registered as ``name``: a :class:`DriverClass` (kind, settings model,
    ``configured``), or UnknownDriverError saying what it lacks."""
    for ep in entry_points(group=GROUP):
        if ep.name == name:
            try:
                loaded = ep.load()
            except Exception as exc:  # a vendor's package that is broken: say which and how
                raise UnknownDriverError(f"entry point {name!r} ({ep.value}) cannot be loaded: "
                                         f"{type(exc).__name__}: {exc}") from exc
            if not isinstance(loaded, type):
                raise UnknownDriverError(f"entry point {name!r} ({ep.value}) is not a class")
            settings = getattr(loaded, "settings", None)
            lacking = [what for what, ok in (
                ("kind", isinstance(getattr(loaded, "kind", None), str)),
                ("settings (a DriverSettings model)",
                 isinstance(settings, type) and issubclass(settings, DriverSettings)),
                ("max_channels", isinstance(getattr(loaded, "max_channels", None), int)),
                ("configured()", callable(getattr(loaded, "configured", None)))) if not ok]
            if lacking:
                raise UnknownDriverError(
                    f"entry point {name!r} ({ep.value}) is not an rxfill driver: it has no "
                    f"{', '.join(lacking)} (see drivers/settings.py's DriverClass)")
            return cast(type[DriverClass], loaded)
    known = ", ".join(driver_names()) or "none installed"
    raise UnknownDriverError(f"no driver named {name!r} (installed drivers: {known})")


def drivers_of(kind: str) -> list[str]:
    """The names of the installed drivers of ``kind``, sorted (a broken entry point is left
    out: find_driver names what is wrong with it)."""
    names = []
    for name in driver_names():
        try:
            if find_driver(name).kind == kind:
                names.append(name)
        except UnknownDriverError:
            continue
    return names
