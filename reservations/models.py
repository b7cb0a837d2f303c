"""Per-performance inventory: the rows the reservation engine locks.

Every sellable place of a performance is one InventoryItem: a numbered seat, or one
place in a standing zone (standing zones get `capacity` anonymous items). Keeping
standing places as rows means one mechanism guards both against overselling: a
conditional UPDATE on rows that are free, where "free" includes holds whose
`held_until` has passed (expiry is lazy; the sweeper only tidies).
"""

import re
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from accounts.phone import E164_MAX_LENGTH, validate_e164


class InventoryQuerySet(models.QuerySet):
    def free(self, now=None):
        return self.filter(free_condition(now or timezone.now()))

    def held(self, now=None):
        return self.filter(held_condition(now or timezone.now()))

    def sold(self):
        return self.filter(status=InventoryItem.Status.SOLD)


def free_condition(now, prefix: str = "", *, keeping: int | None = None) -> Q:
    """The lazy-expiry definition of "free", for use inside aggregates.

    With `keeping`, the places held by that reservation (a hold the customer is
    changing) count as free too: they are the customer's to keep or swap.
    """
    free = Q(**{f"{prefix}status": InventoryItem.Status.AVAILABLE}) | Q(
        **{f"{prefix}status": InventoryItem.Status.HELD, f"{prefix}held_until__lte": now}
    )
    if keeping is not None:
        free |= Q(**{f"{prefix}status": InventoryItem.Status.HELD, f"{prefix}reservation_id": keeping})
    return free


def held_condition(now, prefix: str = "") -> Q:
    return Q(**{f"{prefix}status": InventoryItem.Status.HELD, f"{prefix}held_until__gt": now})


class InventoryItem(models.Model):
    class Status(models.TextChoices):
        AVAILABLE = "available", _("Available")
        HELD = "held", _("Held")
        SOLD = "sold", _("Sold")
        BLOCKED = "blocked", _("Blocked")

    performance = models.ForeignKey("events.Performance", on_delete=models.CASCADE, related_name="inventory")
    section = models.ForeignKey("events.Section", on_delete=models.PROTECT, related_name="+")
    # Null for a place in a standing zone.
    seat = models.ForeignKey("events.Seat", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    price_grade = models.ForeignKey("events.PriceGrade", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(_("status"), max_length=10, choices=Status, default=Status.AVAILABLE)
    held_until = models.DateTimeField(_("held until"), null=True, blank=True)
    # The reservation that holds or bought this place. A hold that has expired keeps
    # pointing here until another hold takes the place or the sweeper frees it.
    reservation = models.ForeignKey(
        "Reservation", on_delete=models.SET_NULL, null=True, blank=True, related_name="items"
    )

    objects = InventoryQuerySet.as_manager()

    class Meta:
        constraints = [
            # Standing places have seat=NULL; NULLs never collide in a unique index on
            # SQLite or MariaDB, so this constrains only numbered seats.
            models.UniqueConstraint(fields=["performance", "seat"], name="inventory_one_row_per_seat"),
            models.CheckConstraint(
                condition=~Q(status="held") | Q(held_until__isnull=False), name="inventory_hold_has_expiry"
            ),
        ]
        indexes = [
            # Places not on sale, by performance: every seat map view and every 409 reads
            # this range. The reservation and the seat make it covering, so the database
            # reads the index alone instead of looking up each row (about three times
            # less work with a quarter of a 2,000-seat hall held; docs/benchmarks.md).
            models.Index(
                fields=["performance", "status", "held_until", "reservation", "seat"], name="inventory_not_on_sale"
            )
        ]
        verbose_name = _("inventory item")
        verbose_name_plural = _("inventory")

    def __str__(self):
        place = self.seat.label if self.seat_id else self.section.display_name
        return f"{place} ({self.get_status_display()})"


# Booking codes avoid 0/O and 1/I/L so they can be read out over the phone.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def new_booking_code() -> str:
    return "T" + "".join(secrets.choice(CODE_ALPHABET) for _ in range(9))


class Reservation(models.Model):
    """One customer's seats at one performance, from hold to booking.

    States and the only transitions allowed (reservations.services applies them):

        held ──> pending_payment ──> confirmed ──> cancelled
          │  ^        │
          │  └────────┤ (payment failed or abandoned: back to held)
          ├─> released (customer or staff let the seats go)
          └─> expired  <── pending_payment (deadline passed unpaid)

    `expires_at` is when a held or pending reservation stops holding its seats; the
    seats count as free from that instant (lazy expiry), whether or not the sweeper has
    marked the reservation expired yet.
    """

    class Status(models.TextChoices):
        HELD = "held", _("Held")
        PENDING_PAYMENT = "pending_payment", _("Awaiting payment")
        CONFIRMED = "confirmed", _("Confirmed")
        EXPIRED = "expired", _("Expired")
        RELEASED = "released", _("Released")
        CANCELLED = "cancelled", _("Cancelled")

    code = models.CharField(_("booking number"), max_length=12, unique=True, default=new_booking_code, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reservations", verbose_name=_("customer")
    )
    performance = models.ForeignKey(
        "events.Performance", on_delete=models.PROTECT, related_name="reservations", verbose_name=_("performance")
    )
    status = models.CharField(_("status"), max_length=16, choices=Status, default=Status.HELD)
    expires_at = models.DateTimeField(_("hold expires at"), null=True, blank=True)
    ticket_amount = models.PositiveIntegerField(_("tickets (KRW)"), default=0)
    fee_amount = models.PositiveIntegerField(_("booking fee (KRW)"), default=0)
    total_amount = models.PositiveIntegerField(_("total (KRW)"), default=0)
    # Who to call about this booking (a changed or cancelled show, a lost ticket), as
    # given at checkout; the payment service is sent them too (PGs ask for buyer_tel).
    booker_name = models.CharField(_("booker"), max_length=100, blank=True)
    booker_phone = models.CharField(
        _("booker's phone"), max_length=E164_MAX_LENGTH, blank=True, validators=[validate_e164]
    )
    # The hold form's one-time token: a double-submitted form finds the reservation
    # the first submission made instead of holding twice.
    request_token = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    confirmed_at = models.DateTimeField(_("confirmed"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "request_token"], name="reservation_unique_request_token"),
        ]
        indexes = [
            models.Index(fields=["status", "expires_at"]),
            models.Index(fields=["user", "performance", "status"]),
        ]
        verbose_name = _("reservation")
        verbose_name_plural = _("reservations")
        # Door staff scan tickets and need nothing else of the admin.
        permissions = [("check_in", _("Can admit ticket holders at the entrance"))]

    def __str__(self):
        return self.code

    def get_absolute_url(self):
        return reverse("reservations:detail", kwargs={"code": self.code})

    LIVE_HOLD_STATUSES = (Status.HELD, Status.PENDING_PAYMENT)

    def is_expired(self, now=None) -> bool:
        """True once a hold's time is up, even before the sweeper records it."""
        if self.status == self.Status.EXPIRED:
            return True
        now = now or timezone.now()
        return self.status in self.LIVE_HOLD_STATUSES and self.expires_at is not None and self.expires_at <= now

    def effective_status(self, now=None) -> str:
        return self.Status.EXPIRED if self.is_expired(now) else self.status

    def get_effective_status_display(self) -> str:
        return self.Status(self.effective_status()).label

    def fee_per_ticket(self, tickets: int) -> int:
        """The booking fee is charged per ticket: its share of each of `tickets` lines."""
        return self.fee_amount // tickets if tickets else 0

    def seconds_left(self, now=None) -> int:
        if self.status not in self.LIVE_HOLD_STATUSES or self.expires_at is None:
            return 0
        now = now or timezone.now()
        return max(0, int((self.expires_at - now).total_seconds()))


class ReservationLine(models.Model):
    """What was reserved, frozen at hold time: the receipt survives any later change."""

    reservation = models.ForeignKey(Reservation, on_delete=models.CASCADE, related_name="lines")
    item = models.ForeignKey(InventoryItem, on_delete=models.PROTECT, related_name="+")
    label = models.CharField(_("place"), max_length=120)
    grade_code = models.CharField(_("grade"), max_length=10)
    grade_name = models.CharField(_("grade name"), max_length=40)
    # What the customer pays for the place: the grade's price at hold time (list_price),
    # less the discount chosen at checkout, if any.
    price = models.PositiveIntegerField(_("price (KRW)"))
    list_price = models.PositiveIntegerField(_("full price (KRW)"))
    discount = models.ForeignKey(
        "events.Discount",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("discount"),
    )
    discount_name = models.CharField(_("discount name"), max_length=40, blank=True)
    # Scanned in at the entrance (reservations.checkin): once, by whom.
    admitted_at = models.DateTimeField(_("admitted"), null=True, blank=True)
    admitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("admitted by"),
    )

    class Meta:
        ordering = ["id"]
        verbose_name = _("reserved place")
        verbose_name_plural = _("reserved places")

    def __str__(self):
        return self.label


