"""Money: starting a payment, the one idempotent sync, refunds and reconciliation.

Every path that learns about a payment (the browser callback, the mobile redirect,
the webhook) calls `payment_sync(imp_uid=...)`; the reconciliation task, which has
just looked the payment up itself, enters the same sync after the lookup. It never
trusts what it was told: it fetches the payment from I'mport, locks our row found by
the *fetched* merchant_uid, checks amount and currency, and applies the change once.
Calls to I'mport are never made while holding a row lock, except the short lookup
that precedes it; refunds that must happen after a failed check are recorded first
(`needs_refund`) and then executed, so a crash in between is finished by
reconciliation instead of losing the customer's money.
"""

import contextlib
import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.db import DatabaseError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop, ngettext

from events.models import Performance
from notifications.models import Notification
from notifications.services import notification_queue
from reservations import services as reservation_services
from reservations.models import Reservation
from ticketing.celery import enqueue
from ticketing.formatting import krw

from .gateway import GatewayError, GatewayPayment, GatewayUnavailable, PaymentNotFound, get_gateway
from .models import Payment, PaymentEvent, RefundPolicy
from .refund_policy import KOREAN_STANDARD, Policy, RefundQuote, refund_quote

logger = logging.getLogger(__name__)


class PaymentError(Exception):
    """A payment request refused; `message` is written for the customer."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


REFUND_UNCONFIRMED = gettext_lazy(
    "The payment service is not answering, so the refund could not be confirmed. "
    "Please try again in a few minutes: the same money is never refunded twice."
)


class RefundAlreadyAsked(PaymentError):
    """The same refund form arrived again; the first one is the refund."""


class RefundRaced(PaymentError):
    """I'mport refused the refund because another one of the same payment went through
    first (its checksum): that one is recorded, and this one was not sent."""


class RefundNotSent(PaymentError):
    """I'mport did not answer a refund, and did not show one when asked after: asking
    again is safe (the checksum refuses a second refund of the same money)."""


def _log(payment: Payment | None, kind: str, message: str = "", imp_uid: str = "", **data) -> None:
    PaymentEvent.objects.create(
        payment=payment,
        kind=kind,
        message=message[:250],
        imp_uid=imp_uid or (payment.imp_uid or "" if payment else ""),
        data=data,
    )


def policy_for_event(event) -> Policy:
    row = RefundPolicy.objects.filter(event=event).first()
    if row is None:
        return KOREAN_STANDARD
    return Policy.from_dict({f: getattr(row, f) for f in Policy.__dataclass_fields__})


def record_webhook(*, imp_uid: str, data: dict) -> None:
    """Keep every notification as received, before anything is done about it."""
    payment = Payment.objects.filter(imp_uid=imp_uid).first()
    if payment is None and data.get("merchant_uid"):
        payment = Payment.objects.filter(merchant_uid=str(data["merchant_uid"])[:40]).first()
    _log(
        payment,
        "webhook",
        str(data.get("status", ""))[:30],
        imp_uid=imp_uid,
        body={k: str(v)[:100] for k, v in data.items()},
    )


# --- Starting a payment -------------------------------------------------------


def payment_start(
    *,
    reservation: Reservation,
    method: str,
    booker_name: str = "",
    booker_phone: str = "",
    now: dt.datetime | None = None,
) -> Payment:
    """Register the server-computed amount with I'mport and open a payment attempt.
    The booker's name and phone (E.164), when given, are kept on the booking."""
    now = now or timezone.now()
    if method not in Payment.Method.values:
        raise PaymentError(_("Choose a payment method."))
    if reservation.status == Reservation.Status.CONFIRMED:  # paid in another tab
        raise PaymentError(_("This booking is already paid: there is nothing more to pay."))
    if reservation.status == Reservation.Status.RELEASED:  # from a page left open, or Back
        raise PaymentError(_("These seats were released, so there is nothing to pay. Choose seats again."))
    if reservation.status == Reservation.Status.CANCELLED:
        raise PaymentError(_("This booking was cancelled, so there is nothing to pay."))
    if reservation.status not in Reservation.LIVE_HOLD_STATUSES or reservation.is_expired(now):
        raise PaymentError(_("Your hold has expired. Please choose seats again."))
    try:
        reservation_services.check_payable(reservation.performance, now)
    except reservation_services.PerformanceGone as exc:
        raise PaymentError(exc.message) from exc
    if reservation.payments.filter(status__in=[Payment.Status.AWAITING_DEPOSIT, Payment.Status.PAID]).exists():
        raise PaymentError(_("This booking is already paid or waiting for your deposit."))
    if booker_name or booker_phone:
        Reservation.objects.filter(pk=reservation.pk).update(booker_name=booker_name, booker_phone=booker_phone)
        reservation.booker_name, reservation.booker_phone = booker_name, booker_phone
    payment = Payment.objects.create(
        reservation=reservation,
        amount=reservation.total_amount,
        method=method,
        refund_policy=policy_for_event(reservation.performance.event).as_dict(),
        created_at=now,
    )
    try:
        get_gateway().prepare(merchant_uid=payment.merchant_uid, amount=payment.amount)
    except GatewayError as exc:
        logger.warning("prepare failed for %s: %s", payment.merchant_uid, exc)
        Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.FAILED, failure_reason=str(exc)[:250])
        _log(payment, "prepare_failed", str(exc))
        raise PaymentError(_("The payment service is not answering. Please try again in a moment.")) from exc
    _log(payment, "prepared", amount=payment.amount)
    if reservation.status == Reservation.Status.HELD:
        try:
            reservation_services.reservation_await_payment(reservation=reservation, amount=payment.amount, now=now)
        except reservation_services.PriceChanged as exc:
            # Registered at the old total: this attempt is not opened (and if it were
            # paid anyway, payment_sync refunds a payment that does not match the total).
            Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.FAILED, failure_reason=exc.message)
            raise PaymentError(exc.message) from exc
        except reservation_services.ReservationError as exc:
            raise PaymentError(exc.message) from exc
    return payment


def payment_window_failed(*, payment: Payment, error_msg: str = "") -> None:
    """The payment window failed before I'mport created a payment (declined at once,
    amount refused by prepare): nothing was charged, and the customer may try again
    while the hold lasts."""
    Payment.objects.filter(pk=payment.pk, status=Payment.Status.PREPARED).update(
        status=Payment.Status.FAILED, failure_reason=error_msg[:250]
    )
    _log(payment, "window_failed", error_msg)
    reservation_services.reservation_resume_hold(
        reservation=payment.reservation, reason=gettext_noop("payment window failed")
    )


# --- The one sync -------------------------------------------------------------


@dataclass
class SyncResult:
    payment: Payment | None
    outcome: str  # paid, awaiting_deposit, failed, refunded, unchanged, refund_owed
    message: str


