"""Reads: which reminders are due, and a customer's own messages."""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Exists, OuterRef

from payments.models import Payment
from reservations.models import Reservation

from .models import Notification


@dataclass(frozen=True)
class DueReminder:
    reservation: Reservation
    payment: Payment | None  # the virtual account awaiting deposit, if that is what is unpaid
    deadline: dt.datetime
    offset: dt.timedelta

    @property
    def dedupe_key(self) -> str:
        # The deadline is part of the key: a booking whose deadline moves (a new virtual
        # account after the first expired unpaid) is reminded about the new one.
        return (
            f"payment_reminder:{self.reservation.pk}:{int(self.deadline.timestamp())}:"
            f"{int(self.offset.total_seconds())}"
        )


def reminder_offset_due(
    *, deadline: dt.datetime, booked_at: dt.datetime, now: dt.datetime, offsets: Sequence[dt.timedelta]
) -> dt.timedelta | None:
    """The reminder to send now for a deadline, or None.

    An offset counts only if its moment was still ahead when the booking was made
    (nobody wants "24 hours left" for a booking made 5 hours before its deadline),
    is due (its moment has come) and the deadline has not passed. When several are due
    (beat was down through the first), only the latest is sent: one email, with the
    time that is really left.
    """
    if now >= deadline:
        return None
    due = [offset for offset in offsets if booked_at < deadline - offset <= now]
    return min(due) if due else None


def payment_reminders_due(*, now: dt.datetime) -> list[DueReminder]:
    """Unpaid bookings with a deadline whose reminder is due at `now`.

    Two kinds of unpaid: a virtual account awaiting its deposit (the deadline is the
    account's), and any other live hold with a deadline far enough away for a reminder
    to make sense (a ten-minute hold never qualifies: no offset was ahead when it began).
    Paid, cancelled, released and expired bookings are not live, and a hold whose time
    is up counts as expired even before the sweeper records it.
    """
    offsets = tuple(settings.TICKETING_PAYMENT_REMINDER_OFFSETS)
    if not offsets:
        return []
    horizon = now + max(offsets)
    live = {"status__in": Reservation.LIVE_HOLD_STATUSES, "expires_at__gt": now}
    due: list[DueReminder] = []

    deposits = (
        Payment.objects.filter(
            status=Payment.Status.AWAITING_DEPOSIT,
            vbank_due__gt=now,
            vbank_due__lte=horizon,
            **{f"reservation__{k}": v for k, v in live.items()},
        )
        .select_related("reservation")
        .order_by("vbank_due", "pk")
    )
    for payment in deposits:
        offset = reminder_offset_due(deadline=payment.vbank_due, booked_at=payment.created_at, now=now, offsets=offsets)
        if offset is not None:
            due.append(DueReminder(payment.reservation, payment, payment.vbank_due, offset))

    awaiting_deposit = Payment.objects.filter(reservation=OuterRef("pk"), status=Payment.Status.AWAITING_DEPOSIT)
    holds = (
        Reservation.objects.filter(expires_at__lte=horizon, **live)
        .exclude(Exists(awaiting_deposit))
        .order_by("expires_at", "pk")
    )
    for reservation in holds:
        offset = reminder_offset_due(
            deadline=reservation.expires_at, booked_at=reservation.created_at, now=now, offsets=offsets
        )
        if offset is not None:
            due.append(DueReminder(reservation, None, reservation.expires_at, offset))
    return due


def user_notifications(*, user, limit: int = 10) -> list[Notification]:
    """The customer's latest messages for my page (ones we decided not to send are left out)."""
    return list(
        Notification.objects.filter(user=user)
        .exclude(status=Notification.Status.SKIPPED)
        .select_related("reservation")
        .order_by("-created_at", "-pk")[:limit]
    )
