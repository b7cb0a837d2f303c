"""The reservation engine: every change to who holds which place.

The guarantee (no place in two live reservations, no standing zone past capacity)
rests on one statement per request: a conditional UPDATE that claims only rows that
are free *at that instant* (available, or held with an expired hold) and reports how
many it claimed. Python never reads availability and then writes on the strength of
that read. On MariaDB the UPDATE takes row locks in primary-key order, so concurrent
holds serialise on the rows they share and re-check the condition on the newest
committed version (READ COMMITTED); on SQLite every write transaction is IMMEDIATE,
so writers queue. A customer's own holds are serialised by locking their user row
first, which makes the per-customer limit atomic too.
"""

import datetime as dt
import functools
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext

from events.layout_builder import SEAT_PITCH
from events.models import Discount, Performance, PriceGrade, Seat, Section
from notifications.models import Notification
from notifications.services import notification_queue
from ticketing import compiled
from ticketing.db import is_lock_conflict

from . import hold_sql
from .models import (
    SEATS_CHANGED,
    CancelledTicket,
    InventoryItem,
    Reservation,
    ReservationLine,
    ReservationTransition,
    free_condition,
)

logger = logging.getLogger(__name__)

Status = Reservation.Status

# The only state changes there are; anything else is a bug or a race lost.
TRANSITIONS: dict[str, set[str]] = {
    Status.HELD: {Status.PENDING_PAYMENT, Status.RELEASED, Status.EXPIRED},
    Status.PENDING_PAYMENT: {Status.CONFIRMED, Status.HELD, Status.RELEASED, Status.EXPIRED},
    Status.CONFIRMED: {Status.CANCELLED},
    # A payment made in time whose news came after the sweep: confirmed if its places are
    # still free, as it would have been had the sweeper not run yet.
    Status.EXPIRED: {Status.CONFIRMED},
    Status.RELEASED: set(),
    Status.CANCELLED: set(),
}


class ReservationError(Exception):
    """A request the engine refused; `message` is written for the customer."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class SeatsTaken(ReservationError):
    """Seats gone: `labels` and `item_ids` of all of them; `yours` are the labels of
    those the customer has already, in another of their bookings (a second tab)."""

    def __init__(self, labels: list[str], item_ids: list[int], yours: list[str] = ()):
        self.labels = labels
        self.item_ids = list(item_ids)
        others = [label for label in labels if label not in yours]
        if others:
            message = ngettext(
                "Sorry, this seat was just taken by someone else: %(seats)s. Please choose another.",
                "Sorry, these seats were just taken by someone else: %(seats)s. Please choose others.",
                len(others),
            ) % {"seats": ", ".join(others)}
        else:
            message = ngettext(
                "You already have this seat in another of your bookings: %(seats)s. See My bookings.",
                "You already have these seats in another of your bookings: %(seats)s. See My bookings.",
                len(labels),
            ) % {"seats": ", ".join(labels)}
        super().__init__(message)


class ZoneShort(ReservationError):
    """A standing zone has fewer free places than were asked for (just taken, like a
    seat, and answered the same way)."""


class InvalidTransition(ReservationError):
    pass


class OverLimit(ReservationError):
    """A late payment for a hold that ended, after which the customer booked other
    places up to the limit: confirming it would pass the limit (payments refund it)."""


class PriceChanged(ReservationError):
    """The hold's total is not what the caller read (ticket types changed meanwhile)."""


class TicketsGone(ReservationError):
    """Tickets asked for that are not on the booking (cancelled in another window)."""

    def __init__(self):
        super().__init__(_("Those tickets are not on this booking any more. Please reload the page."))


class PerformanceGone(ReservationError):
    """The performance was cancelled or has started: nothing more is sold for it, not
    even to a payment already under way (payments refund it)."""


def check_payable(performance: Performance, now: dt.datetime) -> None:
    """Raise PerformanceGone unless a hold of this performance may still be paid for.

    Sales closing while a customer is at checkout does not stop them: the hold was
    granted while on sale and lasts its minutes. A cancellation or the curtain does.
    """
    state = performance.sales_state(now)
    if state == "cancelled":
        raise PerformanceGone(_("This performance has been cancelled."))
    if state == "past":
        raise PerformanceGone(_("This performance has already started."))


# --- Helpers ------------------------------------------------------------------