def payment_sync(*, imp_uid: str, source: str) -> SyncResult:
    """Bring our records in line with what I'mport says about `imp_uid`. Idempotent.

    Raises GatewayUnavailable when I'mport cannot be asked (callers retry or leave
    it to reconciliation) and PaymentNotFound for an imp_uid I'mport does not know.
    """
    try:
        remote = get_gateway().find(imp_uid=imp_uid)
    except PaymentNotFound:
        _log(None, "unknown_imp_uid", f"{source}: I'mport does not know this payment", imp_uid=imp_uid)
        logger.warning("payment sync from %s for unknown imp_uid %s", source, imp_uid)
        raise
    return _sync_remote(remote, source)


def _sync_remote(remote: GatewayPayment, source: str) -> SyncResult:
    """payment_sync once I'mport has answered (reconciliation has the answer already)."""
    result = _apply(remote, source)
    if result.outcome == "refund_owed":
        _refund_owed(result.payment)
        result.payment.refresh_from_db()
    return result


@transaction.atomic
def _apply(remote: GatewayPayment, source: str) -> SyncResult:
    payment = Payment.objects.select_for_update().filter(merchant_uid=remote.merchant_uid).first()
    if payment is None:
        _log(None, "unknown_merchant_uid", f"{source}: no order {remote.merchant_uid}", imp_uid=remote.imp_uid)
        logger.error("I'mport payment %s names unknown merchant_uid %s", remote.imp_uid, remote.merchant_uid)
        raise PaymentNotFound(_("This payment does not belong to any of our orders."))
    if payment.imp_uid and payment.imp_uid != remote.imp_uid:
        # A second I'mport payment for the same attempt: treat it on its own merits.
        _log(payment, "imp_uid_mismatch", f"{source}: already linked to {payment.imp_uid}", imp_uid=remote.imp_uid)
    _log(payment, f"sync_{source}", remote.status, imp_uid=remote.imp_uid, status=remote.status, amount=remote.amount)
    payment.gateway_payload = remote.raw
    reservation = Reservation.objects.select_for_update().get(pk=payment.reservation_id)

    if remote.status in ("paid", "cancelled") and (
        remote.amount != payment.amount or remote.currency != payment.currency
    ):
        # Someone changed the amount in the browser: the money goes back in full.
        return _owe_refund(
            payment,
            remote,
            _("The amount paid (%(paid)s) does not match the order (%(due)s), so it is being refunded in full.")
            % {"paid": krw(remote.amount), "due": krw(payment.amount)},
        )

    if remote.status == "paid":
        if payment.status == Payment.Status.PAID and remote.cancel_amount > payment.refunded_amount:
            # Part refunded at I'mport (its console, or our refund whose answer was lost):
            # recorded, so that the balance the next refund sends is right.
            before = payment.refunded_amount
            payment.refunded_amount = min(remote.cancel_amount, payment.amount)
            payment.save(update_fields=["gateway_payload", "refunded_amount", "updated_at"])
            _log(payment, "refund_recorded", amount=payment.refunded_amount)
            _finish_unanswered_cancel(payment, reservation, found=payment.refunded_amount - before)
            return SyncResult(payment, "refunded", _("Refunded %(amount)s.") % {"amount": krw(payment.refunded_amount)})
        if payment.status == Payment.Status.PAID:
            payment.save(update_fields=["gateway_payload", "updated_at"])
            if payment.needs_refund:
                # An earlier sync decided this money goes back and its refund did not
                # get through (I'mport down): say so again, and try the refund again.
                return SyncResult(payment, "refund_owed", payment.failure_reason)
            return SyncResult(payment, "unchanged", _("Your booking is confirmed."))
        if payment.amount != reservation.total_amount and reservation.status != Reservation.Status.CONFIRMED:
            # Opened before the ticket types were changed (a window reported as failed
            # that went through after all): the booking now costs something else.
            return _owe_refund(
                payment,
                remote,
                _(
                    "The price of this booking changed after this payment was started, "
                    "so it is being refunded in full. Please pay the new total."
                ),
            )
        payment.imp_uid = remote.imp_uid
        payment.status = Payment.Status.PAID
        payment.paid_at = remote.paid_at or timezone.now()
        payment.save()
        try:  # a savepoint of its own: a refusal leaves this transaction usable
            reservation_services.reservation_confirm(reservation=reservation, reason=f"paid ({source})")
        except reservation_services.OverLimit as exc:
            why = _("Your payment arrived after your hold ended. %(reason)s So it is being refunded in full.")
            return _owe_refund(payment, remote, why % {"reason": exc.message})
        except reservation_services.PerformanceGone as exc:
            why = _("%(reason)s Your payment is being refunded in full.")
            return _owe_refund(payment, remote, why % {"reason": exc.message})
        except reservation_services.ReservationError:
            gone = _performance_gone(reservation)
            if gone:  # it came after staff called the show off: say that, not the hold's end
                why = _("%(reason)s Your payment is being refunded in full.") % {"reason": gone}
            elif reservation.status == Reservation.Status.RELEASED:
                # Let go in another tab (or by staff) while the payment window was open.
                why = _("These seats were released before your payment arrived, so it is being refunded in full.")
            else:
                why = _(
                    "Your payment arrived after your hold ended and the seats were taken, "
                    "so it is being refunded in full."
                )
            return _owe_refund(payment, remote, why)
        _log(payment, "paid", amount=remote.amount)
        if Payment.objects.filter(reservation=reservation, status=Payment.Status.AWAITING_DEPOSIT).exists():
            # A virtual account opened in another tab would take a second payment.
            _withdraw_after_commit(reservation, reason=gettext_noop("paid another way"))
        notification_queue(kind=Notification.Kind.BOOKING_CONFIRMED, reservation=reservation, payment=payment)
        return SyncResult(payment, "paid", _("Payment received: your booking is confirmed."))

    # "ready" with an account number: the account was issued. Without one the window
    # was closed before it was (nothing to deposit into): not complete, like a card's.
    if remote.status == "ready" and payment.method == Payment.Method.VBANK and remote.vbank_num:
        if payment.status == Payment.Status.AWAITING_DEPOSIT:
            return SyncResult(payment, "unchanged", _("We are waiting for your deposit."))
        if payment.status != Payment.Status.PREPARED:
            return SyncResult(payment, "unchanged", payment.get_status_display())
        payment.imp_uid = remote.imp_uid
        payment.status = Payment.Status.AWAITING_DEPOSIT
        payment.vbank_name = remote.vbank_name
        payment.vbank_num = remote.vbank_num
        payment.vbank_holder = remote.vbank_holder
        payment.vbank_due = remote.vbank_date
        payment.save()
        _log(payment, "vbank_issued", remote.vbank_num)
        if payment.amount != reservation.total_amount and reservation.status != Reservation.Status.CONFIRMED:
            # Opened before the ticket types were changed: nobody is asked to deposit
            # the old total, and the hold is not kept for it.
            why = _(
                "The total of this booking changed before this virtual account was issued: it is closed, "
                "and no deposit is needed. Please pay the new total."
            )
            _withdraw_after_commit(
                reservation, reason=gettext_noop("total changed before the account was issued"), why=why
            )
            return SyncResult(payment, "unchanged", why)
        if remote.vbank_date:
            # The seats are kept until the deposit deadline, if the hold is still live.
            with contextlib.suppress(reservation_services.ReservationError):
                reservation = reservation_services.reservation_await_payment(
                    reservation=reservation, until=remote.vbank_date
                )
        if reservation.status not in Reservation.LIVE_HOLD_STATUSES or reservation.is_expired():
            # Paid another way (a card, in another tab) or let go (released in another
            # tab, the hold's time up, the performance cancelled) while the account was
            # being issued: it is withdrawn, and nobody is asked to deposit.
            if reservation.status == Reservation.Status.CONFIRMED:
                _withdraw_after_commit(reservation, reason=gettext_noop("paid another way"))
                return SyncResult(payment, "unchanged", _("This booking is already paid: no deposit is needed."))
            _withdraw_after_commit(reservation, reason=gettext_noop("seats let go before the account was issued"))
            return SyncResult(
                payment,
                "unchanged",
                _(
                    "Your seats were let go before the virtual account was issued: "
                    "it is closed, and no deposit is needed."
                ),
            )
        # Recorded in this transaction, emailed after it commits (notifications.services).
        notification_queue(kind=Notification.Kind.AWAITING_DEPOSIT, reservation=reservation, payment=payment)
        return SyncResult(payment, "awaiting_deposit", _("Virtual account issued: please deposit before the deadline."))

    if remote.status == "failed":
        if payment.status == Payment.Status.PREPARED:
            payment.imp_uid = payment.imp_uid or remote.imp_uid
            payment.status = Payment.Status.FAILED
            payment.failure_reason = (remote.fail_reason or "")[:250]
            payment.save()
            reservation_services.reservation_resume_hold(reservation=reservation, reason=gettext_noop("payment failed"))
            _log(payment, "failed", remote.fail_reason)
        return SyncResult(
            payment, "failed", _("The payment did not go through: %(reason)s") % {"reason": remote.fail_reason or "-"}
        )

    if remote.status == "cancelled" or remote.cancel_amount:
        return _record_refund(payment, remote, reservation, source)

    payment.save(update_fields=["gateway_payload", "updated_at"])
    return SyncResult(payment, "unchanged", _("The payment is not complete yet."))


