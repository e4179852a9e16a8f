"""Robots: their state, the site's status, and what a technician does at a robot."""

from fastapi import APIRouter

from controller.api.deps import Site, Who

router = APIRouter(tags=["technician"])


@router.get("/api/robots")
async def robots(_: Who, pharmacy: Site) -> list[dict[str, object]]:
    """Each robot's state, and what it waits for a person to fix."""
    return pharmacy.robots()


@router.get("/api/status")
async def status(_: Who, pharmacy: Site) -> dict[str, object]:
    """The site at a glance: robots online or why not, MQTT, the alarm checks."""
    return pharmacy.status()


@router.post("/api/robots/{robot}/clear")
async def clear_robot(robot: str, who: Who, pharmacy: Site) -> dict[str, object]:
    """A person fixed what stopped the robot (jam, open door, safe stop) and took what
    its output held."""
    await pharmacy.clear_robot(robot, who)
    return next(r for r in pharmacy.robots() if r["id"] == robot)


@router.post("/api/robots/{robot}/take")
async def take_output(robot: str, who: Who, pharmacy: Site) -> dict[str, object]:
    """A person took the vial or tablets waiting in the robot's output (a vial's label
    scan does this by itself): the robot may start its next job."""
    await pharmacy.take_output(robot, who)
    return next(r for r in pharmacy.robots() if r["id"] == robot)