def _retry_on_deadlock(func: Callable) -> Callable:
    """Run a transactional service again when MariaDB picks it as a deadlock victim.

    InnoDB can still deadlock on secondary-index locks even with rows touched in key
    order; the whole transaction was rolled back, so running it again is safe.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        for attempt in range(4):
            try:
                return func(*args, **kwargs)
            except OperationalError as exc:
                if not is_lock_conflict(exc) or attempt == 3 or connection.in_atomic_block:
                    raise
                logger.warning("retrying %s after %s (attempt %d)", func.__name__, exc, attempt + 1)
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    return wrapper


def _transition(
    reservation: Reservation,
    to_status: str,
    *,
    actor=None,
    reason: str = "",
    now: dt.datetime,
    **fields,
) -> None:
    """Move a reservation to `to_status` if it is still where the caller saw it."""
    from_status = reservation.status
    if to_status not in TRANSITIONS[from_status]:
        raise InvalidTransition(
            _("A booking that is %(from)s cannot become %(to)s.")
            % {"from": Status(from_status).label, "to": Status(to_status).label}
        )
    changed = Reservation.objects.filter(pk=reservation.pk, status=from_status).update(
        status=to_status, updated_at=now, **fields
    )
    if changed != 1:
        # Someone else (the sweeper, a webhook, staff) moved it first.
        raise InvalidTransition(_("This booking changed in the meantime. Please reload the page."))
    ReservationTransition.objects.create(
        reservation=reservation, from_status=from_status, to_status=to_status, at=now, actor=actor, reason=reason
    )
    reservation.status = to_status
    for name, value in fields.items():
        setattr(reservation, name, value)


def _free_items(reservation: Reservation) -> int:
    """Give back the places this reservation still holds (not ones others took since)."""
    return InventoryItem.objects.filter(reservation=reservation, status=InventoryItem.Status.HELD).update(
        status=InventoryItem.Status.AVAILABLE, held_until=None, reservation=None
    )


def check_selling(performance: Performance, now: dt.datetime) -> None:
    state = performance.sales_state(now)
    if state != "on_sale":
        # Translated only when refusing: every hold passes here.
        messages = {
            "upcoming": _("Sales for this performance have not opened yet."),
            "closed": _("Sales for this performance have closed."),
            "sold_out": _("This performance is sold out."),
            "cancelled": _("This performance has been cancelled."),
            "past": _("This performance has already started."),
        }
        raise ReservationError(messages[state])
    if performance.event.status != performance.event.Status.PUBLISHED:
        raise ReservationError(_("This event is not on sale."))


# --- Holding ------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """What the customer asked for: numbered seats and/or standing places per zone."""

    item_ids: tuple[int, ...] = ()
    standing: tuple[tuple[int, int], ...] = ()  # (section id, quantity)

    @property
    def quantity(self) -> int:
        return len(self.item_ids) + sum(q for _, q in self.standing)


@_retry_on_deadlock
def reservation_hold(
    *,
    user,
    performance: Performance,
    selection: Selection,
    request_token: str,
    replace: Reservation | None = None,
    now: dt.datetime | None = None,
    chosen_by_customer: bool = True,
) -> Reservation:
    """Hold the selected places for `user`, or raise ReservationError saying why not.

    With `replace`, the customer's current hold is released in the same transaction,
    so changing seats never leaves them with nothing if the new seats are gone.
    `request_token` is the form's: sent again, it gets the first submission's
    reservation, unless it now asks for other places (`chosen_by_customer`: False when
    the engine picked them, as best available does, which may pick others next time).
    """
    now = now or timezone.now()
    if not request_token:
        raise ReservationError(_("The form was incomplete. Please reload the page and try again."))
    if len(set(selection.item_ids)) != len(selection.item_ids):
        raise ReservationError(_("The same seat was sent twice. Please reload the page and choose again."))
    if any(q < 0 for _, q in selection.standing):
        raise ReservationError(_("Quantities cannot be negative."))
    if selection.quantity == 0:
        raise ReservationError(_("Choose at least one seat."))

    seat_lines, taken, yours, earlier_id = _seat_lines(
        performance, selection, now, user=user, token=request_token, replace=replace
    )
    # Seat holds learned from the seat read whether there is one to fetch.
    earlier = _earlier_hold(user, request_token) if earlier_id is not None or not selection.item_ids else None
    if earlier is not None:
        # The same form submitted again gets what its first submission got, whatever
        # has happened since (the hold expired, the seats went, sales closed).
        return _same_form_again(earlier, performance, selection, chosen_by_customer)
    check_selling(performance, now)
    if taken:
        # Seats already gone when we looked are refused without a transaction, which
        # makes the common "just taken" answer cheap on a busy on-sale. A read may only
        # refuse, never grant: granting is the conditional UPDATE in _claim_seats.
        raise SeatsTaken([line.label for line in taken], [line.item_id for line in taken], yours)
    try:
        with transaction.atomic():
            return _hold_locked(
                user=user,
                performance=performance,
                selection=selection,
                seat_lines=seat_lines,
                request_token=request_token,
                replace=replace,
                now=now,
            )
    except IntegrityError:
        # The same form submitted twice at once: both found no earlier submission, the
        # second waited on the customer's row lock, then its INSERT met the first one's
        # token (unique per customer). Inside a caller's transaction only our savepoint
        # was rolled back.
        earlier = _earlier_hold(user, request_token)
        if earlier is None:
            raise
        return _same_form_again(earlier, performance, selection, chosen_by_customer)


def _earlier_hold(user, request_token: str) -> Reservation | None:
    return Reservation.objects.filter(user=user, request_token=request_token).first()


def _same_form_again(
    earlier: Reservation, performance: Performance, selection: Selection, chosen_by_customer: bool
) -> Reservation:
    """`earlier`, the reservation this form's first submission made, if this is that
    form sent again; a ReservationError if the form was kept (a page restored from the
    browser's memory, say) and now asks for other places."""
    asked = Selection(
        item_ids=tuple(sorted(selection.item_ids)), standing=tuple(sorted((z, q) for z, q in selection.standing if q))
    )
    if chosen_by_customer and _selection_of(earlier) != (performance.pk, asked):
        raise _form_used(earlier)
    return earlier


def _form_used(earlier: Reservation) -> ReservationError:
    return ReservationError(
        _("This form was already sent, and made booking %(code)s. Please choose your seats again on this page.")
        % {"code": earlier.code}
    )


def _selection_of(reservation: Reservation) -> tuple[int, Selection]:
    """The performance and the places a reservation asked for, as a form sends them."""
    places = InventoryItem.objects.filter(pk__in=reservation.lines.values("item_id"))
    seats, standing = [], {}
    for pk, seat_id, section_id in places.values_list("pk", "seat_id", "section_id"):
        if seat_id is None:
            standing[section_id] = standing.get(section_id, 0) + 1
        else:
            seats.append(pk)
    return reservation.performance_id, Selection(
        item_ids=tuple(sorted(seats)), standing=tuple(sorted(standing.items()))
    )


def _hold_locked(
    *,
    user,
    performance: Performance,
    selection: Selection,
    seat_lines: list[ReservationLine],
    request_token: str,
    replace: Reservation | None,
    now: dt.datetime,
) -> Reservation:
    event = performance.event
    # Serialise this customer's holds: the limit below counts their live places, and a
    # second tab must not count the same snapshot.
    hold_sql.lock_customer(user.pk)
    if replace is not None:
        replace = _lock_own_hold(replace, user=user, performance=performance, now=now)

    expires_at = now + dt.timedelta(minutes=event.hold_minutes)
    if replace is not None:
        # Changing seats keeps the clock running: a fresh one each time would let a
        # customer (or a script) keep seats off sale for ever by "changing" to them.
        expires_at = min(expires_at, replace.expires_at)
    # Inserted first so that a repeated token fails here, before the limit sees the
    # first submission's places. Priced now; standing places are added below.
    reservation = Reservation(
        user=user,
        performance=performance,
        status=Status.HELD,
        expires_at=expires_at,
        request_token=request_token,
        created_at=now,
    )
    _price(reservation, seat_lines, fee=event.booking_fee)
    compiled.insert([reservation])

    already = hold_sql.live_places(
        user_id=user.pk, performance_id=performance.pk, now=now, excluding=replace.pk if replace else None
    )
    if already + selection.quantity > event.ticket_limit:
        limit = {"limit": event.ticket_limit, "count": already}
        if already:
            message = _("You can have at most %(limit)d tickets for this performance, and you already have %(count)d.")
        else:
            message = _("You can have at most %(limit)d tickets for this performance.")
        raise ReservationError(message % limit)

    if replace is not None:
        _free_items(replace)
        _transition(replace, Status.RELEASED, actor=user, reason=SEATS_CHANGED, now=now)
    compiled.insert([ReservationTransition(reservation=reservation, to_status=Status.HELD, at=now, actor=user)])
    _claim_seats(reservation, seat_lines, now)
    standing_lines = [
        line
        for section_id, quantity in selection.standing
        if quantity
        for line in _claim_standing(reservation, section_id, quantity, now)
    ]
    lines = standing_lines + seat_lines
    for line in lines:
        line.reservation = reservation
    compiled.insert(lines)
    if standing_lines:
        _price(reservation, lines, fee=event.booking_fee)
        Reservation.objects.filter(pk=reservation.pk).update(
            ticket_amount=reservation.ticket_amount,
            fee_amount=reservation.fee_amount,
            total_amount=reservation.total_amount,
        )
    return reservation


def _price(reservation: Reservation, lines: list[ReservationLine], *, fee: int) -> None:
    reservation.ticket_amount = sum(line.price for line in lines)
    reservation.fee_amount = fee * len(lines)
    reservation.total_amount = reservation.ticket_amount + reservation.fee_amount


def _seat_lines(
    performance: Performance,
    selection: Selection,
    now: dt.datetime,
    *,
    user,
    token: str,
    replace: Reservation | None,
) -> tuple[list[ReservationLine], list[ReservationLine], list[str], int | None]:
    """The lines the chosen seats would get (unsaved), those of seats already taken,
    the labels of those taken by the customer's own bookings, and the id of the
    reservation this form's earlier submission made, if any.

    One read, before any lock: the seat, grade and price frozen onto the booking (the
    prices the customer was shown; a price changed in the milliseconds before the claim
    is not picked up), and whether each seat is free right now. Seats still held by
    the hold being replaced count as free, since that hold is released in the same
    transaction.
    """
    item_ids = selection.item_ids
    if not item_ids:
        return [], [], [], None
    rows = hold_sql.seat_rows(
        performance_id=performance.pk, item_ids=item_ids, now=now, user_id=user.pk, request_token=token
    )
    if len(rows) != len(item_ids):
        raise ReservationError(
            _("Some of the chosen seats are not part of this performance. Please reload the page and choose again.")
        )
    lines, taken, yours = [], [], []
    for pk, label, _y, _x, code, name, price, holder, is_free, _earlier, is_yours in sorted(
        rows, key=lambda r: (r[2], r[3], r[0])
    ):
        line = _line(pk, label, code, name, price)
        lines.append(line)
        if not is_free and (replace is None or holder != replace.pk):
            taken.append(line)
            if is_yours:
                yours.append(label)
    return lines, taken, yours, rows[0][9]


def _lock_own_hold(reservation: Reservation, *, user, performance: Performance, now: dt.datetime) -> Reservation:
    locked = Reservation.objects.select_for_update().filter(pk=reservation.pk, user=user).first()
    if locked is None or locked.performance_id != performance.pk:
        raise ReservationError(_("That booking cannot be changed here."))
    if locked.status != Status.HELD or locked.is_expired(now):
        raise ReservationError(_("Your previous hold has ended, so there is nothing to change. Choose seats again."))
    return locked


def _claim_seats(reservation: Reservation, lines: list[ReservationLine], now: dt.datetime) -> None:
    if not lines:
        return
    ids = sorted(line.item_id for line in lines)
    claimed = hold_sql.claim_seats(
        reservation_id=reservation.pk,
        performance_id=reservation.performance_id,
        item_ids=ids,
        held_until=reservation.expires_at,
        now=now,
    )
    if claimed == len(ids):
        return
    # Taken between our read and this UPDATE. Work out which, for the customer; the
    # transaction is rolled back by the raise.
    lost = set(InventoryItem.objects.filter(pk__in=ids).exclude(reservation=reservation).values_list("pk", flat=True))
    lost_lines = [line for line in lines if line.item_id in lost]
    raise SeatsTaken([line.label for line in lost_lines], [line.item_id for line in lost_lines])


def _standing_places(performance_id: int, zone: Section):
    return InventoryItem.objects.filter(performance=performance_id, section=zone, seat__isnull=True)


def _standing_zone(performance: Performance, section_id: int) -> Section:
    section = Section.objects.filter(pk=section_id, layout=performance.layout_id, kind=Section.Kind.STANDING).first()
    if section is None:
        raise ReservationError(_("That standing zone is not part of this performance."))
    return section


def _claim_standing(
    reservation: Reservation, section_id: int, quantity: int, now: dt.datetime
) -> list[ReservationLine]:
    section = _standing_zone(reservation.performance, section_id)
    # The places only: a join would lock the price grade's row too (MariaDB has no
    # FOR UPDATE OF), and every buyer of the grade would queue behind the first.
    free = _standing_places(reservation.performance_id, section).free(now).order_by("pk").select_for_update()
    fields = ("pk", "price_grade_id")
    picked = []
    if connection.features.has_select_for_update_skip_locked:
        # Any free places will do: first the ones no other buyer has locked this
        # instant, rather than queueing behind them (MariaDB 10.6+).
        picked = list(free.select_for_update(skip_locked=True).values_list(*fields)[:quantity])
    if len(picked) < quantity:
        # Too few of those (or a query plan MariaDB cannot skip with): wait for the
        # buyers who have the others locked, then read what they left. Their holds may
        # yet fail, and a customer is never told a zone is full while places are free.
        # (The places picked above are ours already; a deadlock with another buyer
        # doing the same is retried by reservation_hold.)
        picked = list(free.values_list(*fields)[:quantity])
    if len(picked) < quantity:
        raise _zone_short(section, len(picked))  # read under the locks: what the others left
    claimed = (
        InventoryItem.objects.filter(pk__in=[pk for pk, _grade in picked])
        .free(now)
        .update(status=InventoryItem.Status.HELD, held_until=reservation.expires_at, reservation=reservation)
    )
    if claimed != quantity:  # cannot happen under the locks above; counted, to be safe
        raise _zone_short(section, _standing_places(reservation.performance_id, section).free(now).count())
    grades = {grade.pk: grade for grade in PriceGrade.objects.filter(pk__in={grade for _pk, grade in picked})}
    label = _("%(zone)s (standing)") % {"zone": section.display_name}
    return [_line(pk, label, grades[grade].code, grades[grade].name, grades[grade].price) for pk, grade in picked]


def _zone_short(section: Section, left: int) -> ZoneShort:
    zone = section.display_name
    if not left:
        return ZoneShort(_("%(zone)s is sold out.") % {"zone": zone})
    return ZoneShort(
        ngettext("%(zone)s has only %(left)d place left.", "%(zone)s has only %(left)d places left.", left)
        % {"zone": zone, "left": left}
    )


def _line(item_id: int, label: str, grade_code: str, grade_name: str, price: int) -> ReservationLine:
    """A line of the receipt, unsaved: the place and its grade and price at hold time."""
    grade = PriceGrade(code=grade_code, name=grade_name)
    return ReservationLine(
        item_id=item_id,
        label=label,
        grade_code=grade_code,
        grade_name=grade.display_name,
        price=price,
        list_price=price,
    )


# --- Best available -----------------------------------------------------------


def best_available_seats(*, performance: Performance, grade: PriceGrade, quantity: int, now=None) -> list[list[int]]:
    """Candidate blocks of `quantity` adjacent free seats in `grade`, best first.

    Only a suggestion read from a snapshot: the hold still claims them with the
    conditional UPDATE, and the caller tries the next block if one was just taken.
    Best means nearest the stage, then nearest the centre, and never leaving a single
    empty seat stranded beside the block when another block avoids it. Wheelchair
    spaces are never handed out this way: they are chosen on the map, by those who
    need them (as Korean sites sell 휠체어석 apart).
    """
    now = now or timezone.now()
    rows: dict[tuple[int, str], list[tuple[int, int, int, bool]]] = {}
    for item_id, section_id, row, x, y, is_free, is_accessible in (
        InventoryItem.objects.filter(performance=performance, price_grade=grade, seat__isnull=False)
        .annotate(is_free=ExpressionWrapper(free_condition(now), output_field=BooleanField()))
        .values_list("pk", "section_id", "seat__row", "seat__x", "seat__y", "is_free", "seat__is_accessible")
    ):
        rows.setdefault((section_id, row), []).append((x, y, item_id, is_free and not is_accessible))
    layout_centre = performance.layout.width / 2
    candidates = []
    for seats in rows.values():
        seats.sort()
        # Split the row into runs of seats standing next to each other (aisles break runs).
        runs, run = [], [seats[0]]
        for prev, seat in itertools.pairwise(seats):
            if seat[0] - prev[0] > SEAT_PITCH:
                runs.append(run)
                run = []
            run.append(seat)
        runs.append(run)
        for run in runs:
            for start in range(len(run) - quantity + 1):
                block = run[start : start + quantity]
                if not all(seat[3] for seat in block):
                    continue
                left_gap = _free_run_length(run, start - 1, -1)
                right_gap = _free_run_length(run, start + quantity, 1)
                strands = (left_gap == 1) + (right_gap == 1)
                centre = (block[0][0] + block[-1][0]) / 2
                candidates.append((strands, block[0][1], abs(centre - layout_centre), [seat[2] for seat in block]))
    candidates.sort(key=lambda c: (c[0], c[1], c[2]))
    return [c[3] for c in candidates]


def _free_run_length(run, index: int, step: int) -> int:
    length = 0
    while 0 <= index < len(run) and run[index][3]:
        length += 1
        index += step
    return length


def reservation_hold_best_available(
    *,
    user,
    performance: Performance,
    grade: PriceGrade,
    quantity: int,
    request_token: str,
    now: dt.datetime | None = None,
    attempts: int = 5,
) -> Reservation:
    if quantity < 1:
        raise ReservationError(_("Choose at least one seat."))
    if grade.event_id != performance.event_id:
        raise ReservationError(_("That grade is not sold for this performance."))
    earlier = _earlier_hold(user, request_token)
    if earlier is not None:
        # Sent again: its seats were chosen the first time, if it asked for these.
        codes = [line.grade_code for line in earlier.lines.all()]
        if earlier.performance_id != performance.pk or codes != [grade.code] * quantity:
            raise _form_used(earlier)
        return earlier
    for _attempt in range(attempts):
        blocks = best_available_seats(performance=performance, grade=grade, quantity=quantity, now=now)
        if not blocks:
            raise ReservationError(
                _("There are no %(count)d seats together left in %(grade)s. Try fewer seats or another grade.")
                % {"count": quantity, "grade": grade.display_name}
            )
        try:
            return reservation_hold(
                user=user,
                performance=performance,
                selection=Selection(item_ids=tuple(blocks[0])),
                request_token=request_token,
                now=now,
                chosen_by_customer=False,
            )
        except SeatsTaken:
            continue  # someone was quicker; look again
    raise ReservationError(_("Seats are selling fast. Please try again."))


# --- Other transitions --------------------------------------------------------


def _locked(reservation: Reservation) -> Reservation:
    return Reservation.objects.select_for_update().get(pk=reservation.pk)


def reservation_release(*, reservation: Reservation, actor, reason: str = "", now=None) -> Reservation:
    """Let a hold go (customer or staff). An expired hold is recorded as expired and
    ReservationError tells the customer so; its seats are free either way."""
    now = now or timezone.now()
    reservation = _release(reservation=reservation, actor=actor, reason=reason, now=now)
    if reservation.status == Status.EXPIRED:
        raise ReservationError(_("This hold had already expired; its seats have been released."))
    return reservation


def _not_live(status: str) -> InvalidTransition:
    """Why a reservation that is no longer a live hold cannot be released."""
    if status == Status.RELEASED:
        return InvalidTransition(_("These seats were already released."))
    if status == Status.EXPIRED:
        return InvalidTransition(_("This hold had already expired; its seats have been released."))
    if status == Status.CONFIRMED:
        return InvalidTransition(
            _("This booking has been paid for: to give the seats back, cancel the booking instead.")
        )
    return InvalidTransition(_("This booking was cancelled; its seats have been released."))


@_retry_on_deadlock
@transaction.atomic
def _release(*, reservation: Reservation, actor, reason: str, now: dt.datetime) -> Reservation:
    reservation = _locked(reservation)
    if reservation.status not in Reservation.LIVE_HOLD_STATUSES:
        # Released from another tab, expired, or paid for meanwhile: say which.
        raise _not_live(reservation.status)
    expired = reservation.is_expired(now)
    _free_items(reservation)
    if expired:
        _transition(reservation, Status.EXPIRED, reason=gettext_noop("hold time ran out"), now=now)
    else:
        _transition(reservation, Status.RELEASED, actor=actor, reason=reason, now=now)
    return reservation


@_retry_on_deadlock
@transaction.atomic
def reservation_await_payment(
    *, reservation: Reservation, until: dt.datetime | None = None, amount: int | None = None, now=None
) -> Reservation:
    """Checkout has started a payment. `until` extends the hold (virtual account deadline).
    `amount` is what the payment asks for: refused if the total has changed since it was
    read (ticket types chosen in another tab that instant)."""
    now = now or timezone.now()
    reservation = _locked(reservation)
    if reservation.is_expired(now):
        raise ReservationError(_("Your hold has expired. Please choose seats again."))
    if amount is not None and amount != reservation.total_amount:
        raise PriceChanged(_("The total of this booking changed a moment ago. Check it, then pay again."))
    fields = {}
    if until is not None and until > reservation.expires_at:
        fields["expires_at"] = until
        kept = InventoryItem.objects.filter(reservation=reservation, status=InventoryItem.Status.HELD).update(
            held_until=until
        )
        if kept != reservation.lines.count():
            # Some of its places were taken by others after all (the hold's time ran
            # out by their clock): the deadline is not moved over seats that are not
            # this customer's. Rolled back by the raise.
            raise ReservationError(_("Your hold has expired. Please choose seats again."))
    if reservation.status == Status.PENDING_PAYMENT:
        # Already paying (e.g. the virtual account was just issued): only the deadline moves.
        if fields:
            Reservation.objects.filter(pk=reservation.pk).update(updated_at=now, **fields)
            reservation.expires_at = until
        return reservation
    _transition(reservation, Status.PENDING_PAYMENT, now=now, **fields)
    return reservation


@transaction.atomic
def reservation_resume_hold(*, reservation: Reservation, reason: str = "", now=None) -> Reservation:
    """A payment attempt failed: back to held, so the customer can try again while the hold lasts."""
    now = now or timezone.now()
    reservation = _locked(reservation)
    if reservation.status == Status.PENDING_PAYMENT and not reservation.is_expired(now):
        _transition(reservation, Status.HELD, reason=reason, now=now)
    return reservation


# --- Discounts ----------------------------------------------------------------


def discount_options(*, reservation: Reservation, lines: list[ReservationLine]) -> dict[int, list]:
    """For each line's id, the event's discounts its ticket may be sold at, with the
    price each gives: offered, for the line's grade, and leaving something to pay."""
    grade_of = dict(
        InventoryItem.objects.filter(pk__in=[line.item_id for line in lines]).values_list("pk", "price_grade_id")
    )
    discounts = list(
        Discount.objects.filter(event=reservation.performance.event_id, is_active=True).prefetch_related("grades")
    )
    options = {}
    for line in lines:
        options[line.pk] = [
            (discount, discount.price_for(line.list_price))
            for discount in discounts
            if _discount_fits(discount, grade_of[line.item_id], line.list_price)
        ]
    return options


def _discount_fits(discount: Discount, grade_id: int, list_price: int) -> bool:
    grades = {grade.pk for grade in discount.grades.all()}
    return (not grades or grade_id in grades) and discount.price_for(list_price) > 0


@transaction.atomic
def reservation_choose_discounts(
    *, reservation: Reservation, choices: dict[int, int | None], now: dt.datetime | None = None
) -> Reservation:
    """Price each ticket of a hold at its full price (None) or at a discount (its id),
    `choices` naming every line of the hold by id; or ReservationError, changing nothing.

    Only before a payment is started: a payment registers the total with I'mport, so
    the price is fixed while one may be under way (a window that fails or is closed
    puts the hold back to held, and the choice can be made again).
    """
    now = now or timezone.now()
    reservation = _locked(reservation)
    if reservation.status == Status.PENDING_PAYMENT and not reservation.is_expired(now):
        raise ReservationError(
            _("A payment has been started for this booking, so its ticket types cannot be changed now.")
        )
    if reservation.status not in Reservation.LIVE_HOLD_STATUSES or reservation.is_expired(now):
        if reservation.status == Status.CONFIRMED:
            raise ReservationError(_("This booking is paid: its ticket types can no longer be changed."))
        raise ReservationError(_("Your hold has ended, so there is nothing to change. Choose seats again."))
    lines = list(reservation.lines.all())
    if set(choices) != {line.pk for line in lines}:
        raise ReservationError(_("This form is out of date. Please reload the page and choose again."))
    options = discount_options(reservation=reservation, lines=lines)
    used: dict[int, int] = {}
    for line in lines:
        chosen = choices[line.pk]
        if chosen is None:
            line.discount, line.discount_name, line.price = None, "", line.list_price
            continue
        offered = {discount.pk: (discount, price) for discount, price in options[line.pk]}
        if chosen not in offered:
            raise ReservationError(
                _("That discount is not offered for %(place)s. Please choose again.") % {"place": line.label}
            )
        discount, price = offered[chosen]
        used[discount.pk] = used.get(discount.pk, 0) + 1
        if discount.per_booking is not None and used[discount.pk] > discount.per_booking:
            raise ReservationError(
                ngettext(
                    "%(discount)s is for at most %(count)d ticket per booking.",
                    "%(discount)s is for at most %(count)d tickets per booking.",
                    discount.per_booking,
                )
                % {"discount": discount.name, "count": discount.per_booking}
            )
        line.discount, line.discount_name, line.price = discount, discount.name, price
    ReservationLine.objects.bulk_update(lines, ["discount", "discount_name", "price"])
    # The booking fee is per ticket, whatever the ticket's price.
    reservation.ticket_amount = sum(line.price for line in lines)
    reservation.total_amount = reservation.ticket_amount + reservation.fee_amount
    Reservation.objects.filter(pk=reservation.pk).update(
        ticket_amount=reservation.ticket_amount, total_amount=reservation.total_amount, updated_at=now
    )
    return reservation


@_retry_on_deadlock
@transaction.atomic
def reservation_confirm(*, reservation: Reservation, actor=None, reason: str = "", now=None) -> Reservation:
    """Turn a paid reservation into a booking: its places become sold.

    A late payment still confirms if nobody has taken the places since the hold
    expired, and if the customer has not since held or bought others up to the limit
    (an expired hold's places stop counting towards it); otherwise ReservationError
    (OverLimit for the limit) is raised and the caller must refund. So it must when
    the performance has been cancelled or has started (PerformanceGone).
    """
    now = now or timezone.now()
    reservation = _locked(reservation)
    if reservation.status == Status.HELD:
        _transition(reservation, Status.PENDING_PAYMENT, now=now)
    # Expired and already swept (its places given back) is the same late payment as
    # expired and not swept yet: whether the sweeper ran first decides nothing.
    swept = reservation.status == Status.EXPIRED
    if reservation.status != Status.PENDING_PAYMENT and not swept:
        raise InvalidTransition(
            _("A booking that is %(status)s cannot be confirmed.") % {"status": reservation.get_status_display()}
        )
    check_payable(
        Performance.objects.only("status", "starts_at", "sales_open_at", "sales_close_at").get(
            pk=reservation.performance_id
        ),
        now,
    )
    expected = reservation.lines.count()
    if swept or reservation.is_expired(now):
        # The customer's lock keeps the count below true until this commits (a hold in
        # another tab waits). It comes after the reservation's, the other way round from
        # a hold that changes seats; only a late payment racing a seat change of this very
        # booking can deadlock on that, and MariaDB then rolls one back: the hold is
        # retried, the payment synced again by its webhook or the reconciliation.
        hold_sql.lock_customer(reservation.user_id)
        limit = Performance.objects.values_list("event__ticket_limit", flat=True).get(pk=reservation.performance_id)
        others = hold_sql.live_places(
            user_id=reservation.user_id, performance_id=reservation.performance_id, now=now, excluding=reservation.pk
        )
        if others + expected > limit:
            raise OverLimit(
                _(
                    "Since this hold ended you have booked other tickets for this performance, and this booking "
                    "would take you past the limit of %(limit)d tickets."
                )
                % {"limit": limit}
            )
    if swept:
        # Taken again if nobody has since: one conditional UPDATE, as a hold claims.
        places = sorted(reservation.lines.values_list("item_id", flat=True))
        sold = (
            InventoryItem.objects.filter(pk__in=places)
            .free(now)
            .update(status=InventoryItem.Status.SOLD, held_until=None, reservation=reservation)
        )
    else:
        sold = InventoryItem.objects.filter(reservation=reservation, status=InventoryItem.Status.HELD).update(
            status=InventoryItem.Status.SOLD, held_until=None
        )
    if sold != expected:
        raise ReservationError(_("The seats of this booking were released before payment arrived."))
    _transition(reservation, Status.CONFIRMED, actor=actor, reason=reason, now=now, confirmed_at=now)
    return reservation


@_retry_on_deadlock
@transaction.atomic
def reservation_cancel(*, reservation: Reservation, actor, reason: str = "", now=None) -> Reservation:
    """Cancel a confirmed booking and put its places back on sale (refunds: payments)."""
    now = now or timezone.now()
    reservation = _locked(reservation)
    if reservation.status != Status.CONFIRMED:
        raise InvalidTransition(
            _("A booking that is %(status)s cannot be cancelled.") % {"status": reservation.get_status_display()}
        )
    InventoryItem.objects.filter(reservation=reservation, status=InventoryItem.Status.SOLD).update(
        status=InventoryItem.Status.AVAILABLE, reservation=None
    )
    _transition(reservation, Status.CANCELLED, actor=actor, reason=reason, now=now, cancelled_at=now)
    return reservation


@transaction.atomic
def reservation_cancel_tickets(*, reservation: Reservation, line_ids, actor, now=None) -> list[CancelledTicket]:
    """Cancel some tickets of a confirmed booking (부분 취소): their places go back on
    sale, their lines become CancelledTicket receipts and the booking's amounts are of
    the tickets left (refunds: payments). At least one ticket must stay: cancelling
    them all is cancelling the booking (reservation_cancel)."""
    now = now or timezone.now()
    reservation = _locked(reservation)
    if reservation.status != Status.CONFIRMED:
        raise InvalidTransition(
            _("A booking that is %(status)s cannot be cancelled.") % {"status": reservation.get_status_display()}
        )
    line_ids = set(line_ids)
    lines = list(reservation.lines.all())
    chosen = [line for line in lines if line.pk in line_ids]
    if not chosen or len(chosen) != len(line_ids):
        raise TicketsGone()
    if len(chosen) == len(lines):
        raise ReservationError(_("To cancel every ticket, cancel the booking."))
    if any(line.admitted_at for line in chosen):
        raise ReservationError(_("A ticket already used at the entrance cannot be cancelled."))
    fee_per_ticket = reservation.fee_per_ticket(len(lines))
    released = InventoryItem.objects.filter(
        pk__in=[line.item_id for line in chosen], reservation=reservation, status=InventoryItem.Status.SOLD
    ).update(status=InventoryItem.Status.AVAILABLE, reservation=None, held_until=None)
    if released != len(chosen):  # the booking's lock is held: nothing else frees its places
        raise TicketsGone()
    receipts = CancelledTicket.objects.bulk_create(
        CancelledTicket(
            reservation=reservation,
            label=line.label,
            grade_name=line.grade_name,
            discount_name=line.discount_name,
            price=line.price,
            cancelled_at=now,
            actor=actor,
        )
        for line in chosen
    )
    ReservationLine.objects.filter(pk__in=[line.pk for line in chosen]).delete()
    kept = [line for line in lines if line not in chosen]
    _price(reservation, kept, fee=fee_per_ticket)
    Reservation.objects.filter(pk=reservation.pk).update(
        ticket_amount=reservation.ticket_amount,
        fee_amount=reservation.fee_amount,
        total_amount=reservation.total_amount,
        updated_at=now,
    )
    return receipts


# Why holds are let go when staff call a performance off (shown translated).
PERFORMANCE_CANCELLED = gettext_noop("performance cancelled")


def holds_expire(*, now: dt.datetime | None = None, batch: int = 500) -> int:
    """Record expired holds as expired and free their places; return how many.

    Correctness never waits for this: availability already treats an expired hold
    as free. This keeps the tables tidy and the history accurate. Holds of a
    cancelled performance go too: one made in the second before the cancellation
    reached every process (they read the performance once a second) cannot be paid.
    """
    now = now or timezone.now()
    count = 0
    stale = Q(expires_at__lte=now) | Q(performance__status=Performance.Status.CANCELLED)
    ids = list(
        Reservation.objects.filter(stale, status__in=Reservation.LIVE_HOLD_STATUSES)
        .order_by("pk")
        .values_list("pk", flat=True)[:batch]
    )
    for pk in ids:
        try:
            count += _expire_one(pk, now)
        except (InvalidTransition, IntegrityError):
            continue  # moved on by someone else in the meantime
        except OperationalError as exc:
            if not is_lock_conflict(exc):
                raise
            # Still a deadlock victim after the retries: the next sweep (a minute
            # later) expires it; the holds after it need not wait for that.
            logger.warning("expiring reservation %s gave up after %s", pk, exc)
    return count


@_retry_on_deadlock
def _expire_one(pk: int, now: dt.datetime) -> int:
    with transaction.atomic():
        reservation = Reservation.objects.select_for_update().filter(pk=pk).first()
        if reservation is None or reservation.status not in Reservation.LIVE_HOLD_STATUSES:
            return 0
        if reservation.is_expired(now):
            to_status, reason = Status.EXPIRED, gettext_noop("hold time ran out")
        elif Performance.objects.filter(pk=reservation.performance_id, status=Performance.Status.CANCELLED).exists():
            to_status, reason = Status.RELEASED, PERFORMANCE_CANCELLED
        else:
            return 0
        _free_items(reservation)
        _transition(reservation, to_status, reason=reason, now=now)
        if to_status == Status.EXPIRED:
            # Recorded with the expiry, emailed once it commits.
            notification_queue(kind=Notification.Kind.BOOKING_EXPIRED, reservation=reservation, now=now)
        return 1


# --- Staff: blocking places ---------------------------------------------------


@_retry_on_deadlock
@transaction.atomic
def inventory_block(*, performance: Performance, item_ids: list[int], now=None) -> list[int]:
    """Take free places off sale (house seats, broken seats); the ids of those taken
    off. Held and sold ones are skipped."""
    now = now or timezone.now()
    # Locked in id order first, so that the ids returned are exactly the places this
    # blocks (the history names them): a buyer claiming one of them meanwhile waits,
    # then finds it blocked.
    chosen = InventoryItem.objects.filter(pk__in=sorted(item_ids), performance=performance)
    ids = list(chosen.free(now).order_by("pk").select_for_update().values_list("pk", flat=True))
    InventoryItem.objects.filter(pk__in=ids).free(now).update(
        status=InventoryItem.Status.BLOCKED, held_until=None, reservation=None
    )
    return ids


@transaction.atomic
def inventory_unblock(*, performance: Performance, item_ids: list[int]) -> list[int]:
    """Put blocked places back on sale; the ids of those put back."""
    chosen = InventoryItem.objects.filter(
        pk__in=sorted(item_ids), performance=performance, status=InventoryItem.Status.BLOCKED
    )
    ids = list(chosen.order_by("pk").select_for_update().values_list("pk", flat=True))
    InventoryItem.objects.filter(pk__in=ids, status=InventoryItem.Status.BLOCKED).update(
        status=InventoryItem.Status.AVAILABLE
    )
    return ids


@_retry_on_deadlock
@transaction.atomic
def inventory_block_standing(*, performance: Performance, section_id: int, quantity: int, now=None) -> list[int]:
    """Take up to `quantity` free places of a standing zone off sale (a standing zone
    has no seat to click: staff give a number). Held and sold places are left alone."""
    now = now or timezone.now()
    zone = _standing_zone(performance, section_id)
    free = _standing_places(performance.pk, zone).free(now).order_by("pk").select_for_update()
    ids = list(free.values_list("pk", flat=True)[:quantity])
    return inventory_block(performance=performance, item_ids=ids, now=now)


@transaction.atomic
def inventory_unblock_standing(*, performance: Performance, section_id: int, quantity: int) -> list[int]:
    zone = _standing_zone(performance, section_id)
    blocked = _standing_places(performance.pk, zone).filter(status=InventoryItem.Status.BLOCKED)
    ids = list(blocked.order_by("pk").values_list("pk", flat=True)[:quantity])
    return inventory_unblock(performance=performance, item_ids=ids)


# --- Inventory creation -------------------------------------------------------


def missing_grade_codes(*, performance: Performance) -> list[str]:
    """Grade codes the layout uses that the event has not priced."""
    seat_codes = set(Seat.objects.filter(layout_id=performance.layout_id).values_list("grade_code", flat=True))
    zone_codes = set(
        Section.objects.filter(layout_id=performance.layout_id, kind=Section.Kind.STANDING).values_list(
            "grade_code", flat=True
        )
    )
    priced = set(PriceGrade.objects.filter(event_id=performance.event_id).values_list("code", flat=True))
    return sorted((seat_codes | zone_codes) - priced)


@transaction.atomic
def inventory_create(*, performance: Performance) -> int:
    """Create one inventory row per seat and per standing place; return how many.

    Runs once, when the performance is created: inventory rows are what holds and
    sales lock, so they must exist before the performance can be sold.
    """
    if InventoryItem.objects.filter(performance=performance).exists():
        raise ValidationError(_("This performance already has its inventory."))
    missing = missing_grade_codes(performance=performance)
    if missing:
        raise ValidationError(
            _("The event has no price grade for the layout's grade codes: %(codes)s.") % {"codes": ", ".join(missing)}
        )
    grade_ids = dict(PriceGrade.objects.filter(event_id=performance.event_id).values_list("code", "id"))
    items = [
        InventoryItem(performance=performance, section_id=section_id, seat_id=seat_id, price_grade_id=grade_ids[code])
        for seat_id, section_id, code in Seat.objects.filter(layout_id=performance.layout_id)
        .order_by("id")
        .values_list("id", "section_id", "grade_code")
    ]
    for section_id, code, capacity in Section.objects.filter(
        layout_id=performance.layout_id, kind=Section.Kind.STANDING
    ).values_list("id", "grade_code", "capacity"):
        items.extend(
            InventoryItem(performance=performance, section_id=section_id, price_grade_id=grade_ids[code])
            for _place in range(capacity)
        )
    InventoryItem.objects.bulk_create(items, batch_size=1000)
    return len(items)