def _performance_gone(reservation: Reservation) -> str:
    """Why the reservation's performance can no longer be paid for, or ""."""
    try:
        reservation_services.check_payable(reservation.performance, timezone.now())
    except reservation_services.PerformanceGone as exc:
        return exc.message
    return ""


def _owe_refund(payment: Payment, remote: GatewayPayment, message: str) -> SyncResult:
    payment.imp_uid = payment.imp_uid or remote.imp_uid
    if remote.status == "paid" and payment.status not in (Payment.Status.PAID,):
        payment.status = Payment.Status.PAID
        payment.paid_at = remote.paid_at or timezone.now()
    payment.needs_refund = remote.amount > remote.cancel_amount
    payment.failure_reason = message[:250]
    payment.save()
    _log(payment, "refund_owed", message, amount=remote.amount)
    return SyncResult(payment, "refund_owed" if payment.needs_refund else "refunded", message)


def _finish_unanswered_cancel(payment: Payment, reservation: Reservation, *, found: int) -> None:
    """A customer's cancellation whose refund I'mport made but that we did not record
    (its answer lost and the lookup down, or its request died before recording it) is
    finished when a sync finds that refund: else the booking would stand with its
    money back, and cancelling again would refund the same tickets twice. The attempt
    is the latest one for exactly this amount; one still in flight that records it
    after this finds its tickets cancelled already, which it accepts."""
    purpose = attempt = None
    ended = _ended_attempts(payment.events.all())
    for asked in payment.events.filter(kind="refund_requested").order_by("-pk")[:10]:
        if not asked.data.get("purpose") or asked.data.get("amount") != found:
            continue
        # Refused: no money moved. Refunded: recorded by its own request, which did
        # what it was for. Otherwise (unanswered, or its request died) this is it: the
        # newest such attempt, past a retry that I'mport refused because of it. One still
        # in flight that records the refund after this finds its tickets cancelled.
        if asked.data.get("attempt") not in ended:
            purpose, attempt = asked.data["purpose"], asked.data.get("attempt")
            break
    if purpose is None:
        return
    try:
        with transaction.atomic():
            if purpose.get("cancel") == "tickets":
                reservation_services.reservation_cancel_tickets(
                    reservation=reservation, line_ids=purpose.get("lines", []), actor=None
                )
                kind = Notification.Kind.REFUNDED
            else:
                reservation_services.reservation_cancel(
                    reservation=reservation,
                    actor=None,
                    reason=gettext_noop("cancelled by customer, refund found later"),
                )
                kind = Notification.Kind.BOOKING_CANCELLED
    except reservation_services.ReservationError as exc:  # changed since (staff, another window)
        logger.warning("refund of %s found for %s, not finished: %s", found, reservation.code, exc.message)
        _log(payment, "refund_purpose_failed", exc.message, attempt=attempt)
        return
    _log(payment, "cancel_finished", amount=found, purpose=purpose, attempt=attempt)
    notification_queue(kind=kind, reservation=reservation, payment=payment, context={"refund": found})


def _record_refund(payment: Payment, remote: GatewayPayment, reservation: Reservation, source: str) -> SyncResult:
    """I'mport reports money returned (our refund, or one made in its console)."""
    refunded = min(remote.cancel_amount, payment.amount)
    if refunded == payment.refunded_amount and payment.status == Payment.Status.CANCELLED:
        return SyncResult(payment, "unchanged", _("This payment has been refunded."))
    payment.refunded_amount = refunded
    payment.imp_uid = payment.imp_uid or remote.imp_uid
    if remote.status == "cancelled" or refunded >= payment.amount:
        payment.status = Payment.Status.CANCELLED
        payment.needs_refund = False
        if reservation.status == Reservation.Status.CONFIRMED:
            reservation_services.reservation_cancel(
                reservation=reservation, actor=None, reason=f"refunded at I'mport ({source})"
            )
            notification_queue(
                kind=Notification.Kind.BOOKING_CANCELLED,
                reservation=reservation,
                payment=payment,
                context={"refund": refunded},
            )
    payment.save()
    _log(payment, "refund_recorded", amount=refunded)
    return SyncResult(payment, "refunded", _("Refunded %(amount)s.") % {"amount": krw(refunded)})


