"""Customer emails: deciding on them, claiming them, and sending each exactly once.

The protocol, in three steps:

1. Decide and claim. A message is a Notification row with a unique `dedupe_key`
   ("booking_confirmed:42", "payment_reminder:42:<deadline>:<offset>"), and the INSERT
   of that row is the claim on the message: two beat processes, two workers or a
   retried task deciding the same reminder make one row, and the loser gets an
   IntegrityError that means "someone has it". Messages about something that just
   happened to a booking (`notification_queue`) are inserted inside the transaction
   that made it happen, an outbox: if the change rolls back, so does the message; if
   it commits, the message is on record even if Redis is down. Reminders are inserted
   by the periodic jobs, each in a transaction of its own.
2. Send. After commit, one task per row calls `notification_send`, which moves the row
   from queued to sending with a compare-and-set UPDATE: only the sender whose UPDATE
   changed the row sends, and a row that says sent is never sent again.
3. Recover. A row left queued (the broker was down, the task was lost) or sending (the
   worker died mid-send) is picked up by `notifications_send_pending` every few
   minutes; a sending row only after a lease long enough that its first sender cannot
   still be at work. Temporary failures (mail server down) back off and give up after
   MAX_ATTEMPTS; permanent ones (an address the server refuses) fail at once.

One window no protocol over SMTP can close: a worker that dies after the mail server
accepted a message and before the row says sent. The lease then runs out and the
message goes again, with the same Message-ID, so mail clients can show the two as one.
"""

import datetime as dt
import logging
import smtplib
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from accounts.models import DELETED_EMAIL_DOMAIN
from payments.models import Payment
from reservations.models import Reservation
from ticketing.celery import enqueue
from ticketing.db import is_lock_conflict

from . import selectors
from .models import Notification

logger = logging.getLogger(__name__)

Kind = Notification.Kind
Status = Notification.Status

# Attempts per message before it is logged as failed. Attempt n waits 2**(n-1) minutes
# after the previous one (1, 2, 4, 8, 16): about half an hour of mail server outage.
MAX_ATTEMPTS = 6
# A row "sending" for longer than this was abandoned by a dead worker. Well above the
# email task's hard time limit, so a slow sender is never overtaken by a second one.
SENDING_LEASE = dt.timedelta(minutes=10)
# The task sent on commit normally runs within seconds; the catch-up job leaves a
# queued row alone for this long before deciding that task was lost.
CATCH_UP_AFTER = dt.timedelta(minutes=2)

# Addresses that can never receive mail (accounts.services.user_delete sets them).
UNDELIVERABLE_DOMAINS = (DELETED_EMAIL_DOMAIN,)

SUBJECTS = {
    Kind.BOOKING_CONFIRMED: _("[Ticketing] Booking %(code)s is confirmed"),
    Kind.AWAITING_DEPOSIT: _("[Ticketing] Deposit details for booking %(code)s"),
    Kind.PAYMENT_REMINDER: _("[Ticketing] Reminder: please pay for booking %(code)s by %(deadline)s"),
    Kind.BOOKING_EXPIRED: _("[Ticketing] Booking %(code)s has expired"),
    Kind.BOOKING_CANCELLED: _("[Ticketing] Booking %(code)s is cancelled"),
    Kind.REFUNDED: _("[Ticketing] Refund for booking %(code)s"),
    Kind.PERFORMANCE_TOMORROW: _("[Ticketing] Tomorrow: %(event)s"),
    Kind.PERFORMANCE_CANCELLED: _("[Ticketing] %(event)s is cancelled: your refund for booking %(code)s"),
    Kind.REFUND_ACCOUNT_NEEDED: _("[Ticketing] Where should we refund your deposit for booking %(code)s?"),
}


def backoff(attempts: int) -> dt.timedelta:
    """How long to wait after the `attempts`-th attempt failed for a temporary reason."""
    return dt.timedelta(minutes=2 ** max(attempts - 1, 0))


# --- Deciding and claiming ----------------------------------------------------------


def _default_key(kind: str, reservation: Reservation, payment: Payment | None) -> str:
    if kind in (Kind.AWAITING_DEPOSIT, Kind.REFUND_ACCOUNT_NEEDED):
        return f"{kind}:{payment.pk}"
    if kind == Kind.REFUNDED:
        # One message per refund: the amount refunded so far tells refunds apart.
        return f"{kind}:{payment.pk}:{payment.refunded_amount}"
    return f"{kind}:{reservation.pk}"


