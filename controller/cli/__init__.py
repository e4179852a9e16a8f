"""The ``rxfill`` command: one module per command group."""
