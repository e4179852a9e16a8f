"""The store's calibrations: each bin's counting settings, versioned, for the NDC they were
made for. A robot fills from a bin only with a calibration for the drug the bin holds now
(checked by ``start_fill``, in its transaction)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from controller.domain.roles import Duty, Person, require
from controller.store.audit_records import record
from controller.store.errors import StoreError
from controller.store.schema import bins, calibration_runs, calibrations, scale_checks

if TYPE_CHECKING:
    from controller.store.store import Store

FROM_CONFIGURATION = "configuration"
BY_A_PERSON = "person"
GUIDED = "guided"
PROPOSED, ACCEPTED, NO_PROPOSAL = "proposed", "accepted", "no proposal"


@dataclass(frozen=True, slots=True)
class Calibration:
    """One version of a bin's calibration."""

    id: int
    robot: str
    bin: int
    ndc: str
    settings: Mapping[str, Any]
    source: str
    """``configuration`` (read from the file at start) or ``person``."""
    who: str
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class GuidedCalibration:
    """A guided calibration of a bin: its runs, and the settings they agreed on (None when
    they never did: ``why`` says so)."""

    id: int
    robot: str
    bin: int
    ndc: str
    runs: list[dict[str, Any]]
    proposal: Mapping[str, Any] | None
    why: str
    previous: int | None
    """The bin's calibration when the runs were made (the one acceptance replaces)."""
    state: str
    """``proposed``, ``accepted`` or ``no proposal``."""
    who: str
    at: datetime
    decided_by: str | None
    decided_at: datetime | None
    calibration: int | None
    """The calibration acceptance made."""


@dataclass(frozen=True, slots=True)
class ScaleCheck:
    """A robot's scale calibration and the check after it."""

    robot: str
    passed: bool
    readings: Mapping[str, Any]
    who: str
    at: datetime


def _guided(row: sa.RowMapping) -> GuidedCalibration:
    return GuidedCalibration(
        row["id"], row["robot"], row["bin"], row["ndc"], json.loads(row["runs"]),
        json.loads(row["proposal"]) if row["proposal"] else None, row["why"], row["previous"],
        row["state"], row["who"], row["at"], row["decided_by"], row["decided_at"],
        row["calibration"])


async def scale_out_of_span_why(conn: AsyncConnection, robot: str) -> str | None:
    """Why a robot may not fill by its scale (its last calibration's check failed), or None."""
    last = (await conn.execute(sa.select(scale_checks).where(
        scale_checks.c.robot == robot).order_by(scale_checks.c.id.desc()).limit(1))).first()
    if last is None or last.passed:
        return None
    return (f"{robot}'s scale failed its check ({last.who}, {last.at:%Y-%m-%d %H:%M}): its "
            f"weights would check no count; calibrate the scale again (rxfill calibrate scale "
            f"{robot}) before filling")


async def _acceptable(conn: AsyncConnection, robot: str, number: int,
                      guided: int) -> GuidedCalibration:
    """The guided calibration, if its proposal may become the bin's now; else StoreError."""
    row = (await conn.execute(sa.select(calibration_runs).where(
        calibration_runs.c.id == guided, calibration_runs.c.robot == robot,
        calibration_runs.c.bin == number))).mappings().first()
    if row is None:
        raise StoreError(f"no guided calibration {guided} of {robot}/{number}")
    made = _guided(row)
    ndc = await conn.scalar(sa.select(bins.c.ndc).where(
        bins.c.robot == robot, bins.c.bin == number))
    history = await calibrations_of(conn, robot, number)
    if made.state != PROPOSED or made.proposal is None:
        raise StoreError(f"guided calibration {guided} is {made.state}: nothing to accept")
    if made.ndc != ndc:
        raise StoreError(f"guided calibration {guided} was run on NDC {made.ndc}; "
                         f"{robot}/{number} holds NDC {ndc} now: run it again")
    if (history[0].id if history else None) != made.previous:
        raise StoreError(f"{robot}/{number} was calibrated again since guided calibration "
                         f"{guided} ran: run it again")
    return made


def _of(row: sa.RowMapping) -> Calibration:
    return Calibration(row["id"], row["robot"], row["bin"], row["ndc"],
                       json.loads(row["settings"]), row["source"], row["who"], row["reason"],
                       row["at"])


async def calibrations_of(conn: AsyncConnection, robot: str, number: int) -> list[Calibration]:
    """A bin's calibrations, newest first."""
    rows = (await conn.execute(sa.select(calibrations).where(
        calibrations.c.robot == robot, calibrations.c.bin == number).order_by(
        calibrations.c.id.desc()))).mappings().all()
    return [_of(row) for row in rows]


