"""The pharmacy's work after the robots: intake, labels, the technician's choices, the
pharmacist's verification and the release. The REST API and the CLI call this; the rules
are the domain's (``workflow.py``, ``prescriptions.py``, ``labels.py``) and every step is
recorded by the store in the transaction that checks it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Mapping

import structlog

from controller.clock import Clock
from controller.config import Settings
from controller.domain.labels import (
    LabelContent,
    LabelError,
    LabelLayout,
    label_content,
    layout,
)
from controller.domain.orders import Order, OrderState
from controller.domain.prescriptions import Problem, prescription_problems
from controller.domain.roles import Duty, Person, WorkflowError, require
from controller.domain.weight import check_weight
from controller.pharmacy.alarms import Alarms
from controller.pharmacy.bins import Bins
from controller.pharmacy.evidence import Evidence, evidence_of
from controller.pharmacy.maintenance import Maintenance
from controller.pharmacy.refusals import NotFound, OrderInvalid
from controller.robots.notices import Notice, OrderMoved, OrderSettled
from controller.robots.output import OutputError
from controller.robots.simulated import Simulator, pour, sample_hands
from controller.robots.supervisor import Supervisor
from controller.store import FillRecord, OrderRecord, Store, StoreError, fill_code
from controller.store.stock import SUPERVISOR
from controller.store.verification import LabelRecord, parse_fill_code
from drivers import errors
from drivers.base import LabelPrinter

log = structlog.get_logger(__name__)

HAND_SCALE_NOISE_MG = 5.0
"""The counting station's bench scale: one standard deviation of its reading."""
ON_DUTY = "pharmacist_on_duty"


