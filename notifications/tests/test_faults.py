"""When things go wrong: bad addresses, a mail server that is down or refuses,
Redis down while a customer is paying, a booking deleted while its email waits."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.services import user_delete
from notifications import services, tasks
from notifications.models import Notification
from notifications.services import (
    CATCH_UP_AFTER,
    MAX_ATTEMPTS,
    backoff,
    notification_queue,
    notification_resend,
    notification_send,
    notifications_send_pending,
)
from payments.models import Payment
from payments.tests.test_flow import checkout, start
from reservations.models import Reservation
from reservations.services import reservation_cancel, reservation_confirm
from reservations.tests.factories import hold

from .conftest import A1, celery_broker, free_port

pytestmark = pytest.mark.django_db

Kind = Notification.Kind


@pytest.fixture
def booking(alice, performance):
    reservation = hold(alice, performance, A1)
    Payment.objects.create(reservation=reservation, amount=reservation.total_amount, method="card", status="paid")
    return reservation_confirm(reservation=reservation)


def queue(reservation, kind=Kind.BOOKING_CONFIRMED) -> Notification:
    """Decide on a message without sending it (as if its task has not run yet)."""
    return notification_queue(kind=kind, reservation=reservation)


def refreshed(notification: Notification) -> Notification:
    notification.refresh_from_db()
    return notification


# --- Addresses ------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["not-an-address", "deleted-7@deleted.invalid", ""])
def test_an_invalid_address_fails_at_once_and_is_not_retried(booking, address, mailoutbox):
    type(booking.user).objects.filter(pk=booking.user_id).update(email=address)
    notification = queue(booking)
    assert notification_send(notification_id=notification.pk).status == "failed"
    notification = refreshed(notification)
    assert notification.attempts == 1 and notification.error.startswith("invalid email address")
    later = timezone.now() + dt.timedelta(days=1)
    assert notifications_send_pending(now=later) == 0
    assert refreshed(notification).attempts == 1 and mailoutbox == []


def test_an_address_the_mail_server_refuses_fails_at_once(booking, smtp_settings):
    type(booking.user).objects.filter(pk=booking.user_id).update(email="bounce@example.com")
    notification = queue(booking)
    assert notification_send(notification_id=notification.pk).status == "failed"
    notification = refreshed(notification)
    assert "550" in notification.error and notification.attempts == 1
    assert notifications_send_pending(now=timezone.now() + dt.timedelta(days=1)) == 0
    assert smtp_settings.messages == []


def test_a_mailbox_busy_for_now_is_tried_again(booking, smtp_settings):
    type(booking.user).objects.filter(pk=booking.user_id).update(email="busy@example.com")
    notification = queue(booking)
    result = notification_send(notification_id=notification.pk)
    assert (result.status, result.retry_in) == ("retry", backoff(1))
    assert refreshed(notification).status == "queued" and "451" in notification.error


# --- The mail server is down ----------------------------------------------------------


def test_smtp_down_backs_off_then_gives_up_and_logs_it(booking, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    now = timezone.now()
    notification = queue(booking)
    result = notification_send(notification_id=notification.pk, now=now)
    assert result.status == "retry" and result.retry_in == dt.timedelta(minutes=1)
    notification = refreshed(notification)
    assert notification.status == "queued" and notification.next_attempt_at == now + dt.timedelta(minutes=1)
    assert "Connection" in notification.error or "refused" in notification.error

    waits = []
    for attempt in range(2, MAX_ATTEMPTS + 1):
        # Not before its backoff (plus the grace left to the task's own retry) is over.
        assert (
            notifications_send_pending(now=notification.next_attempt_at + CATCH_UP_AFTER - dt.timedelta(seconds=1)) == 0
        )
        assert refreshed(notification).attempts == attempt - 1
        now = notification.next_attempt_at + CATCH_UP_AFTER
        notifications_send_pending(now=now)
        notification = refreshed(notification)
        assert notification.attempts == attempt
        if notification.status == "queued":
            waits.append(notification.next_attempt_at - now)
    assert waits == [backoff(n) for n in range(2, MAX_ATTEMPTS)]  # 2, 4, 8, 16 minutes
    assert notification.status == "failed"
    # Given up: never tried again.
    assert notifications_send_pending(now=now + dt.timedelta(days=1)) == 0
    assert refreshed(notification).attempts == MAX_ATTEMPTS


def test_staff_can_resend_once_the_server_is_back(booking, smtp_settings, django_capture_on_commit_callbacks):
    notification = queue(booking)
    Notification.objects.filter(pk=notification.pk).update(status="failed", error="SMTP down", attempts=MAX_ATTEMPTS)
    with django_capture_on_commit_callbacks(execute=True):
        copy = notification_resend(notification=notification)
    (message,) = smtp_settings.wait_for(1)
    assert refreshed(copy).status == "sent" and copy.dedupe_key.startswith(f"resend:{notification.pk}:")
    assert refreshed(notification).status == "failed"  # the log keeps what happened
    assert message["To"] == booking.user.email and booking.code in message["Subject"]
    assert message.get_body(("html",)) is not None and message.get_body(("plain",)) is not None


def test_the_task_retries_a_temporary_failure_with_backoff(booking, settings, monkeypatch):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2
    notification = queue(booking)
    retried = []

    class Retry(Exception):
        pass

    def retry(countdown):
        retried.append(countdown)
        return Retry()

    monkeypatch.setattr(tasks.send_notification, "retry", retry)
    with pytest.raises(Retry):
        tasks.send_notification.run(notification.pk)  # as a worker runs it, not eagerly
    assert retried == [60]
    # Eagerly (no broker: the embedded default) it does not retry inside the request;
    # the row waits for the periodic catch-up.
    tasks.send_notification.apply(args=[notification.pk])
    assert retried == [60] and refreshed(notification).attempts == 2


# --- Redis is down while a customer pays ----------------------------------------------


@pytest.fixture
def broker_down():
    """Tasks go to a Redis that is not there (nothing listens on the port)."""
    with celery_broker(f"redis://127.0.0.1:{free_port()}/0"):
        yield


def test_a_payment_still_confirms_with_redis_down_and_its_email_follows(
    client, fake_iamport, alice, performance, broker_down, mailoutbox, django_capture_on_commit_callbacks, caplog
):
    reservation = hold(alice, performance, A1)
    payment = start(reservation)
    rsp = checkout(fake_iamport, payment)
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("payments:complete"),
            {"imp_uid": rsp["imp_uid"], "merchant_uid": payment.merchant_uid},
            content_type="application/json",
        )
    assert response.status_code == 200 and response.json()["ok"] is True
    reservation.refresh_from_db()
    assert reservation.status == "confirmed"
    assert "could not queue notifications.tasks.send_notification" in caplog.text
    notification = Notification.objects.get(reservation=reservation)
    assert notification.status == "queued" and mailoutbox == []

    # The webhook answers too (it queues the sync; reconciliation would catch it).
    webhook = client.post(reverse("payments:webhook"), {"imp_uid": rsp["imp_uid"], "status": "paid"})
    assert webhook.status_code == 200


def test_what_redis_lost_is_sent_by_the_catch_up(booking, mailoutbox):
    notification = queue(booking)  # decided, but its task never ran
    assert notifications_send_pending(now=timezone.now()) == 0  # give the task its chance first
    assert notifications_send_pending(now=timezone.now() + CATCH_UP_AFTER) == 1
    assert refreshed(notification).status == "sent" and len(mailoutbox) == 1
    assert notifications_send_pending(now=timezone.now() + dt.timedelta(days=1)) == 0


# --- Gone while queued ----------------------------------------------------------------


def test_a_booking_deleted_while_its_email_waits_ends_cleanly(alice, performance, mailoutbox):
    reservation = hold(alice, performance, A1)
    Payment.objects.create(reservation=reservation, amount=1000, method="card")
    notification = queue(reservation, kind=Kind.BOOKING_EXPIRED)
    Payment.objects.filter(reservation=reservation).delete()
    Reservation.objects.filter(pk=reservation.pk).delete()
    tasks.send_notification.apply(args=[notification.pk]).get()
    notification = refreshed(notification)
    assert (notification.status, notification.error) == ("skipped", "the booking no longer exists")
    assert notification.reservation is None and mailoutbox == []


def test_a_log_row_deleted_while_its_task_waits_ends_cleanly(booking, mailoutbox):
    notification = queue(booking)
    Notification.objects.filter(pk=notification.pk).delete()
    assert tasks.send_notification.apply(args=[notification.pk]).successful()
    assert mailoutbox == []


def test_a_rendering_bug_is_logged_not_retried_forever(booking, monkeypatch, mailoutbox):
    def broken(*args, **kwargs):
        raise KeyError("no such variable")

    monkeypatch.setattr(services, "_render", broken)
    notification = queue(booking)
    assert notification_send(notification_id=notification.pk).status == "failed"
    assert refreshed(notification).error.startswith("could not render")
    assert notifications_send_pending(now=timezone.now() + dt.timedelta(days=1)) == 0


def test_a_deleted_account_gets_nothing_more_and_the_log_forgets_the_address(booking, mailoutbox):
    sent = queue(booking)
    notification_send(notification_id=sent.pk)
    waiting = queue(booking, kind=Kind.PERFORMANCE_TOMORROW)
    reservation_cancel(reservation=booking, actor=booking.user)  # a paid booking must go first
    Payment.objects.filter(reservation=booking).update(status="cancelled")
    user_delete(user=booking.user)
    assert refreshed(sent).recipient == "" and refreshed(sent).status == "sent"
    assert (refreshed(waiting).status, waiting.error) == ("skipped", "account deleted")
    assert notification_send(notification_id=waiting.pk).status == "not_claimed"