def _refund_owed(payment: Payment, **account) -> None:
    """Send back money we must not keep. Safe to repeat: the checksum (I'mport's own
    remaining balance, which may differ from our order when the amount was tampered
    with) refuses a second refund of the same money.

    A virtual account deposit can only go back to an account the customer names
    (`account`: refund_holder, refund_bank, refund_account); until they do, they are
    asked for it (once) instead of I'mport being asked in vain every few minutes.
    """
    paid = int(payment.gateway_payload.get("amount") or 0)
    already = int(payment.gateway_payload.get("cancel_amount") or 0)
    if not payment.needs_refund or not payment.imp_uid or paid - already <= 0:
        return
    if payment.method == Payment.Method.VBANK and not account:
        notification_queue(
            kind=Notification.Kind.REFUND_ACCOUNT_NEEDED,
            reservation=payment.reservation,
            payment=payment,
            context={"refund": paid - already, "reason": payment.failure_reason},
        )
        return
    try:
        remote = get_gateway().cancel(
            imp_uid=payment.imp_uid,
            reason=payment.failure_reason or "automatic refund",
            checksum=paid - already,
            **account,
        )
    except GatewayError as exc:
        logger.warning("automatic refund of %s failed, will retry: %s", payment.merchant_uid, exc)
        _log(payment, "refund_failed", str(exc))
        # An earlier attempt's answer may have been lost (refused now by the checksum,
        # or this answer lost too): what I'mport shows is recorded below.
        remote = _refund_seen_at_gateway(payment)
        if remote is None:
            if account and isinstance(exc, GatewayUnavailable):
                raise RefundNotSent(str(REFUND_UNCONFIRMED)) from exc
            if account:
                raise PaymentError(_("The refund was refused: %(reason)s") % {"reason": exc.message}) from exc
            return
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        locked.refunded_amount = min(remote.cancel_amount, locked.amount)
        locked.needs_refund = remote.cancel_amount < remote.amount
        if not locked.needs_refund:
            locked.status = Payment.Status.CANCELLED
        locked.gateway_payload = remote.raw
        locked.save()
        _log(locked, "auto_refunded", locked.failure_reason, amount=remote.cancel_amount)
        # The customer may not be on the page (a late deposit arrives by webhook): say why by email.
        notification_queue(
            kind=Notification.Kind.REFUNDED,
            reservation=locked.reservation,
            payment=locked,
            context={"refund": remote.cancel_amount, "reason": locked.failure_reason},
        )


def payment_refund_to_account(*, payment: Payment, refund_holder: str, refund_bank: str, refund_account: str) -> None:
    """The customer names the account for a virtual account deposit we owe back (it
    came after their hold ended, or for a performance called off before it was
    confirmed); the whole deposit is refunded there. Raises PaymentError if I'mport
    refuses, with its reason."""
    if not (payment.needs_refund and payment.method == Payment.Method.VBANK):
        raise PaymentError(_("Nothing is owed back on this payment."))
    _refund_owed(payment, refund_holder=refund_holder, refund_bank=refund_bank, refund_account=refund_account)


# --- Refunds ------------------------------------------------------------------


def refund_preview(*, reservation: Reservation, now: dt.datetime | None = None, line_ids=None) -> RefundQuote:
    """What cancelling the booking now would refund; with `line_ids`, cancelling only
    those of its tickets (their prices and their share of the booking fee)."""
    performance = reservation.performance
    lines = list(reservation.lines.all())
    booking_fee = reservation.fee_amount
    if line_ids is not None:
        line_ids = set(line_ids)
        chosen = [line for line in lines if line.pk in line_ids]
        booking_fee = reservation.fee_per_ticket(len(lines)) * len(chosen)
        lines = chosen
    if performance.status == Performance.Status.CANCELLED:
        # The organiser called it off: the customer gets everything back, whenever.
        tickets = sum(line.price for line in lines)
        return RefundQuote(
            allowed=True,
            rule=_("This performance has been cancelled: the tickets and the booking fee are refunded in full."),
            ticket_amount=tickets,
            booking_fee=booking_fee,
            cancellation_fee=0,
            ticket_refund=tickets,
            fee_refund=booking_fee,
        )
    payment = reservation.payments.filter(status=Payment.Status.PAID).first()
    policy = Policy.from_dict(payment.refund_policy) if payment else policy_for_event(reservation.performance.event)
    quote = refund_quote(
        policy=policy,
        ticket_prices=[line.price for line in lines],
        booking_fee=booking_fee,
        booked_at=reservation.confirmed_at or reservation.created_at,
        starts_at=reservation.performance.starts_at,
        now=now or timezone.now(),
    )
    if payment is not None and payment.refunded_amount:
        # Shown as sent: booking_cancel refunds at most what is left of the payment.
        quote = dataclasses.replace(
            quote, already_refunded=payment.refunded_amount, left_to_refund=payment.refundable_amount
        )
    return quote


def payment_refund(
    *,
    payment: Payment,
    amount: int,
    reason: str,
    refund_holder: str = "",
    refund_bank: str = "",
    refund_account: str = "",
    token: str = "",
    keep_some: bool = False,
    check: Callable[[], None] | None = None,
    then: Callable[[], None] | None = None,
    purpose: dict | None = None,
) -> Payment:
    """Refund `amount` (partial or full) at I'mport and record it. `keep_some` refuses
    to refund all that is left (a booking that stays valid, see payment_refund_by_staff).
    `check` may refuse (PaymentError) under the payment's lock, before anything is sent;
    `then` runs in the transaction that records the refund (what the money was for).
    `purpose` is kept on the attempt, so that a refund whose answer is lost and that a
    later sync finds at I'mport finishes what it was for (_finish_unanswered_cancel).

    The checksum is the balance we believe is left: two refunds at the same moment make
    I'mport refuse the second instead of refunding twice. `token` (the refund form's)
    catches the same form sent twice one after the other, which the checksum cannot: by
    then the second asks for a balance that is right.
    """
    # Every event of this attempt carries its id; what it was for, if anything.
    attempt = {"attempt": uuid.uuid4().hex, **({"token": token} if token else {})}
    if purpose:
        attempt["purpose"] = purpose
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if token and _attempt_open(locked, token):
            raise RefundAlreadyAsked(_("This refund has already been asked for: the form was sent twice."))
        if locked.status != Payment.Status.PAID:
            raise PaymentError(_("Only a paid payment can be refunded."))
        remaining = locked.amount - locked.refunded_amount
        if amount <= 0:
            raise PaymentError(_("The refund must be more than zero."))
        if amount > remaining:
            raise PaymentError(
                _("You can refund at most %(amount)s (the rest is already refunded).") % {"amount": krw(remaining)}
            )
        if keep_some and amount == remaining:
            raise PaymentError(
                _(
                    "Refunding all that is left would leave a valid ticket with no money paid for it. "
                    "Tick “Also cancel the booking”, or refund less."
                )
            )
        if locked.method == Payment.Method.VBANK and not (refund_holder and refund_bank and refund_account):
            raise PaymentError(_("A virtual account payment needs the bank account to refund to."))
        if check is not None:
            check()
        _log(locked, "refund_requested", reason, amount=amount, **attempt)
    try:
        remote = get_gateway().cancel(
            imp_uid=locked.imp_uid,
            reason=reason or "refund",
            amount=amount if amount < remaining else None,
            checksum=remaining,
            refund_holder=refund_holder,
            refund_bank=refund_bank,
            refund_account=refund_account,
        )
    except GatewayUnavailable as exc:
        # No answer is not "no refund": I'mport may have refunded and the answer been
        # lost. Ask it; only a refund it does not show is tried again.
        _log(locked, "refund_failed", str(exc), **attempt)
        remote = _refund_seen_at_gateway(locked)
        if remote is None:
            _log(locked, "refund_not_sent", str(exc), **attempt)  # this attempt is over: it may be tried again
            raise RefundNotSent(str(REFUND_UNCONFIRMED)) from exc
    except GatewayError as exc:
        _log(locked, "refund_refused", str(exc), **attempt)
        seen = _refund_seen_at_gateway(locked)
        if seen is None:
            raise PaymentError(_("The refund was refused: %(reason)s") % {"reason": exc.message}) from exc
        # The checksum did its job: I'mport has refunded more than we recorded (another
        # refund at the same moment, or an earlier one whose answer was lost). Record
        # what it shows, as a sync does (a refund of everything cancels the booking), so
        # that the balance the next refund sends is right.
        _sync_remote(seen, "reconcile")
        raise RefundRaced(
            _(
                "I'mport had already refunded more of this payment than was recorded here (another refund at the "
                "same moment, or an earlier one whose answer was lost). That refund is now recorded, and this one "
                "was not sent: check the amount refunded, and refund again if more is owed."
            )
        ) from exc
    return _save_refund(payment.pk, remote, before=locked.refunded_amount, reason=reason, then=then, attempt=attempt)


