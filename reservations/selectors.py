from collections import Counter

from django.db.models import Exists, Max, OuterRef, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from . import hold_sql
from .models import SEATS_CHANGED, Reservation, ReservationTransition


def own_reservation(*, user, code: str) -> Reservation:
    """The signed-in customer's reservation by booking code; anyone else's is a 404."""
    return get_object_or_404(
        Reservation.objects.select_related("performance__event__venue", "performance__layout"), code=code, user=user
    )


def taken_place_ids(*, performance_id: int, keep_reservation_id: int | None = None, now=None) -> list[int]:
    """Ids of the numbered seats nobody can hold right now: held, sold or blocked.

    What the seat map's script greys out when a hold comes back "just taken", so the
    customer sees every seat gone since the page was drawn, not only the ones they
    tried. The seats of `keep_reservation_id` (the live hold being changed) stay
    selectable.
    """
    # Every "just taken" answer runs this, so it is written out in hold_sql
    # (reservations/tests/test_hold_sql.py checks it against free_condition).
    return hold_sql.taken_ids(performance_id=performance_id, now=now or timezone.now(), keeping=keep_reservation_id)


def upcoming_bookings(*, user, now) -> QuerySet[Reservation]:
    """The customer's bookings and live holds for performances still to come, soonest
    first. A hold whose time is up is not among them even before the sweeper records
    it, the same rule as Reservation.effective_status()."""
    live = Q(status=Reservation.Status.CONFIRMED) | Q(status__in=Reservation.LIVE_HOLD_STATUSES, expires_at__gt=now)
    return (
        Reservation.objects.filter(live, user=user, performance__starts_at__gt=now)
        # A virtual account waiting for its deposit: its deadline, shown instead of a
        # countdown (the seats are kept until then).
        .annotate(deposit_due=Max("payments__vbank_due", filter=Q(payments__status="awaiting_deposit")))
        .select_related("performance__event__venue")
        .prefetch_related("lines")
        .order_by("performance__starts_at", "created_at")
    )


def for_booking_rows(reservations, now) -> bool:
    """Set what reservations/_booking_rows.html shows on each reservation (lines
    prefetched): the status as customers see it, the seconds a hold has left, and the
    places ("label", or "label × n" for standing places), and whether it counts down
    (a live hold) or waits for a deposit (a live hold with a virtual account open);
    True if any counts down."""
    held = False
    for reservation in reservations:
        reservation.status_now = reservation.effective_status(now)
        reservation.seconds_now = reservation.seconds_left(now)
        live = reservation.status_now in Reservation.LIVE_HOLD_STATUSES
        reservation.deposit_waiting = live and getattr(reservation, "deposit_due", None) is not None
        reservation.counting_down = live and not reservation.deposit_waiting
        counts = Counter(line.label for line in reservation.lines.all())
        reservation.places = ", ".join(label if n == 1 else f"{label} × {n}" for label, n in counts.items())
        held |= reservation.counting_down
    return held


def _released_for_seat_change(reservation):
    return ReservationTransition.objects.filter(
        reservation=reservation, to_status=Reservation.Status.RELEASED, reason=SEATS_CHANGED
    )


def replaced_by_seat_change():
    """True for a hold released because its customer changed seats (a new hold took
    its place): not a booking of its own to the customer."""
    return Exists(_released_for_seat_change(OuterRef("pk")))


def is_replaced_by_seat_change(reservation: Reservation) -> bool:
    """replaced_by_seat_change for one reservation."""
    return _released_for_seat_change(reservation).exists()
