"""What the supervisor does when a fill goes wrong: one table, read by the code, tests and docs.

Every problem a robot can report about a fill has one rule: what happens to
the order (retry on the same robot, fill it again on another robot, hold it
for a person, or fail it to EXCEPTION) and whether the robot stops until a
person clears it. ``rxfill rules`` prints this table; README.md carries the
same text, and a test keeps the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

MAX_ATTEMPTS = 3
"""Fills one order may take before it goes to EXCEPTION whatever the rule says."""


class Problem(StrEnum):
    """What went wrong on one fill."""

    JAM = "jam"
    RAN_EMPTY = "ran_empty"
    NO_VIAL = "no_vial"
    DOOR_OPENED = "door_opened"
    CAP_FAULT = "cap_fault"
    SCALE_FAULT = "scale_fault"
    SAFE = "safe"
    ABORTED = "aborted"
    WEIGHT_OFF = "weight_off"
    COUNT_BY_HAND = "count_by_hand"
    REFUSED_BUSY = "refused_busy"
    REFUSED_OUTPUT_OCCUPIED = "refused_output_occupied"
    REFUSED_DOOR_OPEN = "refused_door_open"
    REFUSED_NOT_CALIBRATED = "refused_not_calibrated"
    REFUSED_NO_SUCH_BIN = "refused_no_such_bin"
    REFUSED_STOPPED = "refused_stopped"
    REFUSED_BAD_REQUEST = "refused_bad_request"
    NOT_ALLOWED = "not_allowed"
    """The store refused to resume the fill: an expired lot, the robot out of service."""


class OrderAction(StrEnum):
    """What happens to the order."""

    RETRY = "retry"
    """Queue it again on the same robot."""
    REROUTE = "reroute"
    """Fill it again, whole, on another robot holding the NDC; EXCEPTION when none can."""
    WAIT_FOR_PERSON = "wait_for_person"
    """Keep it on this robot; it runs once a person has cleared the robot."""
    FAIL = "fail"
    """EXCEPTION: a person chooses (count by hand, retry, cancel)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """The response to one problem."""

    order: OrderAction
    robot_needs_person: bool
    response: str
    """What the technician does, in a few words."""


RULES: dict[Problem, Rule] = {
    Problem.JAM: Rule(OrderAction.REROUTE, True,
                      "clear the jam; set the partial vial aside"),
    Problem.RAN_EMPTY: Rule(OrderAction.REROUTE, True,
                            "restock the bin; set the partial vial aside"),
    Problem.NO_VIAL: Rule(OrderAction.REROUTE, True, "refill the vial hopper"),
    Problem.DOOR_OPENED: Rule(OrderAction.REROUTE, True,
                              "close the door; set the partial vial aside"),
    Problem.CAP_FAULT: Rule(OrderAction.REROUTE, True,
                            "clear the capper; set the uncapped vial aside"),
    Problem.SCALE_FAULT: Rule(OrderAction.REROUTE, True,
                              "check the scale (tare, span); set the vial aside"),
    Problem.SAFE: Rule(OrderAction.REROUTE, True,
                       "find why it stopped (heartbeat lost, emergency stop); set the vial "
                       "aside: it is never complete"),
    Problem.ABORTED: Rule(OrderAction.FAIL, False,
                          "someone aborted the job at the robot: decide what to do"),
    Problem.WEIGHT_OFF: Rule(OrderAction.FAIL, False,
                             "count the vial by hand; weight and count disagree"),
    Problem.COUNT_BY_HAND: Rule(OrderAction.FAIL, False,
                                "count the vial by hand; the scale cannot tell n from n±1"),
    Problem.REFUSED_BUSY: Rule(OrderAction.RETRY, False,
                               "none: the robot was still busy; the order is sent again"),
    Problem.REFUSED_OUTPUT_OCCUPIED: Rule(OrderAction.WAIT_FOR_PERSON, True,
                                          "take the vial or tablets out of the output"),
    Problem.REFUSED_DOOR_OPEN: Rule(OrderAction.REROUTE, True, "close the door"),
    Problem.REFUSED_NOT_CALIBRATED: Rule(OrderAction.REROUTE, True,
                                         "maintenance: calibrate the bin"),
    Problem.REFUSED_NO_SUCH_BIN: Rule(OrderAction.REROUTE, True,
                                      "maintenance: the configuration names a bin the robot "
                                      "does not have"),
    Problem.REFUSED_STOPPED: Rule(OrderAction.REROUTE, True,
                                  "the robot is stopped on a fault: clear it"),
    Problem.REFUSED_BAD_REQUEST: Rule(OrderAction.FAIL, False,
                                      "the robot refused the order's parameters: check the "
                                      "order"),
    Problem.NOT_ALLOWED: Rule(OrderAction.REROUTE, False,
                              "none at once: the bin's lot expired or the robot went out of "
                              "service before the fill could resume; unload the lot or "
                              "bring the robot back"),
}
"""The one recovery table."""


def rule_for(problem: Problem) -> Rule:
    """The rule for ``problem``."""
    return RULES[problem]


def rules_markdown() -> str:
    """The table as Markdown, as README.md shows it."""
    lines = ["| problem | the order | robot stops for a person | the technician |",
             "|---|---|---|---|"]
    for problem, rule in RULES.items():
        lines.append(f"| {problem} | {rule.order} | {'yes' if rule.robot_needs_person else 'no'}"
                     f" | {rule.response} |")
    return "\n".join(lines)