def _attempt_open(payment: Payment, token: str) -> bool:
    """Whether the refund attempt of this form is in flight or went through (as opposed
    to refused or not sent, which the same form may try again)."""
    asked = payment.events.filter(kind="refund_requested", data__token=token).count()
    ended = payment.events.filter(kind__in=["refund_refused", "refund_not_sent"], data__token=token).count()
    return asked > ended


def _save_refund(
    payment_pk: int, remote: GatewayPayment, *, before: int, reason: str, then=None, attempt: dict | None = None
) -> Payment:
    """Record the refunded total I'mport reports, if nobody has since `before`; then
    `then`, in its own savepoint: the money has moved, and its record stays whatever
    `then` finds."""
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment_pk)
        refunded = min(remote.cancel_amount, locked.amount)
        if locked.refunded_amount != before:
            if locked.refunded_amount != refunded:
                raise PaymentError(_("This payment was refunded meanwhile."))
            # Recorded meanwhile by the other request that found it (a sync): the same
            # state, and the refund is still this one, for `then`.
        else:
            locked.refunded_amount = refunded
            if locked.refunded_amount >= locked.amount:
                locked.status = Payment.Status.CANCELLED
            locked.gateway_payload = remote.raw
            locked.save()
            _log(locked, "refunded", reason, amount=refunded - before, **(attempt or {}))
        if then is not None:
            try:
                with transaction.atomic():
                    then()
            except reservation_services.ReservationError as exc:
                logger.error("refund of %s recorded, but: %s", locked.merchant_uid, exc.message)
                _log(locked, "refund_purpose_failed", exc.message)
    return locked


def _refund_seen_at_gateway(payment: Payment) -> GatewayPayment | None:
    """The payment as I'mport has it, if it shows more refunded than we recorded."""
    try:
        remote = get_gateway().find(imp_uid=payment.imp_uid)
    except GatewayError as exc:
        logger.warning("could not check the refund of %s at I'mport: %s", payment.merchant_uid, exc)
        return None
    return remote if remote.cancel_amount > payment.refunded_amount else None


def booking_cancel(
    *,
    reservation: Reservation,
    actor,
    reason: str = "",
    refund_holder: str = "",
    refund_bank: str = "",
    refund_account: str = "",
    now: dt.datetime | None = None,
) -> RefundQuote:
    """The customer cancels a confirmed booking: refund what the policy allows, free the seats."""
    now = now or timezone.now()
    if reservation.status != Reservation.Status.CONFIRMED:
        raise PaymentError(_("Only a confirmed booking can be cancelled."))
    quote = refund_preview(reservation=reservation, now=now)
    if not quote.allowed:
        raise PaymentError(quote.rule)
    payment = reservation.payments.filter(status=Payment.Status.PAID).first()
    if payment is None:
        raise PaymentError(_("No payment was found for this booking."))
    # Measured against `payment` as it is before this refund: what is refunded now.
    refund = min(quote.total_refund, payment.amount - payment.refunded_amount)
    if quote.total_refund:
        payment_refund(
            payment=payment,
            amount=refund,
            reason=reason or "cancelled by customer",
            refund_holder=refund_holder,
            refund_bank=refund_bank,
            refund_account=refund_account,
            purpose={"cancel": "booking"},
        )
    try:
        reservation_services.reservation_cancel(
            reservation=reservation, actor=actor, reason=reason or quote.rule, now=now
        )
    except reservation_services.InvalidTransition as exc:
        raise PaymentError(exc.message) from exc
    notification_queue(
        kind=Notification.Kind.BOOKING_CANCELLED,
        reservation=reservation,
        payment=payment,
        context={"refund": refund, "fee": quote.cancellation_fee},
        now=now,
    )
    return quote