class CancelledTicket(models.Model):
    """A ticket cancelled out of a booking that stands (부분 취소): its line is gone, so
    that every count and price of the booking is of what is still booked, and this is
    the receipt of what was given back."""

    reservation = models.ForeignKey(Reservation, on_delete=models.CASCADE, related_name="cancelled_tickets")
    label = models.CharField(_("place"), max_length=120)
    grade_name = models.CharField(_("grade name"), max_length=40)
    discount_name = models.CharField(_("discount name"), max_length=40, blank=True)
    price = models.PositiveIntegerField(_("price (KRW)"))
    cancelled_at = models.DateTimeField(_("cancelled at"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )

    class Meta:
        ordering = ["cancelled_at", "id"]
        verbose_name = _("cancelled ticket")
        verbose_name_plural = _("cancelled tickets")

    def __str__(self):
        return self.label


# The reason a hold is released when its customer changes its seats for others.
SEATS_CHANGED = gettext_noop("changed seats")


class ReservationTransition(models.Model):
    """Append-only history of a reservation's states: who moved it, when, and why."""

    reservation = models.ForeignKey(Reservation, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(_("from"), max_length=16, blank=True)
    to_status = models.CharField(_("to"), max_length=16)
    at = models.DateTimeField(_("at"), default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    reason = models.CharField(_("reason"), max_length=200, blank=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("state change")
        verbose_name_plural = _("state changes")

    def __str__(self):
        return f"{self.from_status or '-'} → {self.to_status}"

    def from_status_label(self) -> str:
        return Reservation.Status(self.from_status).label if self.from_status else "-"

    def to_status_label(self) -> str:
        return Reservation.Status(self.to_status).label

    def reason_label(self) -> str:
        """The reason in the reader's language where the engine wrote it (marked with
        gettext_noop where it is recorded, kept in English in the database); what staff
        or a refund typed is shown as written."""
        source = re.fullmatch(r"paid \((\w+)\)", self.reason)
        if source:
            return gettext("paid (%(source)s)") % {"source": PAYMENT_SOURCES.get(source[1], source[1])}
        return gettext(self.reason) if self.reason else ""


# Where a payment was learnt of, for the "paid (...)" reason that payments/services.py records.
PAYMENT_SOURCES = {
    "callback": _("back from the payment window"),
    "redirect": _("back from the payment window"),
    "webhook": _("I'mport notification"),
    "reconcile": _("reconciliation"),
    "staff": _("checked by staff"),
}