async def uncalibrated_why(conn: AsyncConnection, robot: str, number: int,
                           ndc: str) -> str | None:
    """Why a robot may not count ``ndc`` from this bin by its calibration, or None."""
    history = await calibrations_of(conn, robot, number)
    if not history:
        return (f"{robot} bin {number} was never calibrated: calibrate it for NDC {ndc} "
                f"(rxfill calibrate channel {robot}/{number})")
    latest = history[0]
    if latest.ndc != ndc:
        return (f"{robot} bin {number} was calibrated for NDC {latest.ndc} ({latest.who}, "
                f"{latest.at:%Y-%m-%d %H:%M}); it holds NDC {ndc} now: calibrate it for that "
                f"drug (rxfill calibrate channel {robot}/{number}) before filling")
    return None


async def seed_from_configuration(conn: AsyncConnection, robot: str, number: int, ndc: str,
                                  settings: Mapping[str, Any], who: str, at: datetime) -> None:
    """Record the configuration's calibration of a bin when the store has none, or when the
    file says something new since it was last read (a person's later calibration stands
    while the file is unchanged)."""
    history = await calibrations_of(conn, robot, number)
    last_read = next((c for c in history if c.source == FROM_CONFIGURATION), None)
    if history and last_read is not None and (last_read.ndc, dict(last_read.settings)) == (
            ndc, dict(settings)):
        return
    await _insert(conn, robot, number, ndc, settings, FROM_CONFIGURATION, who,
                  "from the configuration file", at)


async def _insert(conn: AsyncConnection, robot: str, number: int, ndc: str,
                  settings: Mapping[str, Any], source: str, who: str, reason: str,
                  at: datetime) -> Calibration:
    result = await conn.execute(sa.insert(calibrations).values(
        robot=robot, bin=number, ndc=ndc, settings=json.dumps(dict(settings), sort_keys=True),
        source=source, who=who, reason=reason, at=at))
    (key,) = result.inserted_primary_key or (None,)
    await record(conn, at, who, "bin calibrated", f"bin:{robot}/{number}", None,
                 {"ndc": ndc, "settings": dict(settings), "source": source, "reason": reason})
    history = await calibrations_of(conn, robot, number)
    return next(c for c in history if c.id == key)


