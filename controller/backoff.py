"""Jittered exponential backoff for reconnecting to a robot."""

from __future__ import annotations

import random


class Backoff:
    """Delays of ``base`` doubling up to ``cap`` seconds, each drawn uniformly below it."""

    def __init__(self, *, base: float = 0.2, cap: float = 5.0,
                 rng: random.Random | None = None) -> None:
        self.base = base
        self.cap = cap
        self._rng = rng or random.Random()
        self._attempt = 0

    def next_delay(self) -> float:
        """The next delay ("full jitter"): random in [base/2, min(cap, base·2^n)]."""
        ceiling = min(self.cap, self.base * 2**self._attempt)
        self._attempt += 1
        return self._rng.uniform(min(self.base / 2, ceiling), ceiling)

    def reset(self) -> None:
        """Start again from ``base`` (after a success)."""
        self._attempt = 0
