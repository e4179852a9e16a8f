"""Which robot and bin fill an order: pure, so the rule is easy to read and test."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BinChoice:
    """A bin as routing sees it: what it holds and how busy its robot is."""

    bin_id: int
    robot: str
    bin: int
    ndc: str
    available: int
    """On hand less what queued fills will take."""
    robot_ready: bool
    """Connected and not waiting for a person."""
    finish_s: float
    """Estimated seconds until that robot would have finished this order."""


@dataclass(frozen=True, slots=True)
class Unroutable:
    """Why no robot can fill an order."""

    reason: str


def choose_bin(ndc: str, quantity: int, bins: list[BinChoice]) -> BinChoice | Unroutable:
    """The bin to count ``quantity`` of ``ndc`` from.

    Among the bins holding the NDC with enough available, prefer a ready
    robot, then the one that will finish it first, then the fullest bin, then
    the lowest robot and bin (so the choice is deterministic).
    """
    holding = [b for b in bins if b.ndc == ndc]
    if not holding:
        return Unroutable(f"no robot holds NDC {ndc}")
    enough = [b for b in holding if b.available >= quantity]
    if not enough:
        most = max(b.available for b in holding)
        return Unroutable(f"not enough on hand: {quantity} asked, at most {most} available in "
                          f"{len(holding)} bin(s)")
    return min(enough, key=lambda b: (not b.robot_ready, b.finish_s, -b.available,
                                      b.robot, b.bin))