def _claim(**fields) -> Notification | None:
    """Insert the row that owns a message; None if someone else inserted it first."""
    in_outer_transaction = connection.in_atomic_block
    try:
        with transaction.atomic():
            return Notification.objects.create(**fields)
    except IntegrityError:
        if Notification.objects.filter(dedupe_key=fields["dedupe_key"]).exists():
            return None  # the claim is someone else's
        raise  # a real error (e.g. the booking vanished), not a lost race
    except OperationalError as exc:
        # MariaDB may pick one of several inserts racing for the same key as a deadlock
        # victim. On its own, that is a lost race like the one above (the next run
        # tries again if nobody won). Inside a caller's transaction InnoDB has rolled
        # the whole of it back, so the caller must hear about it.
        if is_lock_conflict(exc) and not in_outer_transaction:
            logger.info("claim of %s lost to a concurrent claim: %s", fields["dedupe_key"], exc)
            return None
        raise


def _queue(
    *,
    reservation: Reservation,
    kind: str,
    dedupe_key: str,
    now: dt.datetime,
    payment: Payment | None = None,
    context: dict | None = None,
) -> Notification | None:
    """Claim a message about `reservation` and send it once the transaction commits;
    None if it was claimed before."""
    notification = _claim(
        user_id=reservation.user_id,
        reservation=reservation,
        payment=payment,
        kind=kind,
        context=context or {},
        dedupe_key=dedupe_key,
        created_at=now,
        next_attempt_at=now,
    )
    if notification is not None:
        _send_after_commit(notification)
    return notification


def _send_after_commit(notification: Notification) -> None:
    from . import tasks

    enqueue(tasks.send_notification, notification.pk)


def notification_queue(
    *,
    kind: str,
    reservation: Reservation,
    payment: Payment | None = None,
    context: dict | None = None,
    now: dt.datetime | None = None,
) -> Notification | None:
    """Record a message about `reservation` in the caller's transaction; it is sent
    after the transaction commits. Returns None if the same message was
    recorded before, or it is not worth sending.

    Call it inside the transaction that changed the booking: then the message exists
    if and only if the change does.
    """
    now = now or timezone.now()
    if kind == Kind.BOOKING_EXPIRED and not reservation.payments.exists():
        # A seat hold that lapsed before the customer even started paying ended in
        # front of them, with a countdown; an email about it would be noise.
        return None
    return _queue(
        reservation=reservation,
        payment=payment,
        kind=kind,
        context=context,
        dedupe_key=_default_key(kind, reservation, payment),
        now=now,
    )


def payment_reminders_queue(*, now: dt.datetime | None = None) -> int:
    """Every few minutes: claim each payment reminder that is due, then send it.

    Each reminder has a key of its own (booking, deadline, offset), so however many
    times and in however many processes this runs, each is claimed once.
    """
    now = now or timezone.now()
    due_now = selectors.payment_reminders_due(now=now)
    # Most due reminders were claimed by an earlier run (a reminder stays "due" until
    # the next offset); skip those without an INSERT. Racing runs still meet at the
    # INSERT, which stays the claim.
    claimed = set(
        Notification.objects.filter(dedupe_key__in=[due.dedupe_key for due in due_now]).values_list(
            "dedupe_key", flat=True
        )
    )
    count = 0
    for due in due_now:
        if due.dedupe_key in claimed:
            continue
        queued = _queue(
            reservation=due.reservation,
            payment=due.payment,
            kind=Kind.PAYMENT_REMINDER,
            context={"deadline": due.deadline.isoformat(), "offset_seconds": int(due.offset.total_seconds())},
            dedupe_key=due.dedupe_key,
            now=now,
        )
        count += queued is not None
    return count


def performance_reminders_queue(*, now: dt.datetime | None = None) -> int:
    """Daily: remind everyone with a confirmed booking for a performance tomorrow
    (the calendar day after `now` in Korea, whatever time this runs)."""
    now = now or timezone.now()
    local = timezone.localtime(now)
    start = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time.min, tzinfo=local.tzinfo)
    end = start + dt.timedelta(days=1)
    reservations = (
        Reservation.objects.filter(
            status=Reservation.Status.CONFIRMED, performance__starts_at__gte=start, performance__starts_at__lt=end
        )
        .exclude(performance__status="cancelled")
        .order_by("pk")
    )
    count = 0
    for reservation in reservations:
        queued = _queue(
            reservation=reservation,
            kind=Kind.PERFORMANCE_TOMORROW,
            dedupe_key=f"{Kind.PERFORMANCE_TOMORROW}:{reservation.pk}",
            now=now,
        )
        count += queued is not None
    return count


def notification_resend(*, notification: Notification, now: dt.datetime | None = None) -> Notification:
    """Staff: send a message again. A new row, so the log keeps what happened to the first."""
    now = now or timezone.now()
    copy = Notification.objects.create(
        user_id=notification.user_id,
        reservation_id=notification.reservation_id,
        payment_id=notification.payment_id,
        kind=notification.kind,
        context=notification.context,
        dedupe_key=f"resend:{notification.pk}:{uuid.uuid4().hex[:12]}",
        created_at=now,
        next_attempt_at=now,
    )
    _send_after_commit(copy)
    return copy


