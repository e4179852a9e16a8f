"""``python -m controller`` is ``rxfill``."""

from controller.cli import app

app(prog_name="rxfill")
