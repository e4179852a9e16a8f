"""What the pharmacy's service refuses with, beside the workflow's own refusals."""

from __future__ import annotations

from controller.domain.prescriptions import Problem


class OrderInvalid(ValueError):
    """An order that cannot be filled as written; ``problems`` names each field."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{'.'.join(p.field)}: {p.message}" for p in problems))
        self.problems = problems


class NotFound(LookupError):
    """No such order, fill or label."""