def notifications_erase_personal_data(*, user) -> int:
    """The customer is leaving: nothing more is sent, and the log forgets the address."""
    Notification.objects.filter(user=user, status__in=[Status.QUEUED, Status.SENDING]).update(
        status=Status.SKIPPED, error="account deleted"
    )
    return Notification.objects.filter(user=user).exclude(recipient="").update(recipient="")


# --- Sending --------------------------------------------------------------------


@dataclass(frozen=True)
class SendResult:
    status: str  # sent, failed, skipped, retry, not_claimed
    retry_in: dt.timedelta | None = None


def notification_send(*, notification_id: int, now: dt.datetime | None = None) -> SendResult:
    """Send one message if it is still owed, and record what happened. Idempotent.

    `retry_in` is set when the attempt failed for a temporary reason (the caller
    may try again then); the row says queued again until it does.
    """
    now = now or timezone.now()
    # The compare-and-set that makes this sender the only one: queued, or sending
    # but abandoned (its sender died). Sent, failed and skipped rows never match.
    claimed = (
        Notification.objects.filter(pk=notification_id)
        .filter(Q(status=Status.QUEUED) | Q(status=Status.SENDING, claimed_at__lte=now - SENDING_LEASE))
        .update(status=Status.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    )
    if not claimed:
        return SendResult("not_claimed")  # done, being sent by someone else, or deleted
    notification = Notification.objects.select_related("user", "payment", "reservation__performance__event__venue").get(
        pk=notification_id
    )

    if notification.attempts > MAX_ATTEMPTS:
        return _finish(notification, Status.FAILED, f"gave up after {MAX_ATTEMPTS} attempts")
    reason = _not_needed(notification, now)
    if reason:
        return _finish(notification, Status.SKIPPED, reason)

    user = notification.user
    address = user.email or ""
    language = user.preferred_language if user.preferred_language in dict(settings.LANGUAGES) else ""
    language = language or settings.LANGUAGE_CODE
    # Written with the outcome, in the same compare-and-set: one UPDATE per send, and
    # none once the row has left "sending" (e.g. the account was erased meanwhile).
    recorded = {"recipient": address[:254], "language": language}
    try:
        validate_email(address)
        if address.rpartition("@")[2].lower() in UNDELIVERABLE_DOMAINS:
            raise ValidationError("undeliverable")
    except ValidationError:
        return _finish(notification, Status.FAILED, f"invalid email address: {address!r}", **recorded)

    try:
        with translation.override(language), timezone.override(settings.TIME_ZONE):
            subject, text, html = _render(notification, now)
    except Exception as exc:  # a bug, not the mail server: retrying would not help
        logger.exception("could not render notification %s", notification.pk)
        return _finish(notification, Status.FAILED, f"could not render: {exc}", **recorded)
    recorded["subject"] = subject[:200]

    message = EmailMultiAlternatives(subject, text, to=[address], headers={"Message-ID": _message_id(notification)})
    message.attach_alternative(html, "text/html")
    try:
        message.send()
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if _permanent(exc) or notification.attempts >= MAX_ATTEMPTS:
            logger.warning("notification %s to %s failed: %s", notification.pk, address, error)
            return _finish(notification, Status.FAILED, error, **recorded)
        delay = backoff(notification.attempts)
        logger.info("notification %s deferred %s: %s", notification.pk, delay, error)
        Notification.objects.filter(pk=notification.pk, status=Status.SENDING).update(
            status=Status.QUEUED, error=error[:500], next_attempt_at=now + delay, **recorded
        )
        return SendResult("retry", delay)
    return _finish(notification, Status.SENT, "", sent_at=timezone.now(), **recorded)


def notifications_send_pending(*, now: dt.datetime | None = None, limit: int = 100) -> int:
    """Every few minutes: send what was decided but never sent. Returns how many went.

    Queued rows whose task never ran (Redis was down when the booking changed) or whose
    backoff is over, and rows abandoned mid-send by a worker that died.
    """
    now = now or timezone.now()
    ids = list(
        Notification.objects.filter(
            Q(status=Status.QUEUED, next_attempt_at__lte=now - CATCH_UP_AFTER)
            | Q(status=Status.SENDING, claimed_at__lte=now - SENDING_LEASE)
        )
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    sent = 0
    for pk in ids:
        result = notification_send(notification_id=pk, now=now)
        if result.status == "sent":
            sent += 1
        elif result.status == "retry":
            break  # the mail server is down; the rest would fail the same way
    return sent


def _finish(notification: Notification, status: str, error: str, **fields) -> SendResult:
    Notification.objects.filter(pk=notification.pk, status=Status.SENDING).update(
        status=status, error=error[:500], **fields
    )
    return SendResult(status)


def _permanent(exc: Exception) -> bool:
    """Would the same message fail the same way again? (5xx answers, malformed addresses.)"""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _message in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return False  # our configuration; worth retrying while someone fixes it
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500
    # Connection refused or reset, timeouts, DNS: the server may be back soon.
    return isinstance(exc, ValueError | UnicodeError)


def _message_id(notification: Notification) -> str:
    # The same for every attempt at the same row: if a crash makes us send a message
    # twice, mail clients see one message twice, not two messages.
    domain = settings.SITE_URL.partition("://")[2].split("/")[0].split(":")[0] or "ticketing.local"
    return f"<notification-{notification.pk}@{domain}>"


def _not_needed(notification: Notification, now: dt.datetime) -> str:
    """Why this message should no longer go out, or "" if it should."""
    reservation = notification.reservation
    if reservation is None:
        return "the booking no longer exists"
    if notification.user.deleted_at is not None:
        return "the account was deleted"
    payment = notification.payment
    if notification.kind == Kind.PAYMENT_REMINDER:
        if reservation.status not in Reservation.LIVE_HOLD_STATUSES or reservation.is_expired(now):
            return f"the booking is {reservation.effective_status(now)}"
        if payment is not None and (
            payment.status != Payment.Status.AWAITING_DEPOSIT or (payment.vbank_due and payment.vbank_due <= now)
        ):
            return f"the payment is {payment.status}"
    elif notification.kind == Kind.AWAITING_DEPOSIT:
        if payment is None or payment.status != Payment.Status.AWAITING_DEPOSIT:
            return "the deposit is no longer awaited"
    elif notification.kind == Kind.PERFORMANCE_TOMORROW and (
        reservation.status != Reservation.Status.CONFIRMED
        or reservation.performance.starts_at <= now
        or reservation.performance.status == "cancelled"
    ):
        return "the booking is no longer going ahead"
    elif notification.kind == Kind.PERFORMANCE_CANCELLED and reservation.status != Reservation.Status.CONFIRMED:
        return "the booking was cancelled and refunded already"
    elif notification.kind == Kind.REFUND_ACCOUNT_NEEDED and (payment is None or not payment.needs_refund):
        return "the deposit was refunded already"
    return ""


# --- Rendering --------------------------------------------------------------------


def _render(notification: Notification, now: dt.datetime) -> tuple[str, str, str]:
    """Subject, plain text and HTML, in the active language."""
    reservation = notification.reservation
    performance = reservation.performance
    payment = notification.payment
    if payment is None and notification.kind in (Kind.BOOKING_CANCELLED, Kind.REFUNDED, Kind.BOOKING_CONFIRMED):
        payment = reservation.payments.filter(paid_at__isnull=False).order_by("-paid_at").first()
    deadline = _deadline(notification, reservation, payment)
    site = settings.SITE_URL
    context = {
        "notification": notification,
        "user": notification.user,
        "reservation": reservation,
        "performance": performance,
        "event": performance.event,
        "venue": performance.event.venue,
        "lines": list(reservation.lines.all()),
        "payment": payment,
        "deposit": payment if payment and payment.method == Payment.Method.VBANK and payment.vbank_num else None,
        "deadline": deadline,
        "hours_left": max(1, round((deadline - now).total_seconds() / 3600)) if deadline else None,
        "refund": notification.context.get("refund", payment.refunded_amount if payment else 0),
        "fee": notification.context.get("fee", 0),
        # Why money went back without the customer asking (e.g. the seats were gone).
        "reason": notification.context.get("reason", ""),
        "site_url": site,
        "booking_url": site + reservation.get_absolute_url(),
        "performance_url": site + performance.get_absolute_url(),
        "my_page_url": site + reverse("accounts:my_page"),
    }
    subject = str(SUBJECTS[notification.kind]) % {
        "code": reservation.code,
        "event": performance.event.title,
        "deadline": f"{timezone.localtime(deadline):%m/%d %H:%M}" if deadline else "",
    }
    context["subject"] = subject
    text = render_to_string(f"notifications/email/{notification.kind}.txt", context)
    html = render_to_string(f"notifications/email/{notification.kind}.html", context)
    return " ".join(subject.split()), text, html


def _deadline(notification: Notification, reservation: Reservation, payment: Payment | None) -> dt.datetime | None:
    if payment is not None and payment.vbank_due:
        return payment.vbank_due
    if notification.kind in (Kind.PAYMENT_REMINDER, Kind.AWAITING_DEPOSIT, Kind.BOOKING_EXPIRED):
        return reservation.expires_at
    return None
