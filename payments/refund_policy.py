"""Cancellation fees, by default the Korean standard that Interpark and Melon Ticket use.

* Free cancellation for 7 days after booking, as long as the performance is still at
  least 10 days away.
* Otherwise, 10 or more days before: a flat fee per ticket (4,000원 for concerts and
  musicals), never more than 10% of the ticket price.
* 9-7 days before: 10% of the ticket price; 6-3 days: 20%; 2-1 days: 30%.
* Cancellation closes at 17:00 (Korea time) the day before the performance.
* The booking fee is refunded only when cancelling on the day of booking.

Days are counted in calendar days in Asia/Seoul, as the sites count them. The policy
is stored as plain data on each payment when the customer pays, so later changes to
an event's policy never change what an earlier customer agreed to.
"""

import datetime as dt
from dataclasses import asdict, dataclass

from django.utils import timezone
from django.utils.translation import gettext as _


@dataclass(frozen=True)
class Policy:
    free_days_after_booking: int = 7
    free_min_days_before: int = 10
    flat_fee_per_ticket: int = 4000
    fee_percent_9_to_7_days: int = 10
    fee_percent_6_to_3_days: int = 20
    fee_percent_2_to_1_days: int = 30
    cutoff_hour_day_before: int = 17

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Policy":
        """The policy a payment froze. Values out of range (frozen before the model
        refused them) are brought into it, so no booking's page fails on them and no
        fee exceeds the ticket."""
        fields = cls.__dataclass_fields__
        values = {k: max(0, int(v)) for k, v in (data or {}).items() if k in fields}
        for name in ("fee_percent_9_to_7_days", "fee_percent_6_to_3_days", "fee_percent_2_to_1_days"):
            if name in values:
                values[name] = min(values[name], 100)
        if "cutoff_hour_day_before" in values:
            values["cutoff_hour_day_before"] = min(values["cutoff_hour_day_before"], 23)
        return cls(**values)


KOREAN_STANDARD = Policy()


@dataclass(frozen=True)
class RefundQuote:
    allowed: bool
    rule: str  # the rule that applies, or why cancelling is no longer possible
    ticket_amount: int
    booking_fee: int
    cancellation_fee: int
    ticket_refund: int
    fee_refund: int
    # Refunded already (by staff, without cancelling): cancelling sends the rest, never
    # more than is left of the payment.
    already_refunded: int = 0
    left_to_refund: int | None = None

    @property
    def total_refund(self) -> int:
        """What cancelling now sends back."""
        by_policy = self.ticket_refund + self.fee_refund
        return by_policy if self.left_to_refund is None else min(by_policy, self.left_to_refund)


def cancellation_deadline(policy: Policy, starts_at: dt.datetime) -> dt.datetime:
    local_start = timezone.localtime(starts_at)
    day_before = local_start.date() - dt.timedelta(days=1)
    naive = dt.datetime.combine(day_before, dt.time(hour=policy.cutoff_hour_day_before))
    return timezone.make_aware(naive, timezone.get_current_timezone())


def refund_quote(
    *,
    policy: Policy,
    ticket_prices: list[int],
    booking_fee: int,
    booked_at: dt.datetime,
    starts_at: dt.datetime,
    now: dt.datetime,
) -> RefundQuote:
    """What cancelling now would refund."""
    ticket_amount = sum(ticket_prices)
    deadline = cancellation_deadline(policy, starts_at)
    if now >= deadline:
        when = timezone.localtime(deadline)
        return RefundQuote(
            allowed=False,
            rule=_("Cancellation closed at %(time)s.") % {"time": f"{when:%Y-%m-%d %H:%M}"},
            ticket_amount=ticket_amount,
            booking_fee=booking_fee,
            cancellation_fee=0,
            ticket_refund=0,
            fee_refund=0,
        )
    today = timezone.localdate(now)
    days_before = (timezone.localdate(starts_at) - today).days
    fee_refund = booking_fee if timezone.localdate(booked_at) == today else 0

    free = now < booked_at + dt.timedelta(days=policy.free_days_after_booking)
    if free and days_before >= policy.free_min_days_before:
        fee, rule = (
            0,
            _("Free cancellation within %(days)d days of booking.") % {"days": policy.free_days_after_booking},
        )
    elif days_before >= 10:
        fee = sum(min(policy.flat_fee_per_ticket, price // 10) for price in ticket_prices)
        rule = _("10 or more days before the performance: a fee per ticket.")
    elif days_before >= 7:
        fee = ticket_amount * policy.fee_percent_9_to_7_days // 100
        rule = _("9 to 7 days before: %(percent)d%% of the ticket price.") % {"percent": policy.fee_percent_9_to_7_days}
    elif days_before >= 3:
        fee = ticket_amount * policy.fee_percent_6_to_3_days // 100
        rule = _("6 to 3 days before: %(percent)d%% of the ticket price.") % {"percent": policy.fee_percent_6_to_3_days}
    else:
        fee = ticket_amount * policy.fee_percent_2_to_1_days // 100
        rule = _("2 to 1 days before: %(percent)d%% of the ticket price.") % {"percent": policy.fee_percent_2_to_1_days}
    return RefundQuote(
        allowed=True,
        rule=rule,
        ticket_amount=ticket_amount,
        booking_fee=booking_fee,
        cancellation_fee=fee,
        ticket_refund=ticket_amount - fee,
        fee_refund=fee_refund,
    )
