"""Drivers found by name through the ``rxfill.drivers`` entry-point group.

A vendor's package adds a driver by declaring, in its own pyproject.toml::

    [project.entry-points."rxfill.drivers"]
    acme-counter = "acme_rxfill.driver:AcmeCounter"
"""

from __future__ import annotations

from importlib.metadata import entry_points

GROUP = "rxfill.drivers"


class UnknownDriverError(LookupError):
    """No installed package provides a driver of that name."""


def driver_names() -> list[str]:
    """The names of every installed driver, sorted."""
    return sorted({ep.name for ep in entry_points(group=GROUP)})


def find_driver(name: str) -> type:
    """The driver class registered as ``name``."""
    for ep in entry_points(group=GROUP):
        if ep.name == name:
            loaded = ep.load()
            if not isinstance(loaded, type):
                raise UnknownDriverError(f"entry point {name!r} ({ep.value}) is not a class")
            return loaded
    known = ", ".join(driver_names()) or "none installed"
    raise UnknownDriverError(f"no driver named {name!r} (installed drivers: {known})")