def booking_cancel_tickets(
    *,
    reservation: Reservation,
    line_ids,
    actor,
    refund_holder: str = "",
    refund_bank: str = "",
    refund_account: str = "",
    now: dt.datetime | None = None,
) -> RefundQuote:
    """The customer cancels some tickets of a confirmed booking and keeps the rest (부분
    취소): those tickets' refund by the policy, then their places go back on sale. All
    of them is booking_cancel. Money first, as there: a refund I'mport refuses or does
    not answer changes nothing, and the customer may try again."""
    now = now or timezone.now()
    if reservation.status != Reservation.Status.CONFIRMED:
        raise PaymentError(_("Only a confirmed booking can be cancelled."))
    line_ids = set(line_ids)
    lines = list(reservation.lines.all())
    account = {"refund_holder": refund_holder, "refund_bank": refund_bank, "refund_account": refund_account}
    if not line_ids or not line_ids <= {line.pk for line in lines}:
        raise PaymentError(reservation_services.TicketsGone().message)
    if len(line_ids) == len(lines):
        return booking_cancel(reservation=reservation, actor=actor, now=now, **account)
    if reservation.performance.status == Performance.Status.CANCELLED:
        # Everything is refunded in full: one refund of the booking, not ticket by ticket.
        raise PaymentError(_("This performance has been cancelled: cancel the whole booking for a full refund."))
    quote = refund_preview(reservation=reservation, now=now, line_ids=line_ids)
    if not quote.allowed:
        raise PaymentError(quote.rule)
    payment = reservation.payments.filter(status=Payment.Status.PAID).first()
    if payment is None:
        raise PaymentError(_("No payment was found for this booking."))
    labels = ", ".join(line.label for line in lines if line.pk in line_ids)
    reason = gettext_noop("tickets cancelled by customer")
    refund = min(quote.total_refund, payment.refundable_amount)
    if refund and refund >= payment.refundable_amount:
        # Staff refunded part of this booking already: what these tickets would get back
        # is all that is left, and the tickets kept would be free.
        raise PaymentError(
            _(
                "Part of this booking was refunded already, so these tickets cannot be cancelled alone. "
                "Cancel the whole booking, or contact us."
            )
        )

    def still_booked():
        # Under the payment's lock, which every refund of it takes: tickets cancelled
        # in another tab this instant are not refunded twice.
        booked = dict(reservation.lines.values_list("pk", "admitted_at"))
        if not line_ids <= set(booked):
            raise PaymentError(reservation_services.TicketsGone().message)
        if any(booked[pk] for pk in line_ids):
            raise PaymentError(_("A ticket already used at the entrance cannot be cancelled."))
        if Reservation.objects.filter(pk=reservation.pk, status=Reservation.Status.CONFIRMED).count() != 1:
            raise PaymentError(_("Only a confirmed booking can be cancelled."))

    def cancel_them():
        reservation_services.reservation_cancel_tickets(
            reservation=reservation, line_ids=line_ids, actor=actor, now=now
        )
        # In the transaction that cancels them: the email exists if and only if they are.
        notification_queue(
            kind=Notification.Kind.REFUNDED,
            reservation=reservation,
            payment=Payment.objects.get(pk=payment.pk),  # its refunded total tells this refund apart
            context={
                "refund": refund,
                "reason": ngettext(
                    "You cancelled %(count)d ticket: %(places)s. The rest of your booking stands.",
                    "You cancelled %(count)d tickets: %(places)s. The rest of your booking stands.",
                    len(line_ids),
                )
                % {"count": len(line_ids), "places": labels},
            },
            now=now,
        )

    if refund:
        # keep_some: the tickets that stay are still paid for. The tickets are cancelled
        # in the transaction that records the refund, so no moment shows one without the other.
        try:
            payment = payment_refund(
                payment=payment,
                amount=refund,
                reason=f"{reason}: {labels}",
                keep_some=True,
                check=still_booked,
                then=cancel_them,
                purpose={"cancel": "tickets", "lines": sorted(line_ids)},
                **account,
            )
        except RefundRaced as exc:
            # Another refund of this booking (another window) got there first.
            raise PaymentError(
                _("This booking was changed at the same moment in another window. Check it, then try again.")
            ) from exc
        except DatabaseError as exc:
            # Sent, perhaps, and not recorded (the tickets' transaction failed): the
            # reconciliation finds the refund at I'mport and cancels the tickets then.
            logger.exception("refund for tickets of %s not recorded", reservation.code)
            raise PaymentError(
                _("We could not finish cancelling these tickets. Check your booking again in a few minutes.")
            ) from exc
    else:
        try:
            with transaction.atomic():  # nothing to send back (a fee of the whole price)
                Payment.objects.select_for_update().get(pk=payment.pk)
                still_booked()
                cancel_them()
        except reservation_services.ReservationError as exc:
            raise PaymentError(exc.message) from exc
    if reservation.lines.filter(pk__in=line_ids).exists():
        # The refund is recorded, and the booking changed under it (cancelled in full in
        # another tab): the payment's history says so, for staff.
        raise PaymentError(_("Your refund was sent, but the tickets could not be cancelled. Please contact us."))
    return quote


def payment_refund_by_staff(
    *,
    payment: Payment,
    amount: int,
    reason: str,
    actor,
    cancel_booking: bool = False,
    refund_holder: str = "",
    refund_bank: str = "",
    refund_account: str = "",
    token: str = "",
    now: dt.datetime | None = None,
) -> Payment:
    """Staff refund, full or partial, with a reason; optionally cancel the booking too.

    Refunding all that is left of a booking still to come must cancel it: a ticket that
    stays valid with its money returned is a free ticket nobody meant to give.
    The customer is told either way: a cancellation, or a refund on a booking that stands.
    """
    now = now or timezone.now()
    reservation = payment.reservation
    if payment.needs_refund and cancel_booking:
        # Money that must go back (paid twice, or after the seats were gone): the booking,
        # if it stands, is paid by another payment, and stays.
        raise PaymentError(
            _(
                "This payment is money to send back, not what pays for the booking: refund it without "
                "cancelling. To cancel the booking, refund the payment that paid for it."
            )
        )
    stays_valid = reservation.status == Reservation.Status.CONFIRMED and not cancel_booking
    refunded = payment_refund(
        payment=payment,
        amount=amount,
        reason=reason,
        refund_holder=refund_holder,
        refund_bank=refund_bank,
        refund_account=refund_account,
        token=token,
        keep_some=stays_valid and reservation.performance.starts_at > now and not payment.needs_refund,
    )
    cancelled = cancel_booking and reservation.status == Reservation.Status.CONFIRMED
    if cancelled:
        reservation_services.reservation_cancel(reservation=reservation, actor=actor, reason=reason)
    notification_queue(
        kind=Notification.Kind.BOOKING_CANCELLED if cancelled else Notification.Kind.REFUNDED,
        reservation=reservation,
        payment=refunded,
        context={"refund": amount},
    )
    return refunded


def booking_cancel_refunded(*, reservation: Reservation, actor, reason: str = "") -> None:
    """Staff cancel a confirmed booking whose money has all been refunded already (a
    refund made without cancelling). A booking with money still paid is cancelled by
    refunding it (payment_refund_by_staff with cancel_booking), never here."""
    if reservation.status != Reservation.Status.CONFIRMED:
        raise PaymentError(_("Only a confirmed booking can be cancelled."))
    if any(payment.refundable_amount for payment in reservation.payments.filter(status=Payment.Status.PAID)):
        raise PaymentError(
            _("Booking %(code)s still has money paid: refund it from its payment, ticking “Also cancel”.")
            % {"code": reservation.code}
        )
    try:
        reservation_services.reservation_cancel(
            reservation=reservation, actor=actor, reason=reason or gettext_noop("cancelled by staff after a refund")
        )
    except reservation_services.InvalidTransition as exc:
        raise PaymentError(exc.message) from exc
    # The payments that paid for the booking: not attempts left unpaid, nor money sent
    # back for another reason (paid twice, too late), which has its own failure reason.
    paid = list(reservation.payments.filter(paid_at__isnull=False, failure_reason="").order_by("-paid_at"))
    notification_queue(
        kind=Notification.Kind.BOOKING_CANCELLED,
        reservation=reservation,
        payment=paid[0] if paid else None,
        # Refunded earlier, when staff refunded without cancelling; said again with the cancellation.
        context={"refund": sum(payment.refunded_amount for payment in paid), "fee": 0},
    )


