"""The vial filler driver's background work: a poller and a heartbeat, each on absolute
deadlines (``drivers.schedule``).

The poller reads the state every ``poll_interval`` while the filler is busy (a job, a vial
in the bay, a fault) and every ``idle_poll_interval`` while it is idle; a command makes the
next poll due at once. The heartbeat writes HEARTBEAT every ``heartbeat_interval``, busy or
not: the ICD's watchdog counts from the last change it saw.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from drivers.errors import DriverError
from drivers.events import Backlog, deliver
from drivers.filler_types import FillerState, FillerStatus
from drivers.schedule import Schedule
from drivers.tasks import cancelled
from drivers.vial_filler.line import Expect, write_heartbeat
from drivers.vial_filler.protocol import Holding

log = structlog.get_logger(__name__)


class Background:
    """The poller and the heartbeat (mixed into ModbusVialFiller, which provides the rest)."""

    name: str
    unit: int
    poll_interval: float
    idle_poll_interval: float
    heartbeat_interval: float
    last_status: FillerStatus | None
    polls: Schedule | None
    _lost: str | None
    _listeners: set[Backlog[FillerStatus]]
    _heartbeat: int

    async def status(self) -> FillerStatus:
        raise NotImplementedError

    async def _request(self, what: str, call: Callable[[Any], Awaitable[Any]],
                       expect: Expect) -> Any:
        raise NotImplementedError

    def _link_lost(self, why: str) -> None:
        raise NotImplementedError

    def _poll_period(self) -> float:
        status = self.last_status
        idle = status is not None and status.state is FillerState.IDLE
        return self.idle_poll_interval if idle else self.poll_interval

    async def _poll(self) -> None:
        """Read the state on ``polls``' schedule; tell every reader when it changed. The first
        poll is a period after ``open``, which read the state itself."""
        schedule = self.polls
        assert schedule is not None, "open makes the poller's schedule before starting it"
        while self._lost is None and not cancelled():
            await schedule.next(self._poll_period())
            try:
                status = await self.status()
            except DriverError as exc:
                if cancelled():
                    raise asyncio.CancelledError from exc
                log.warning("filler poll failed; link lost", robot=self.name, error=str(exc))
                # A reply that was not the one asked for is a link out of step: it is lost
                # too, so that its owner reconnects (the heartbeat stops with the poll).
                self._link_lost(str(exc))
                return
            if status != self.last_status:
                self.last_status = status
                deliver(self._listeners, status)

    async def _beat(self) -> None:
        """Write a new HEARTBEAT value every interval, so the device never drops into SAFE."""
        schedule = Schedule()
        while self._lost is None and not cancelled():
            await schedule.next(self.heartbeat_interval)
            self._heartbeat = (self._heartbeat + 1) & 0xFFFF
            try:
                await self._request("heartbeat", functools.partial(
                    write_heartbeat, value=self._heartbeat, unit=self.unit),
                    Expect(6, Holding.HEARTBEAT, 1))
            except DriverError as exc:
                if cancelled():
                    raise asyncio.CancelledError from exc
                log.warning("filler heartbeat failed; link lost", robot=self.name,
                            error=str(exc))
                # Never a live link without a heartbeat (the filler would go SAFE mid-vial
                # while we thought it well): lost, so that its owner reconnects.
                self._link_lost(str(exc))
                return
