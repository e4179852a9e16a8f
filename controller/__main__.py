"""``python -m controller`` is ``rxfill``."""

from controller.cli.main import app

app(prog_name="rxfill")
