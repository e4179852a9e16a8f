"""``rxfill diag registers``: a Modbus robot's registers by number, for maintenance staff
only, refused while the robot works, and every read and write in the audit trail."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from controller.cli.common import (
    DEMO_CONFIG,
    ConfigOption,
    PasswordStdinOption,
    StoreOption,
    TokenOption,
    UserOption,
    credentials,
    fail,
    settings_of,
)
from controller.cli.diag import at_the_robot, maintainer, reach, robot_of
from controller.domain.roles import Duty
from controller.robots.floor import make_driver
from controller.store import Store
from drivers.base import RegisterAccess, VialFiller
from drivers.errors import DriverError
from drivers.filler_types import FillerState

READ = re.compile(r"^(hr|ir):(\d+)(?:-(\d+))?$")
WRITE = re.compile(r"^hr:(\d+)=(\d+)$")


def parse_read(spec: str) -> tuple[str, int, int]:
    """``hr:0-8`` → (``hr``, 0, 9 registers); exit 2 saying the form otherwise."""
    found = READ.match(spec)
    if found is None or (found[3] is not None and int(found[3]) < int(found[2])):
        raise fail(f"--read {spec!r}: expected hr:START[-END] or ir:START[-END], e.g. hr:0-8", 2)
    start = int(found[2])
    return found[1], start, int(found[3] or start) - start + 1


def parse_write(spec: str) -> tuple[int, int]:
    """``hr:3=12`` → (3, 12); exit 2 saying the form otherwise."""
    found = WRITE.match(spec)
    if found is None:
        raise fail(f"--write {spec!r}: expected hr:ADDRESS=VALUE, e.g. hr:3=12", 2)
    return int(found[1]), int(found[2])


def diag_registers(
    robot: Annotated[str, typer.Argument(help="The robot's id in the configuration.")],
    read: Annotated[str | None, typer.Option(help="hr:START[-END] or ir:START[-END].")] = None,
    write: Annotated[str | None, typer.Option(help="hr:ADDRESS=VALUE (never hr:0, CMD).")] = None,
    user: UserOption = None, token: TokenOption = None,
    password_stdin: PasswordStdinOption = False,
    config: ConfigOption = DEMO_CONFIG, store: StoreOption = None,
) -> None:
    """Read or write a Modbus robot's registers by number: maintenance only, refused while
    the robot works, audited."""
    if (read is None) == (write is None):
        raise fail("say --read hr:START[-END] or --write hr:ADDRESS=VALUE (one of them)", 2)
    settings = settings_of(config)
    target = robot_of(settings, robot)
    asked = parse_read(read) if read else None
    change = parse_write(write) if write else None
    creds = credentials(user, token, password_stdin)

    async def work(db: Store) -> str:
        me = await maintainer(db, creds, Duty.REGISTERS)
        try:
            async with reach(settings, target) as (url, _), make_driver(target, url) as driver:
                if not isinstance(driver, RegisterAccess) or not isinstance(driver, VialFiller):
                    raise fail(f"refused: {robot} has no registers (a {target.kind} "
                               f"speaking its serial ICD)")
                state = (await driver.status()).state
                if state is not FillerState.IDLE:
                    raise fail(f"refused: {robot} is {state}: registers are read and written "
                               f"only while it is idle")
                if asked is not None:
                    values = await driver.read_registers(*asked)
                else:
                    assert change is not None
                    await driver.write_register(*change)
        except (DriverError, OSError, ValueError) as exc:
            raise fail(f"{robot}: {exc}") from None
        if asked is not None:
            table, start, _ = asked
            await db.audit.audit(me.name, "registers read", f"robot:{robot}", {
                "table": table, "start": start, "values": values})
            return "\n".join(f"{table}:{start + i:<6} {v:>6}  0x{v:04x}"
                             for i, v in enumerate(values))
        assert change is not None
        await db.audit.audit(me.name, "register written", f"robot:{robot}",
                             {"address": change[0], "value": change[1]})
        return f"{robot}: hr:{change[0]} = {change[1]} (written by {me.name}, read back)"

    at_the_robot(config, store, target, settings, work)
