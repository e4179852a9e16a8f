"""Draw the packages and their imports, from the code, into docs/architecture.md.

``make pictures`` runs it; ``tests/test_shape.py`` checks that the committed picture is the one
the code draws. Each box is a package (or a top-level module) of ours; an arrow ``A --> B``
says that A imports B directly. Arrows that another path already implies are left out, so
the picture reads top to bottom as the layers do.
"""

from __future__ import annotations

import re
from itertools import product
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
BEGIN, END = "<!-- packages:begin (docs/architecture.py) -->", "<!-- packages:end -->"

BOXES = [
    "controller.cli", "controller.demo", "controller.site", "controller.console", "controller.api",
    "controller.pharmacy", "controller.robots", "controller.alarms", "controller.mqtt",
    "controller.audit_key", "controller.config", "controller.store", "controller.reading",
    "controller.logs", "controller.backoff", "controller.clock", "controller.domain",
    "simulators", "drivers",
]
"""Every box, top layer first; a module of ours is drawn in the first box it falls in."""


def box_of(module: str) -> str | None:
    """The box ``module`` is drawn in (None for our package roots and ``__main__``)."""
    for box in BOXES:
        if module == box or module.startswith(box + "."):
            return box
    return None


def edges() -> set[tuple[str, str]]:
    """(importer, imported) between boxes, each import direct, none implied by others."""
    graph = grimp.build_graph("controller", "drivers", "simulators")
    direct = set()
    for module in graph.modules:
        here = box_of(module)
        for imported in graph.find_modules_directly_imported_by(module):
            there = box_of(imported)
            if here and there and here != there:
                direct.add((here, there))
    reach = {(a, b) for a, b in direct}
    changed = True
    while changed:  # the transitive closure, to find the arrows other paths imply
        more = {(a, d) for (a, b), (c, d) in product(reach, reach) if b == c} - reach
        reach |= more
        changed = bool(more)
    return {(a, b) for a, b in direct
            if not any((a, m) in reach and (m, b) in reach for m in BOXES if m not in (a, b))}


def mermaid() -> str:
    """The picture as a Mermaid flowchart (GitHub draws it)."""
    def node(box: str) -> str:
        return re.sub(r"\W", "_", box)
    lines = ["```mermaid", "flowchart TD"]
    lines += [f'    {node(b)}["{b.removeprefix("controller.")}"]' for b in BOXES]
    lines += [f"    {node(a)} --> {node(b)}" for a, b in
              sorted(edges(), key=lambda e: (BOXES.index(e[0]), BOXES.index(e[1])))]
    lines.append("```")
    return "\n".join(lines)


def drawn(text: str) -> str:
    """``text`` (the architecture page) with the picture between its markers redrawn."""
    before, _, rest = text.partition(BEGIN)
    _, _, after = rest.partition(END)
    return f"{before}{BEGIN}\n{mermaid()}\n{END}{after}"


if __name__ == "__main__":
    DOC.write_text(drawn(DOC.read_text()))
    print(f"wrote {DOC.relative_to(ROOT)}")