# --- Letting a hold go ---------------------------------------------------------


def hold_release(*, reservation: Reservation, actor, reason: str, now: dt.datetime | None = None) -> Reservation:
    """Let a hold go (the customer, staff, or a cancelled performance) and withdraw the
    virtual accounts still waiting for its deposit, so that no money is sent for seats
    that are no longer the customer's. Raises ReservationError as reservation_release
    does; the accounts are withdrawn then too (a hold released or expired before, whose
    withdrawal I'mport refused at the time, gets another one).
    """
    try:
        released = reservation_services.reservation_release(
            reservation=reservation, actor=actor, reason=reason, now=now
        )
    except reservation_services.ReservationError:
        if not Reservation.objects.filter(pk=reservation.pk, status__in=Reservation.LIVE_HOLD_STATUSES).exists():
            vbanks_withdraw(reservation=reservation, reason=reason)
        raise
    vbanks_withdraw(reservation=released, reason=reason)
    return released


def _withdraw_after_commit(reservation: Reservation, *, reason: str, why: str = "") -> None:
    # After the sync's transaction: no row stays locked while I'mport is asked.
    transaction.on_commit(lambda: vbanks_withdraw(reservation=reservation, reason=reason, why=why), robust=True)


def vbanks_withdraw(*, reservation: Reservation, reason: str, why: str = "") -> int:
    """Withdraw the reservation's virtual accounts still waiting for a deposit (its
    seats were let go, or another payment paid for them); how many were withdrawn.

    A withdrawal I'mport refuses (the deposit came this instant) or cannot be asked
    is logged and left: a deposit that arrives for a released hold is refunded.
    """
    open_accounts = list(Payment.objects.filter(reservation=reservation, status=Payment.Status.AWAITING_DEPOSIT))
    if not open_accounts:
        return 0
    if why:
        pass  # the caller knows better (the total changed)
    elif Reservation.objects.filter(pk=reservation.pk, status=Reservation.Status.CONFIRMED).exists():
        why = _("The virtual account was withdrawn: the booking was paid another way.")
    else:
        why = _("The virtual account was withdrawn: the seats were released.")
    withdrawn = 0
    for payment in open_accounts:
        try:
            remote = get_gateway().revoke_vbank(imp_uid=payment.imp_uid)
        except GatewayError as exc:
            _log(payment, "vbank_revoke_failed", str(exc))
            logger.warning("could not withdraw the virtual account of %s: %s", payment.merchant_uid, exc)
            continue
        withdrawn += Payment.objects.filter(pk=payment.pk, status=Payment.Status.AWAITING_DEPOSIT).update(
            status=Payment.Status.CANCELLED, failure_reason=why, gateway_payload=remote.raw, updated_at=timezone.now()
        )
        _log(payment, "vbank_revoked", reason)
    return withdrawn


# --- A cancelled performance --------------------------------------------------


@dataclass
class PerformanceCancellation:
    holds_released: int
    refunds_queued: int  # card and bank transfer bookings, refunded in the background
    refund_total: int
    waiting_for_account: int  # virtual account bookings: the customer names the account


def performance_cancel(*, performance: Performance, actor, now: dt.datetime | None = None) -> PerformanceCancellation:
    """Call a performance off: nothing more is sold or paid for it, live holds are let
    go, and every confirmed booking is refunded in full, one background task each (a
    refund is a call to I'mport). Virtual account payments can only be refunded to an
    account the customer names, so those customers are emailed to cancel from their
    booking, in full.

    Safe to run again: it finishes whatever is left (reconciliation does the same for
    refunds whose task gave up).
    """
    from . import tasks

    now = now or timezone.now()
    Performance.objects.filter(pk=performance.pk).exclude(status=Performance.Status.CANCELLED).update(
        status=Performance.Status.CANCELLED
    )
    performance.status = Performance.Status.CANCELLED
    released = 0
    for reservation in Reservation.objects.filter(
        performance=performance, status__in=Reservation.LIVE_HOLD_STATUSES
    ).order_by("pk"):
        try:
            hold_release(
                reservation=reservation, actor=actor, reason=reservation_services.PERFORMANCE_CANCELLED, now=now
            )
        except reservation_services.ReservationError:
            continue  # had expired (now recorded so), or was paid this instant: refunded below or by the sync
        released += 1
    to_refund, by_account = _refund_plan(performance)
    for reservation, payment in by_account:
        # Asked for the account to refund to (once, however often this runs).
        notification_queue(kind=Notification.Kind.PERFORMANCE_CANCELLED, reservation=reservation, payment=payment)
    for reservation, _payment in to_refund:
        enqueue(tasks.refund_cancelled_booking, reservation.pk, getattr(actor, "pk", None))
    summary = PerformanceCancellation(released, len(to_refund), _still_paid(to_refund), len(by_account))
    logger.info("performance %s cancelled by %s: %s", performance.pk, actor, summary)
    return summary


def performance_cancel_preview(*, performance: Performance, now: dt.datetime | None = None) -> PerformanceCancellation:
    """What performance_cancel would do now (the staff's confirmation page)."""
    now = now or timezone.now()
    holds = Reservation.objects.filter(
        performance=performance, status__in=Reservation.LIVE_HOLD_STATUSES, expires_at__gt=now
    ).count()
    to_refund, by_account = _refund_plan(performance)
    return PerformanceCancellation(holds, len(to_refund), _still_paid(to_refund), len(by_account))


def _refund_plan(performance: Performance):
    """The confirmed bookings with their paid payment (or None): those refunded for the
    customer, and those paid by virtual account, whose customer names the account."""
    bookings = Reservation.objects.filter(performance=performance, status=Reservation.Status.CONFIRMED).order_by("pk")
    paid = {
        payment.reservation_id: payment
        for payment in Payment.objects.filter(reservation__in=bookings, status=Payment.Status.PAID)
    }
    to_refund, by_account = [], []
    for reservation in bookings:
        payment = paid.get(reservation.pk)
        vbank = payment is not None and payment.method == Payment.Method.VBANK
        (by_account if vbank else to_refund).append((reservation, payment))
    return to_refund, by_account


def _still_paid(bookings) -> int:
    return sum(payment.amount - payment.refunded_amount for _reservation, payment in bookings if payment)