class CalibrationRecords:
    """Calibrations as people record, read and restore them."""

    def __init__(self, db: Store) -> None:
        self._db = db

    async def calibration_history(self, robot: str, number: int) -> list[Calibration]:
        """A bin's calibrations, newest first (the first is the bin's)."""
        async with self._db.engine.connect() as conn:
            return await calibrations_of(conn, robot, number)

    async def record_calibration(self, robot: str, number: int, settings: Mapping[str, Any], *,
                                 by: Person, reason: str) -> Calibration:
        """A person's calibration of a bin, for the NDC it holds now (maintenance only)."""
        require(by, Duty.CALIBRATE)
        if not reason.strip():
            raise StoreError("say why the bin is calibrated (a new drug, a miscount…)")
        async with self._db.transaction() as conn:
            ndc = await conn.scalar(sa.select(bins.c.ndc).where(
                bins.c.robot == robot, bins.c.bin == number))
            if ndc is None:
                raise StoreError(f"no bin {robot}/{number}")
            return await _insert(conn, robot, number, ndc, settings, BY_A_PERSON, by.name,
                                 reason.strip(), self._db.clock.now())

    async def restore_calibration(self, robot: str, number: int, version: int, *,
                                  by: Person) -> Calibration:
        """Make an earlier version the bin's again (recorded as a new version); refused for
        a version made for another drug than the bin holds now."""
        require(by, Duty.CALIBRATE)
        async with self._db.transaction() as conn:
            history = await calibrations_of(conn, robot, number)
            earlier = next((c for c in history if c.id == version), None)
            ndc = await conn.scalar(sa.select(bins.c.ndc).where(
                bins.c.robot == robot, bins.c.bin == number))
            if earlier is None:
                raise StoreError(f"no calibration {version} of {robot}/{number}; it has "
                                 f"{', '.join(str(c.id) for c in history) or 'none'}")
            if earlier.ndc != ndc:
                raise StoreError(f"calibration {version} was made for NDC {earlier.ndc}; "
                                 f"{robot}/{number} holds NDC {ndc} now")
            return await _insert(conn, robot, number, ndc, earlier.settings, BY_A_PERSON,
                                 by.name, f"restored calibration {version}",
                                 self._db.clock.now())

    async def guided_calibrations(self, robot: str, number: int) -> list[GuidedCalibration]:
        """A bin's guided calibrations, newest first."""
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(sa.select(calibration_runs).where(
                calibration_runs.c.robot == robot, calibration_runs.c.bin == number).order_by(
                calibration_runs.c.id.desc()))).mappings().all()
        return [_guided(row) for row in rows]

    async def record_guided(self, robot: str, number: int, runs: list[dict[str, Any]],
                            proposal: Mapping[str, Any] | None, why: str, *,
                            by: Person) -> GuidedCalibration:
        """A guided calibration's runs, for the NDC the bin holds: a proposal to accept, or
        (``proposal`` None) the runs that never agreed and why."""
        require(by, Duty.CALIBRATE)
        now = self._db.clock.now()
        async with self._db.transaction() as conn:
            ndc = await conn.scalar(sa.select(bins.c.ndc).where(
                bins.c.robot == robot, bins.c.bin == number))
            if ndc is None:
                raise StoreError(f"no bin {robot}/{number}")
            history = await calibrations_of(conn, robot, number)
            state = PROPOSED if proposal is not None else NO_PROPOSAL
            result = await conn.execute(sa.insert(calibration_runs).values(
                robot=robot, bin=number, ndc=ndc, runs=json.dumps(runs),
                proposal=json.dumps(dict(proposal), sort_keys=True) if proposal else None,
                why=why, previous=history[0].id if history else None, state=state,
                who=by.name, at=now))
            (key,) = result.inserted_primary_key or (None,)
            await record(conn, now, by.name, f"calibration {state}", f"bin:{robot}/{number}",
                         None, {"ndc": ndc, "runs": len(runs), "proposal": proposal, "why": why})
            row = (await conn.execute(sa.select(calibration_runs).where(
                calibration_runs.c.id == key))).mappings().one()
        return _guided(row)

    async def proposal_to_accept(self, robot: str, number: int,
                                 guided: int) -> GuidedCalibration:
        """The guided calibration whose proposal may become the bin's now; StoreError says
        why not (as ``accept_proposal`` would), so that nothing is written to the robot for a
        proposal the store will refuse."""
        async with self._db.engine.connect() as conn:
            return await _acceptable(conn, robot, number, guided)

    async def accept_proposal(self, robot: str, number: int, guided: int, *,
                              by: Person) -> Calibration:
        """Make a guided calibration's proposal the bin's calibration (maintenance only);
        refused when it is not a standing proposal, the bin holds another drug now, or the
        bin was calibrated again since its runs."""
        require(by, Duty.CALIBRATE)
        now = self._db.clock.now()
        async with self._db.transaction() as conn:
            made = await _acceptable(conn, robot, number, guided)
            assert made.proposal is not None
            calibration = await _insert(
                conn, robot, number, made.ndc, made.proposal, GUIDED, by.name,
                f"guided calibration {guided}: {len(made.runs)} runs by {made.who}", now)
            await conn.execute(sa.update(calibration_runs).where(
                calibration_runs.c.id == guided).values(
                state=ACCEPTED, decided_by=by.name, decided_at=now,
                calibration=calibration.id))
        return calibration

    async def record_scale_check(self, robot: str, passed: bool, readings: Mapping[str, Any],
                                 *, by: Person) -> ScaleCheck:
        """A robot's scale calibration and its check: a failed check stops its fills until
        a later one passes."""
        require(by, Duty.CALIBRATE)
        now = self._db.clock.now()
        async with self._db.transaction() as conn:
            await conn.execute(sa.insert(scale_checks).values(
                robot=robot, passed=passed, readings=json.dumps(dict(readings)), who=by.name,
                at=now))
            await record(conn, now, by.name, "scale calibrated", f"robot:{robot}", None,
                         {**readings, "passed": passed})
        return ScaleCheck(robot, passed, readings, by.name, now)

    async def scale_failed_why(self, robot: str) -> str | None:
        """Why the robot's scale may not be trusted (its last check failed), or None."""
        async with self._db.engine.connect() as conn:
            return await scale_out_of_span_why(conn, robot)

    async def scale_checks(self, robot: str) -> list[ScaleCheck]:
        """A robot's scale calibrations, newest first."""
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(sa.select(scale_checks).where(
                scale_checks.c.robot == robot).order_by(scale_checks.c.id.desc()))).all()
        return [ScaleCheck(r.robot, r.passed, json.loads(r.readings), r.who, r.at) for r in rows]
