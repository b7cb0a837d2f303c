"""Every message sent to a customer, or that we failed to send, one row each.

A row is written before its email is sent, and its unique `dedupe_key` is what makes
a message happen once: whoever inserts the row owns the message (two beat processes
or two workers inserting the same reminder get one row, the loser an IntegrityError),
and whoever moves the row from queued to sending owns the send (a compare-and-set
UPDATE). See notifications/services.py for the whole protocol.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Notification(models.Model):
    class Kind(models.TextChoices):
        BOOKING_CONFIRMED = "booking_confirmed", _("Booking confirmed")
        AWAITING_DEPOSIT = "awaiting_deposit", _("Awaiting deposit")
        PAYMENT_REMINDER = "payment_reminder", _("Payment reminder")
        BOOKING_EXPIRED = "booking_expired", _("Booking expired")
        BOOKING_CANCELLED = "booking_cancelled", _("Booking cancelled")
        REFUNDED = "refunded", _("Refund issued")
        PERFORMANCE_TOMORROW = "performance_tomorrow", _("Performance tomorrow")
        PERFORMANCE_CANCELLED = "performance_cancelled", _("Performance cancelled: refund account needed")
        REFUND_ACCOUNT_NEEDED = "refund_account_needed", _("Refund account needed")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Not needed")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications", verbose_name=_("customer")
    )
    # Nullable so that a booking deleted while its email waits in the queue leaves
    # the log row behind (marked not needed) instead of an error.
    reservation = models.ForeignKey(
        "reservations.Reservation",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="notifications",
        verbose_name=_("reservation"),
    )
    payment = models.ForeignKey(
        "payments.Payment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="notifications",
        verbose_name=_("payment"),
    )
    kind = models.CharField(_("kind"), max_length=30, choices=Kind)
    # Who the message is for, e.g. "payment_reminder:42:1767225600:10800". Unique: the
    # insert that creates this row is the claim on the message.
    dedupe_key = models.CharField(_("deduplication key"), max_length=150, unique=True)
    # Facts of the moment the message was decided on (a refunded amount, a reminder's
    # deadline); everything else is read when it is sent.
    context = models.JSONField(_("details"), default=dict, blank=True)
    recipient = models.EmailField(_("recipient"), blank=True)
    language = models.CharField(_("language"), max_length=8, blank=True)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status, default=Status.QUEUED)
    error = models.CharField(_("error"), max_length=500, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    # When a queued message may next be tried (backoff after a failed attempt).
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timezone.now)
    # When a sender moved it to "sending". A row still sending long after this was
    # abandoned by a worker that died, and may be taken over.
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["user", "created_at"]),
        ]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")

    def __str__(self):
        return f"{self.get_kind_display()} → {self.recipient or self.user_id}"