class Pharmacy:
    """One site's prescription work, over its store, supervisor and label printer."""

    def __init__(self, settings: Settings, store: Store, supervisor: Supervisor, *,
                 printer: LabelPrinter | None = None, clock: Clock | None = None) -> None:
        self.settings = settings
        self.store = store
        self.supervisor = supervisor
        self.printer = printer
        self.clock = clock or supervisor.clock
        self._printing = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self.alarms = Alarms(supervisor)
        """Standing alarms and a person's answers to them."""
        self.bins = Bins(settings, supervisor)
        """The bins as technicians see them, and restocking by scan."""
        self.maintenance = Maintenance(settings, supervisor)
        """A robot's wire, live, and each bin's calibrations (maintenance staff)."""
        supervisor.subscribe(self._on_notice)

    # -- intake ------------------------------------------------------------------

    def problems(self, order: Order) -> list[Problem]:
        """Why ``order`` cannot be filled as written (each with its field); empty if it can."""
        return prescription_problems(order, self.settings.formulary, self.clock.now().date())

    async def submit(self, order: Order, person: Person) -> tuple[OrderRecord, bool]:
        """Take an order: (the order, True when new). OrderInvalid (nothing stored) unless
        every field is right; the same prescription fill again is the same order."""
        require(person, Duty.SUBMIT_ORDER)
        problems = self.problems(order)
        if problems:
            raise OrderInvalid(problems)
        return await self.supervisor.take(order, who=person.name)

    async def order(self, order_id: int) -> OrderRecord:
        """One order, or NotFound."""
        try:
            return await self.store.orders.order(order_id)
        except LookupError:
            raise NotFound(f"no order {order_id}") from None

    # -- the technician ------------------------------------------------------------

    async def cancel(self, order_id: int, person: Person, reason: str,
                     tablets: str | None = None) -> OrderRecord:
        """Give an order up. One with a filled vial is a pharmacist's to cancel, saying what
        became of its tablets (``returned`` or ``wasted``)."""
        await self.order(order_id)
        await self.store.handwork.cancel_order(order_id, person, reason, tablets=tablets)
        self.supervisor.withdrawn(order_id)
        return self._moved(await self.store.orders.order(order_id), person)

    async def retry(self, order_id: int, person: Person, robot: str | None) -> OrderRecord:
        """Send an order in exception to the robots again (to ``robot``, if named)."""
        await self.order(order_id)
        if robot is not None and robot not in self.supervisor.robots:
            raise WorkflowError(f"no robot {robot!r}; expected one of "
                                f"{', '.join(self.supervisor.robots)}")
        await self.store.handwork.retry_order(order_id, person)
        return self._moved(await self.supervisor.requeued(order_id, robot=robot), person)

    async def hand_count(self, order_id: int, person: Person, count: int, weight_mg: float,
                         source: tuple[str, int] | None, found: int | None = None,
                         ) -> OrderRecord:
        """An order in exception counted by hand; the vial's net weight must agree with the
        count. ``found``: the tablets in the vial the robot left (weight off, or too many
        for the scale), recounted; otherwise counted afresh from ``source`` (or the bin its
        last fill used)."""
        order = await self.order(order_id)
        drug = self.settings.formulary[order.ndc]
        bin_id = None
        if source is not None:
            try:
                bin_id = (await self.store.stock.bin(*source)).id
            except LookupError:
                raise WorkflowError(f"no bin {source[0]}/{source[1]}") from None
        elif found is None:
            fills = await self.store.orders.fills(order_id)
            if not fills:
                raise WorkflowError("say which bin the tablets were counted from")
            bin_id = fills[-1].bin_id
        try:
            check = check_weight(count=count, measured_mg=weight_mg,
                                 unit_mass_mg=drug.unit_mass_mg,
                                 spread_pct=drug.unit_mass_spread_pct,
                                 scale_noise_mg=HAND_SCALE_NOISE_MG)
        except ValueError as exc:
            raise WorkflowError(str(exc)) from None
        recounted = (await self.store.orders.fills(order_id))[-1].id if found is not None else None
        await self.store.handwork.hand_fill(order_id, bin_id, count, check, person, found=found)
        if recounted is not None and (robot := self.supervisor.holding(recounted)):
            # The person has the robot's vial in hand: its output is empty again.
            await self.supervisor.take_output(robot, person.name, fill_id=recounted,
                                              via="recounted by hand")
        settled = self._moved(await self.store.orders.order(order_id), person)
        await self.print_label(order_id, who=SUPERVISOR)
        return settled

    def robots(self) -> list[dict[str, object]]:
        """Each robot: its state, what it waits for a person to fix, and what waits in its
        output for a person to take."""
        return [{"id": r.id, "kind": r.config.kind, "state": r.state, "online": r.online,
                 "attention": r.attention, "job": r.job,
                 "output": None if r.output is None else {
                     "fill": r.output.fill_id, "label": fill_code(r.output.fill_id),
                     "order": r.output.order_id, "complete": r.output.complete,
                     "since": r.output.since.isoformat()}}
                for r in self.supervisor.robots.values()]

    def status(self) -> dict[str, object]:
        """The site at a glance: which robots answer, whether alarms reach the broker, and
        what keeps failing now (None where nothing does)."""
        sup = self.supervisor
        publisher = sup.publisher
        return {
            "robots": {r.id: "online" if r.online else f"offline: {r.offline_reason}"
                       for r in sup.robots.values()},
            "mqtt": ("off" if publisher is None else "connected" if publisher.connected.is_set()
                     else publisher.problem or "connecting"),
            "alarm_checks": sup.watch.trouble.now or "ok",
        }

    async def take_output(self, robot: str, person: Person) -> None:
        """A person took what ``robot``'s output held (a vial, or a chute's tablets): the
        robot may start its next job."""
        require(person, Duty.TAKE_OUTPUT)
        if robot not in self.supervisor.robots:
            raise NotFound(f"no robot {robot!r}; expected one of "
                           f"{', '.join(self.supervisor.robots)}")
        try:
            await self.supervisor.take_output(robot, person.name)
        except OutputError as exc:
            raise WorkflowError(str(exc)) from None

    async def clear_robot(self, robot: str, person: Person) -> None:
        """A person fixed what stopped ``robot`` (jam, door, safe stop): it works again."""
        require(person, Duty.CLEAR_ROBOT)
        if robot not in self.supervisor.robots:
            raise NotFound(f"no robot {robot!r}; expected one of "
                           f"{', '.join(self.supervisor.robots)}")
        worker = self.supervisor.robots[robot]
        if worker.attention is None:
            raise WorkflowError(f"{robot} is not waiting for a person")
        await self.supervisor.clear(robot, person.name)

    # -- labels ----------------------------------------------------------------------

    async def sign_on_duty(self, person: Person) -> None:
        """``person`` (a pharmacist) is the responsible pharmacist labels name from now on."""
        require(person, Duty.SIGN_ON_DUTY)
        await self.store.orders.set_info(ON_DUTY, person.name, who=person.name)

    async def pharmacist_on_duty(self) -> str | None:
        """Who labels name: the pharmacist signed on duty, else the site's pharmacist."""
        return await self.store.orders.info(ON_DUTY) or self.settings.config.site.pharmacist

    async def label(self, order_id: int, *, copy: int = 1) -> LabelContent:
        """The label of the order's filled vial."""
        order = await self.order(order_id)
        return await self._label(order, await self._vial(order), copy)

    async def _label(self, order: OrderRecord, fill: FillRecord, copy: int) -> LabelContent:
        drug = self.settings.formulary[order.ndc]
        site = self.settings.config.site
        return label_content(
            pharmacy=(site.name, site.address, site.phone), rx_number=order.rx_number,
            filled_on=(fill.ended_at or fill.started_at).date(),
            patient_name=order.patient_name, sig=order.sig, drug=drug, quantity=fill.counted or 0,
            prescriber=order.prescriber_name or "", refills=order.refills,
            lots=await self.store.orders.fill_lots(fill.id),
            pharmacist=await self.pharmacist_on_duty(),
            code=fill.code, copy=copy)

    async def print_label(self, order_id: int, *, who: Person | str,
                          reason: str | None = None) -> LabelRecord:
        """Print the vial's label (a reprint needs a reason and is counted); ``who`` is a
        person (who needs the duty's role) or the supervisor printing after the fill. The
        attempt is recorded either way; PrinterNotReady, LabelError or WorkflowError (a lot
        past its expiry, no filled vial) say why nothing printed."""
        if isinstance(who, Person):
            require(who, Duty.PRINT_LABEL)
            who = who.name
        elif who != SUPERVISOR:
            raise ValueError(f"print_label: {who!r} is not a person; only the supervisor "
                             f"prints without one")
        order = await self.order(order_id)
        fill = await self._vial(order)
        name = self.settings.config.printer.url
        try:
            fill, order = await self.store.verification.vial_to_label(fill.id)
        except WorkflowError as exc:
            if order.state is OrderState.FILLED:  # the vial is there; its label is refused
                await self.store.verification.label_sent(fill.id, who=who, printer=name,
                                                         outcome="refused",
                                                         reason=str(exc))
            raise
        async with self._printing:
            copies = [x for x in await self.store.verification.labels_for(fill.id)
                      if x.outcome == "printed"]
            if copies and not (reason or "").strip():
                raise WorkflowError(f"the label was printed {len(copies)} time(s): a reprint "
                                    f"needs a reason")
            try:
                content = await self._label(order, fill, len(copies) + 1)
                await self._send(layout(content))
            except (errors.DriverError, LabelError) as exc:
                await self.store.verification.label_sent(fill.id, who=who, printer=name,
                                                         outcome="refused",
                                                         reason=str(exc))
                raise
            return await self.store.verification.label_sent(fill.id, who=who, printer=name,
                                                            outcome="printed", reason=reason)

    async def _send(self, label: LabelLayout) -> None:
        if self.printer is None:
            raise errors.PrinterNotReady("no label printer is configured", device="printer",
                                         code="none")
        if not self.printer.connected:
            await self.printer.open()
        try:
            await self.printer.print_label(label)
        except (errors.LinkError, errors.NotConnectedError):
            await self.printer.close()  # opened again for the next label
            raise

    # -- the label station and the pharmacist ----------------------------------------------

    async def scan_label(self, order_id: int, scanned: str, person: Person) -> OrderRecord:
        """The technician scanned the printed label at the vial: LABELED if it is its label.
        A vial still in its robot's output is then out of it: the robot is told so."""
        await self.order(order_id)
        await self.store.verification.label_scanned(order_id, scanned, person)
        fill_id = parse_fill_code(scanned)
        if robot := self.supervisor.holding(fill_id):
            await self.supervisor.take_output(robot, person.name, fill_id=fill_id,
                                              via="label scanned at the robot")
        return self._moved(await self.store.orders.order(order_id), person)

    async def vial_for_label(self, scanned: str) -> int:
        """The vial (fill id) a scanned label names, if it is still its order's vial:
        NotTheVial says why not, NotFound when no vial has that number."""
        fill_id = parse_fill_code(scanned)
        try:
            await self.store.vials.vial(fill_id)
        except StoreError as exc:
            raise NotFound(str(exc)) from None
        return fill_id

    async def current_vial(self, order_id: int) -> int:
        """The order's vial now (its fill id), or WorkflowError when it has none."""
        return (await self._vial(await self.order(order_id))).id

    async def evidence_for_label(self, scanned: str, person: Person) -> Evidence:
        """The verification station's scan: that vial's evidence (pharmacists only)."""
        require(person, Duty.SEE_EVIDENCE)
        return await self.evidence(await self.vial_for_label(scanned), person)

    async def evidence_for_order(self, order_id: int, person: Person) -> Evidence:
        """The evidence of the order's vial now (pharmacists only)."""
        require(person, Duty.SEE_EVIDENCE)
        return await self.evidence(await self.current_vial(order_id), person)

    async def evidence(self, fill_id: int, person: Person) -> Evidence:
        """Everything the pharmacist checks before approving the vial (pharmacists only)."""
        require(person, Duty.SEE_EVIDENCE)
        return await evidence_of(self.store, self.settings.formulary, fill_id)

    async def witness(self, fill_id: int, count: int, person: Person) -> None:
        """A pharmacist's witnessed second count of a schedule II vial."""
        await self._acting_on(fill_id, person, self.store.verification.witness_count(
            fill_id, count, person))

    async def verify(self, fill_id: int, person: Person) -> OrderRecord:
        """The pharmacist approves the vial."""
        return await self._acting_on(fill_id, person,
                                     self.store.verification.verify_vial(fill_id, person))

    async def reject(self, fill_id: int, person: Person, reason: str, *, fill_again: bool,
                     tablets: str) -> OrderRecord:
        """The pharmacist refuses the vial; filled again (routed now) or cancelled."""
        order = await self._acting_on(fill_id, person, self.store.verification.reject_vial(
            fill_id, person, reason, fill_again=fill_again, tablets=tablets))
        if order.state is OrderState.QUEUED:
            return await self.supervisor.requeued(order.id)
        return order

    async def release(self, fill_id: int, person: Person, destination: str,
                      carrier: str | None, tracking: str | None) -> OrderRecord:
        """To the pickup bin, or to shipping with carrier and tracking number."""
        return await self._acting_on(fill_id, person, self.store.verification.release_vial(
            fill_id, person, destination, carrier=carrier, tracking=tracking))

    async def _acting_on(self, fill_id: int, person: Person,
                         step: Awaitable[object]) -> OrderRecord:
        """Do a step on a vial; its order as it stands after (NotFound: no such vial)."""
        try:
            await step
            fill = await self.store.orders.fill(fill_id)
        except StoreError as exc:
            raise NotFound(str(exc)) from None
        assert fill is not None
        return self._moved(await self.store.orders.order(fill.order_id), person)

    def _moved(self, order: OrderRecord, person: Person) -> OrderRecord:
        """Tell the screens a person moved ``order`` on; it, unchanged."""
        self.supervisor.news(OrderMoved(order.id, order.state, person.name))
        return order

    # -- inside ------------------------------------------------------------------------

    def _on_notice(self, notice: Notice) -> None:
        """A robot filled a vial: print its label at once."""
        if isinstance(notice, OrderSettled) and notice.state == OrderState.FILLED:
            task = asyncio.get_running_loop().create_task(
                self._auto_label(notice.order_id), name=f"label-{notice.order_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _auto_label(self, order_id: int) -> None:
        try:
            await self.print_label(order_id, who=SUPERVISOR)
        except (errors.DriverError, LabelError, WorkflowError) as exc:
            # Recorded as refused; the technician reprints once the printer is fixed.
            log.warning("label not printed", order=order_id, error=str(exc))

    async def idle(self) -> None:
        """Wait until the labels being printed are printed (or refused)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def simulated(self, simulators: Mapping[str, Simulator]) -> None:
        """The world of these simulated robots takes what a person's hands would: a restock
        is poured into the simulator, and a calibration's samples back into it."""
        self.bins.hands = functools.partial(pour, simulators)
        self.maintenance.sample_hands = functools.partial(sample_hands, simulators)

    async def close(self) -> None:
        """Stop a guided calibration; wait for labels being printed; close the printer's
        link."""
        await self.maintenance.close()
        await self.idle()
        if self.printer is not None:
            await self.printer.close()

    async def _vial(self, order: OrderRecord) -> FillRecord:
        """The order's vial now: its last complete fill, unless that was set aside."""
        vial = await self.store.vials.order_vial(order.id)
        if vial is None:
            raise WorkflowError(f"order {order.id} has no filled vial")
        return vial