def booking_refund_cancelled_performance(*, reservation_id: int, actor=None) -> bool:
    """Refund and cancel one booking of a cancelled performance; False if there was
    nothing to do (done already, a virtual account, or the performance is on again).
    Raises RefundNotSent while I'mport does not answer (the task tries again)."""
    reservation = Reservation.objects.select_related("performance").filter(pk=reservation_id).first()
    if (
        reservation is None
        or reservation.status != Reservation.Status.CONFIRMED
        or reservation.performance.status != Performance.Status.CANCELLED
    ):
        return False
    paid = reservation.payments.filter(status=Payment.Status.PAID).first()
    if paid is not None and paid.method == Payment.Method.VBANK:
        return False
    if paid is None:
        # Nothing was paid (a free ticket, or issued by staff): cancelled, nothing to send back.
        with transaction.atomic():
            reservation_services.reservation_cancel(
                reservation=reservation, actor=actor, reason=reservation_services.PERFORMANCE_CANCELLED
            )
            notification_queue(kind=Notification.Kind.BOOKING_CANCELLED, reservation=reservation, context={"refund": 0})
        return True
    try:
        booking_cancel(reservation=reservation, actor=actor, reason=reservation_services.PERFORMANCE_CANCELLED)
    except RefundNotSent:
        raise
    except PaymentError as exc:
        # Refused: refunded meanwhile by another run or an attempt whose answer was
        # lost (the checksum refuses the same money twice), or refused outright. What
        # I'mport has is the truth: the sync records a refund made and cancels the booking.
        logger.warning("refund of %s for a cancelled performance: %s", reservation.code, exc.message)
        if paid.imp_uid:
            try:
                payment_sync(imp_uid=paid.imp_uid, source="reconcile")
            except GatewayError as sync_exc:
                raise RefundNotSent(sync_exc.message) from sync_exc
        reservation.refresh_from_db()
        return reservation.status == Reservation.Status.CANCELLED
    return True


# --- Reconciliation -----------------------------------------------------------


def payments_reconcile(*, older_than: dt.timedelta = dt.timedelta(minutes=2), now=None) -> int:
    """Catch up on payments whose webhook never came, and on refunds still owed."""
    now = now or timezone.now()
    synced = 0
    for payment in Payment.objects.filter(needs_refund=True).select_related("reservation"):
        _refund_owed(payment)
    # Bookings of cancelled performances still standing (their task gave up, or the
    # broker was down), except those whose customer names the account to refund to.
    for reservation_id in (
        Reservation.objects.filter(
            status=Reservation.Status.CONFIRMED, performance__status=Performance.Status.CANCELLED
        )
        .exclude(
            Exists(
                Payment.objects.filter(
                    reservation=OuterRef("pk"), status=Payment.Status.PAID, method=Payment.Method.VBANK
                )
            )
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:200]
    ):
        try:
            booking_refund_cancelled_performance(reservation_id=reservation_id)
        except RefundNotSent:
            break  # I'mport is down: the next run
    pending = (
        Payment.objects.filter(
            status__in=[Payment.Status.PREPARED, Payment.Status.AWAITING_DEPOSIT], created_at__lte=now - older_than
        )
        .select_related("reservation")
        .order_by("created_at")[:200]
    )
    for payment in pending:
        try:
            remote = get_gateway().find_by_merchant_uid(merchant_uid=payment.merchant_uid)
        except PaymentNotFound:
            if payment.reservation.is_expired(now) and payment.status == Payment.Status.PREPARED:
                Payment.objects.filter(pk=payment.pk, status=Payment.Status.PREPARED).update(
                    status=Payment.Status.FAILED, failure_reason="abandoned: never paid"
                )
            continue
        except GatewayError as exc:
            logger.warning("reconciliation stopped: %s", exc)
            break
        try:
            _sync_remote(remote, "reconcile")  # I'mport has just answered: no second lookup
            synced += 1
        except GatewayError as exc:
            logger.warning("reconciliation of %s failed: %s", payment.merchant_uid, exc)
    # Cancellations whose refund went unanswered or unrecorded: a sync records a refund
    # I'mport shows and finishes what it was for (_finish_unanswered_cancel).
    since = now - dt.timedelta(days=7)
    for payment, attempts in _unfinished_cancels(now - older_than, since=since).items():
        try:
            payment_sync(imp_uid=payment.imp_uid, source="reconcile")
            synced += 1
        except GatewayError as exc:
            logger.warning("reconciliation of %s failed: %s", payment.merchant_uid, exc)
            break
        # I'mport answers at once: a refund it does not show now was never made.
        for attempt in sorted(attempts - _ended_attempts(payment.events.all())):
            _log(payment, "refund_not_made", attempt=attempt)
    return synced


# What ends a refund attempt for good; any other attempt may yet show up at I'mport.
ATTEMPT_ENDS = ["refunded", "refund_refused", "cancel_finished", "refund_purpose_failed", "refund_not_made"]


def _ended_attempts(events) -> set[str]:
    """The ids of the refund attempts among `events` that are over for good."""
    ends = events.filter(kind__in=ATTEMPT_ENDS, data__has_key="attempt")
    return set(ends.values_list("data__attempt", flat=True))


def _unfinished_cancels(before: dt.datetime, *, since: dt.datetime) -> dict[Payment, set[str]]:
    """Paid payments with cancellation refunds asked for before `before` and never
    seen through: unanswered, or their request died before recording them."""
    asked = PaymentEvent.objects.filter(
        kind="refund_requested",
        data__has_key="purpose",
        at__lte=before,
        at__gte=since,
        payment__status=Payment.Status.PAID,
    ).values_list("payment_id", "data__attempt")
    ended = _ended_attempts(PaymentEvent.objects.filter(at__gte=since))
    open_attempts: dict[int, set[str]] = {}
    for payment_id, attempt in asked:
        if attempt not in ended:
            open_attempts.setdefault(payment_id, set()).add(attempt)
    payments = Payment.objects.filter(pk__in=open_attempts).exclude(imp_uid="").order_by("pk")[:100]
    return {payment: open_attempts[payment.pk] for payment in payments}


# Fields of I'mport's payment object that identify the buyer; amounts, ids and dates
# stay (accounting records must be kept), these go when the customer leaves.
BUYER_FIELDS = ("buyer_name", "buyer_email", "buyer_tel", "buyer_addr", "buyer_postcode", "custom_data", "card_number")


def payments_erase_personal_data(*, user) -> int:
    """Strip the buyer's personal data from the payment records of `user`."""
    count = 0
    for payment in Payment.objects.filter(reservation__user=user).select_for_update():
        payload = {k: ("" if k in BUYER_FIELDS else v) for k, v in payment.gateway_payload.items()}
        if payload != payment.gateway_payload:
            payment.gateway_payload = payload
            payment.save(update_fields=["gateway_payload", "updated_at"])
            count += 1
    PaymentEvent.objects.filter(payment__reservation__user=user, kind="webhook").update(data={})
    return count
