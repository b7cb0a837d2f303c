"""Exactly once under concurrency, on the real database.

Each thread has its own connection, so these are concurrent transactions: racing
INSERTs of the same unique key on MariaDB, queued writers on SQLite. Two beat
processes running the reminder job at once, two workers given the same send, a
worker that died mid-send: one email each time. A canary runs the naive
"was it sent? no: send it" version under the same harness and must send duplicates,
proving the harness can catch the race.
"""

import datetime as dt
import threading
import uuid

import pytest
from django.core import mail
from django.utils import timezone

from events.tests.factories import UserFactory
from notifications import services
from notifications.models import Notification
from notifications.services import (
    SENDING_LEASE,
    notification_send,
    notifications_send_pending,
    payment_reminders_queue,
)
from ticketing.testing import race as shared_race

from .conftest import A1, A2, A3, vbank_booking

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 8
H = dt.timedelta(hours=1)


def race(worker, count: int = THREADS):
    return shared_race(worker, count)


@pytest.fixture
def deposits(performance, booked_at):
    """Three customers' virtual accounts, all due in 30 hours."""
    due = booked_at + 30 * H
    return [
        vbank_booking(UserFactory(preferred_language="en"), performance, seat, booked_at=booked_at, due=due)
        for seat in (A1, A2, A3)
    ]


def test_beat_processes_racing_send_each_reminder_once(deposits, mailoutbox):
    due = deposits[0][1].vbank_due
    results = race(lambda i: payment_reminders_queue(now=due - 3 * H))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(results) == len(deposits)  # each reminder claimed by exactly one of them
    assert sorted(m.to[0] for m in mailoutbox) == sorted(r.user.email for r, _ in deposits)
    assert Notification.objects.filter(kind="payment_reminder").count() == len(deposits)
    assert set(Notification.objects.values_list("status", "attempts")) == {("sent", 1)}


def test_racing_inserts_of_one_key_make_one_claim(deposits):
    """The primitive under every reminder: the INSERT of a unique key is the claim."""
    reservation, payment = deposits[0]

    def claim(i):
        return services._claim(
            user_id=reservation.user_id,
            reservation=reservation,
            payment=payment,
            kind="payment_reminder",
            dedupe_key=f"payment_reminder:{reservation.pk}:race",
        )

    results = race(claim)
    assert not [r for r in results if isinstance(r, Exception)], results
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and results.count(None) == THREADS - 1
    assert Notification.objects.get().pk == winners[0].pk


def test_workers_given_the_same_send_send_it_once(deposits, mailoutbox):
    reservation, payment = deposits[0]
    notification = Notification.objects.create(
        user=reservation.user, reservation=reservation, payment=payment, kind="awaiting_deposit", dedupe_key="d:1"
    )
    results = race(lambda i: notification_send(notification_id=notification.pk).status)
    assert sorted(results) == ["not_claimed"] * (THREADS - 1) + ["sent"], results
    assert len(mailoutbox) == 1
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("sent", 1)


def test_a_send_abandoned_by_a_dead_worker_is_finished_once_by_a_later_run(deposits, mailoutbox):
    reservation, payment = deposits[0]
    now = timezone.now()
    # A worker claimed this and died before sending (or before recording it).
    abandoned = Notification.objects.create(
        user=reservation.user,
        reservation=reservation,
        payment=payment,
        kind="awaiting_deposit",
        dedupe_key="d:abandoned",
        status="sending",
        attempts=1,
        claimed_at=now - SENDING_LEASE - dt.timedelta(seconds=1),
    )
    # Another is being sent right now by a live worker: not to be touched.
    busy = Notification.objects.create(
        user=reservation.user,
        reservation=reservation,
        kind="booking_confirmed",
        dedupe_key="d:busy",
        status="sending",
        attempts=1,
        claimed_at=now - dt.timedelta(minutes=1),
    )
    # And one that was sent: never again.
    done = Notification.objects.create(
        user=reservation.user,
        reservation=reservation,
        kind="booking_confirmed",
        dedupe_key="d:done",
        status="sent",
        attempts=1,
        sent_at=now - H,
        created_at=now - H,
        next_attempt_at=now - H,
    )
    results = race(lambda i: notifications_send_pending(now=now))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(results) == 1 and len(mailoutbox) == 1
    abandoned.refresh_from_db()
    busy.refresh_from_db()
    done.refresh_from_db()
    assert (abandoned.status, abandoned.attempts) == ("sent", 2)
    assert busy.status == "sending" and done.status == "sent" and done.attempts == 1


def test_canary_check_then_send_without_the_claim_sends_duplicates(deposits):
    """Without the unique key and the compare-and-set, everyone sees "not sent yet"."""
    reservation, _payment = deposits[0]
    mail.outbox = []
    barrier = threading.Barrier(THREADS, timeout=30)
    key = f"payment_reminder:{reservation.pk}:naive"

    def naive_remind(i):
        already = Notification.objects.filter(dedupe_key__startswith=key).exists()  # read
        barrier.wait()  # everyone has read before anyone writes
        if already:  # check
            return False
        mail.send_mail("Reminder", "Please pay", None, [reservation.user.email])  # send
        Notification.objects.create(  # record, under a key of its own: no claim
            user=reservation.user, reservation=reservation, kind="payment_reminder", dedupe_key=f"{key}:{uuid.uuid4()}"
        )
        return True

    results = race(naive_remind)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len(mail.outbox) > 1, "the harness failed to produce a race; the tests above would prove nothing"
