"""Payments through I'mport (PortOne V1), the refund policy, and what happened to each.

A Payment is one attempt to pay for a reservation: it gets its own merchant_uid
(I'mport rejects a merchant_uid that was already paid, and a customer may retry after
a decline). The amount is computed on the server and registered with I'mport before
the payment window opens (prepare); every completion path re-fetches the payment
from I'mport and compares it with this row (payments.services.payment_sync).
"""

import secrets

from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def new_merchant_uid() -> str:
    # URL-safe and well under I'mport's 40 characters: the client library does not
    # encode path parameters, so only [A-Za-z0-9_-] may appear.
    return f"tkt_{timezone.now():%y%m%d}_{secrets.token_hex(8)}"


class Payment(models.Model):
    class Method(models.TextChoices):
        CARD = "card", _("Credit or debit card")
        TRANS = "trans", _("Real-time bank transfer")
        VBANK = "vbank", _("Virtual account (bank deposit)")

    class Status(models.TextChoices):
        PREPARED = "prepared", _("Waiting for payment")
        AWAITING_DEPOSIT = "awaiting_deposit", _("Awaiting deposit")
        PAID = "paid", _("Paid")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Refunded in full")

    reservation = models.ForeignKey(
        "reservations.Reservation", on_delete=models.PROTECT, related_name="payments", verbose_name=_("reservation")
    )
    merchant_uid = models.CharField(_("merchant uid"), max_length=40, unique=True, default=new_merchant_uid)
    imp_uid = models.CharField(_("I'mport uid"), max_length=40, unique=True, null=True, blank=True)
    amount = models.PositiveIntegerField(_("amount (KRW)"))
    currency = models.CharField(_("currency"), max_length=3, default="KRW")
    method = models.CharField(_("method"), max_length=10, choices=Method)
    status = models.CharField(_("status"), max_length=20, choices=Status, default=Status.PREPARED)
    refunded_amount = models.PositiveIntegerField(_("refunded (KRW)"), default=0)
    vbank_name = models.CharField(_("bank"), max_length=40, blank=True)
    vbank_num = models.CharField(_("account number"), max_length=40, blank=True)
    vbank_holder = models.CharField(_("account holder"), max_length=60, blank=True)
    vbank_due = models.DateTimeField(_("deposit deadline"), null=True, blank=True)
    # The refund rules the customer agreed to when paying, frozen (see refund_policy.py).
    refund_policy = models.JSONField(_("refund policy"), default=dict, blank=True)
    failure_reason = models.CharField(_("failure reason"), max_length=250, blank=True)
    # Money arrived that must go back (wrong amount, or the seats were gone): the
    # refund is retried by reconciliation until I'mport confirms it.
    needs_refund = models.BooleanField(_("refund owed"), default=False)
    gateway_payload = models.JSONField(_("last gateway payload"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    paid_at = models.DateTimeField(_("paid"), null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(refunded_amount__lte=F("amount")), name="payment_refund_within_amount"),
        ]
        indexes = [models.Index(fields=["status", "created_at"])]
        verbose_name = _("payment")
        verbose_name_plural = _("payments")

    def __str__(self):
        return self.merchant_uid

    def get_customer_status_display(self) -> str:
        """The status as the customer's booking page names it: a payment cancelled
        before any money came (a withdrawn virtual account) was not "refunded"."""
        if self.status == self.Status.CANCELLED and not self.refunded_amount and not self.paid_at:
            return _("Cancelled before payment")
        return self.get_status_display()

    @property
    def concerns_customer(self) -> bool:
        """Whether the customer's booking page lists it: not a payment window opened and
        left or closed, nor one that failed (nothing was charged, and the customer was
        told at the time); listed, they would read as money still owed."""
        return self.status not in (self.Status.PREPARED, self.Status.FAILED)

    @property
    def refundable_amount(self) -> int:
        return self.amount - self.refunded_amount if self.status == self.Status.PAID else 0


class PaymentEvent(models.Model):
    """Append-only log: every callback, redirect, webhook, sync, refund and error."""

    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="events", null=True, blank=True)
    imp_uid = models.CharField(max_length=40, blank=True)
    kind = models.CharField(_("kind"), max_length=30)
    message = models.CharField(_("message"), max_length=250, blank=True)
    data = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("payment event")
        verbose_name_plural = _("payment events")

    def __str__(self):
        return f"{self.kind} {self.imp_uid}"


class RefundPolicy(models.Model):
    """An event's cancellation rules. Without one, the Korean standard applies
    (payments.refund_policy.KOREAN_STANDARD); either way it is frozen onto each
    payment when the customer pays."""

    event = models.OneToOneField("events.Event", on_delete=models.CASCADE, related_name="refund_policy")
    free_days_after_booking = models.PositiveSmallIntegerField(
        _("free cancellation for this many days after booking"), default=7
    )
    free_min_days_before = models.PositiveSmallIntegerField(
        _("...but only while the performance is at least this many days away"), default=10
    )
    flat_fee_per_ticket = models.PositiveIntegerField(
        _("fee per ticket after the free period (KRW)"),
        default=4000,
        help_text=_("Charged until the percentage tiers begin; never more than a tenth of the ticket price."),
    )
    fee_percent_9_to_7_days = models.PositiveSmallIntegerField(
        _("fee % 9-7 days before"), default=10, validators=[MaxValueValidator(100)]
    )
    fee_percent_6_to_3_days = models.PositiveSmallIntegerField(
        _("fee % 6-3 days before"), default=20, validators=[MaxValueValidator(100)]
    )
    fee_percent_2_to_1_days = models.PositiveSmallIntegerField(
        _("fee % 2-1 days before"), default=30, validators=[MaxValueValidator(100)]
    )
    cutoff_hour_day_before = models.PositiveSmallIntegerField(
        _("cancellation closes at this hour the day before"),
        default=17,
        validators=[MaxValueValidator(23)],
        help_text=_("0-23, Korea time."),
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(fee_percent_9_to_7_days__lte=100)
                & Q(fee_percent_6_to_3_days__lte=100)
                & Q(fee_percent_2_to_1_days__lte=100),
                name="refund_policy_fee_at_most_all",
                violation_error_message=_("A cancellation fee cannot be more than 100%% of the ticket price."),
            ),
            models.CheckConstraint(
                condition=Q(cutoff_hour_day_before__lte=23),
                name="refund_policy_cutoff_is_an_hour",
                violation_error_message=_("The cut-off hour is an hour of the day, 0 to 23."),
            ),
        ]
        verbose_name = _("refund policy")
        verbose_name_plural = _("refund policies")

    def __str__(self):
        return str(self.event)
