"""Which reminders go out when: payment reminders before a deadline, and the day-before
reminder, at the boundaries, with the clock under the test's control."""

import datetime as dt

import pytest
from django.utils import timezone

from events.tests.factories import PerformanceFactory
from notifications.models import Notification
from notifications.selectors import payment_reminders_due, reminder_offset_due
from notifications.services import notification_send, payment_reminders_queue, performance_reminders_queue
from payments.models import Payment
from reservations.models import Reservation
from reservations.services import holds_expire, reservation_cancel, reservation_confirm, reservation_release
from reservations.tests.factories import hold

from .conftest import A1, A2, vbank_booking

pytestmark = pytest.mark.django_db

H = dt.timedelta(hours=1)
S = dt.timedelta(seconds=1)


@pytest.fixture
def remind(django_capture_on_commit_callbacks, mailoutbox):
    """Run the reminder job at `now` (sends happen on commit, eagerly); return new emails."""

    def run(now):
        before = len(mailoutbox)
        with django_capture_on_commit_callbacks(execute=True):
            payment_reminders_queue(now=now)
        return mailoutbox[before:]

    return run


@pytest.fixture
def deposit(alice, performance, booked_at):
    """A virtual account issued now, due in 30 hours: both default reminders apply."""
    return vbank_booking(alice, performance, A1, booked_at=booked_at, due=booked_at + 30 * H)


def reminders(reservation):
    return list(
        Notification.objects.filter(reservation=reservation, kind="payment_reminder").values_list(
            "context__offset_seconds", "status"
        )
    )


# --- The rule itself ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("booked_before", "now_before", "expected"),
    [
        (30 * H, 24 * H + S, None),  # not yet due
        (30 * H, 24 * H, 24 * H),  # due on the dot
        (30 * H, 3 * H + S, 24 * H),  # the 24-hour one is still the latest due
        (30 * H, 3 * H, 3 * H),
        (30 * H, 2 * H, 3 * H),  # missed the 24-hour one: only the latest is sent
        (30 * H, S, 3 * H),
        (30 * H, dt.timedelta(0), None),  # the deadline itself: too late
        (30 * H, -H, None),  # overdue
        (24 * H, 24 * H, None),  # booked exactly 24 h before: that reminder was never ahead
        (5 * H, 3 * H, 3 * H),  # booked 5 h before: only the 3-hour one
        (10 * dt.timedelta(minutes=1), S, None),  # a ten-minute hold: nothing
    ],
)
def test_which_offset_is_due(booked_before, now_before, expected):
    deadline = timezone.now()
    got = reminder_offset_due(
        deadline=deadline, booked_at=deadline - booked_before, now=deadline - now_before, offsets=(24 * H, 3 * H)
    )
    assert got == expected


# --- Virtual accounts ---------------------------------------------------------------


def test_nothing_before_the_first_reminder_is_due(deposit, remind):
    _reservation, payment = deposit
    assert remind(payment.vbank_due - 24 * H - S) == []
    assert not Notification.objects.exists()


def test_the_24_hour_reminder_goes_once_at_its_time(deposit, remind):
    reservation, payment = deposit
    sent = remind(payment.vbank_due - 24 * H)
    assert len(sent) == 1
    assert sent[0].to == ["alice@example.com"]
    assert reservation.code in sent[0].subject
    # Every later run of the job in the same window finds it claimed already.
    assert remind(payment.vbank_due - 24 * H + 5 * dt.timedelta(minutes=1)) == []
    assert remind(payment.vbank_due - 4 * H) == []
    assert reminders(reservation) == [(24 * 3600, "sent")]


def test_then_the_3_hour_reminder(deposit, remind):
    reservation, payment = deposit
    remind(payment.vbank_due - 24 * H)
    assert len(remind(payment.vbank_due - 3 * H)) == 1
    assert remind(payment.vbank_due - H) == []
    assert sorted(reminders(reservation)) == [(3 * 3600, "sent"), (24 * 3600, "sent")]


def test_a_missed_reminder_is_not_sent_late_beside_the_next(deposit, remind):
    reservation, payment = deposit
    # Beat was down from before the 24-hour mark until 2 hours before the deadline.
    assert len(remind(payment.vbank_due - 2 * H)) == 1
    assert reminders(reservation) == [(3 * 3600, "sent")]


def test_overdue_but_unpaid_gets_no_reminder(deposit, remind):
    reservation, payment = deposit
    # The deadline has passed and the sweeper has not run yet: still pending, no reminder.
    assert remind(payment.vbank_due) == []
    assert remind(payment.vbank_due + 10 * dt.timedelta(minutes=1)) == []
    reservation.refresh_from_db()
    assert reservation.status == "pending_payment"
    assert not Notification.objects.filter(kind="payment_reminder").exists()


def test_paid_bookings_get_no_reminder(deposit, remind):
    reservation, payment = deposit
    Payment.objects.filter(pk=payment.pk).update(status="paid", paid_at=timezone.now())
    reservation_confirm(reservation=reservation)
    assert remind(payment.vbank_due - 3 * H) == []


def test_cancelled_bookings_get_no_reminder(deposit, alice, remind):
    reservation, payment = deposit
    reservation_release(reservation=reservation, actor=alice, reason="changed my mind")
    Payment.objects.filter(pk=payment.pk).update(status="cancelled")
    assert remind(payment.vbank_due - 3 * H) == []


def test_an_account_no_longer_open_is_not_shown_in_the_reminder(deposit, remind):
    _reservation, payment = deposit
    Payment.objects.filter(pk=payment.pk).update(status="failed")
    # Nothing can be deposited into that account any more, but the booking still
    # waits for payment until its deadline (another method can pay it).
    sent = remind(payment.vbank_due - 3 * H)
    assert len(sent) == 1
    assert payment.vbank_num not in sent[0].body
    assert Notification.objects.get().payment is None


def test_expired_bookings_get_no_reminder(deposit, remind):
    reservation, payment = deposit
    holds_expire(now=payment.vbank_due + S)
    reservation.refresh_from_db()
    assert reservation.status == "expired"
    assert remind(payment.vbank_due - 3 * H) == []


def test_booked_close_to_the_deadline_only_the_offsets_still_ahead(alice, performance, booked_at, remind):
    reservation, payment = vbank_booking(alice, performance, A1, booked_at=booked_at, due=booked_at + 5 * H)
    assert remind(booked_at + H) == []  # would be "24 hours before" - long gone at booking
    assert len(remind(payment.vbank_due - 3 * H)) == 1
    assert reminders(reservation) == [(3 * 3600, "sent")]


def test_the_offsets_are_a_setting(deposit, remind, settings):
    _reservation, payment = deposit
    settings.TICKETING_PAYMENT_REMINDER_OFFSETS = (dt.timedelta(minutes=30),)
    assert remind(payment.vbank_due - 3 * H) == []
    assert len(remind(payment.vbank_due - dt.timedelta(minutes=30))) == 1
    settings.TICKETING_PAYMENT_REMINDER_OFFSETS = ()
    assert payment_reminders_due(now=payment.vbank_due - dt.timedelta(minutes=10)) == []


def test_a_new_deadline_gets_its_own_reminders(deposit, alice, remind):
    reservation, payment = deposit
    remind(payment.vbank_due - 3 * H)
    # The account expired unpaid and a new one was issued with a later deadline.
    Payment.objects.filter(pk=payment.pk).update(status="failed")
    later = payment.vbank_due + 30 * H
    Reservation.objects.filter(pk=reservation.pk).update(expires_at=later)
    Payment.objects.create(
        reservation=reservation,
        amount=payment.amount,
        method="vbank",
        status="awaiting_deposit",
        vbank_name="신한은행",
        vbank_num="56211102345678",
        vbank_holder="(주)티켓팅",
        vbank_due=later,
        created_at=payment.vbank_due - 2 * H,
    )
    sent = remind(later - 24 * H)
    assert len(sent) == 1 and "56211102345678" in sent[0].body
    assert Notification.objects.filter(kind="payment_reminder").count() == 2


# --- Holds with a long deadline, without a virtual account ----------------------------


def test_a_short_hold_is_never_reminded(alice, performance, booked_at, remind):
    reservation = hold(alice, performance, A1, now=booked_at)
    assert remind(reservation.expires_at - dt.timedelta(minutes=5)) == []
    assert remind(reservation.expires_at - S) == []


def test_a_long_hold_awaiting_payment_is_reminded(alice, performance, booked_at, remind):
    performance.event.hold_minutes = 48 * 60
    performance.event.save()
    alice.preferred_language = "en"
    alice.save()
    reservation = hold(alice, performance, A1, A2, now=booked_at)
    sent = remind(reservation.expires_at - 24 * H)
    assert len(sent) == 1
    assert "Amount to pay: ₩244,000" in sent[0].body and reservation.code in sent[0].body
    assert "Account number" not in sent[0].body  # no virtual account to show
    assert reminders(reservation) == [(24 * 3600, "sent")]


# --- Decided, then paid before the email went -----------------------------------------


def test_a_reminder_claimed_before_payment_is_not_sent_after_it(deposit, mailoutbox):
    reservation, payment = deposit
    payment_reminders_queue(now=payment.vbank_due - 3 * H)  # claimed; its send is queued
    notification = Notification.objects.get()
    assert notification.status == "queued"
    Payment.objects.filter(pk=payment.pk).update(status="paid", paid_at=timezone.now())
    reservation_confirm(reservation=reservation)
    assert notification_send(notification_id=notification.pk).status == "skipped"
    notification.refresh_from_db()
    assert (notification.status, notification.error) == ("skipped", "the booking is confirmed")
    assert mailoutbox == []


def test_the_email_says_how_long_is_left_when_it_is_sent(deposit, mailoutbox):
    _reservation, payment = deposit
    payment_reminders_queue(now=payment.vbank_due - 3 * H)
    notification = Notification.objects.get()
    notification_send(notification_id=notification.pk, now=payment.vbank_due - 3 * H + 10 * S)
    assert "About 3 hours are left" in mailoutbox[0].body


# --- The day before the performance ---------------------------------------------------


@pytest.fixture
def perform_tomorrow(django_capture_on_commit_callbacks, mailoutbox):
    def run(now):
        before = len(mailoutbox)
        with django_capture_on_commit_callbacks(execute=True):
            performance_reminders_queue(now=now)
        return mailoutbox[before:]

    return run


def kst(*args) -> dt.datetime:
    return timezone.make_aware(dt.datetime(*args), timezone.get_default_timezone())


def performance_at(event, layout, starts_at):
    return PerformanceFactory(
        event=event,
        layout=layout,
        starts_at=starts_at,
        sales_open_at=timezone.now() - dt.timedelta(days=1),
        sales_close_at=starts_at - dt.timedelta(hours=2),
    )


def test_the_day_before_reminder_covers_exactly_tomorrow_in_korea(alice, performance, perform_tomorrow):
    event, layout = performance.event, performance.layout
    today = timezone.localtime(timezone.now()).date() + dt.timedelta(days=5)
    morning = kst(today.year, today.month, today.day, 10, 0)
    tomorrow = today + dt.timedelta(days=1)
    day_after = today + dt.timedelta(days=2)
    shows = {
        "tonight": performance_at(event, layout, kst(today.year, today.month, today.day, 23, 30)),
        "midnight": performance_at(event, layout, kst(tomorrow.year, tomorrow.month, tomorrow.day, 0, 0)),
        "evening": performance_at(event, layout, kst(tomorrow.year, tomorrow.month, tomorrow.day, 19, 30)),
        "late": performance_at(event, layout, kst(tomorrow.year, tomorrow.month, tomorrow.day, 23, 59)),
        "day_after": performance_at(event, layout, kst(day_after.year, day_after.month, day_after.day, 0, 0)),
    }
    bookings = {name: reservation_confirm(reservation=hold(alice, show, A1)) for name, show in shows.items()}
    unpaid = hold(alice, shows["evening"], A2)

    sent = perform_tomorrow(morning)
    assert sorted(m.subject for m in sent) == sorted(f"[Ticketing] Tomorrow: {event.title}" for _ in range(3))
    reminded = set(
        Notification.objects.filter(kind="performance_tomorrow", status="sent").values_list("reservation", flat=True)
    )
    assert reminded == {bookings[name].pk for name in ("midnight", "evening", "late")}
    assert unpaid.pk not in reminded
    # Beat firing twice, or the task redelivered: nothing more.
    assert perform_tomorrow(morning + dt.timedelta(minutes=1)) == []


def test_no_day_before_reminder_for_a_cancelled_booking(alice, performance, perform_tomorrow):
    booking = reservation_confirm(reservation=hold(alice, performance, A1))
    reservation_cancel(reservation=booking, actor=alice)
    day_before = timezone.localtime(performance.starts_at) - dt.timedelta(days=1)
    assert perform_tomorrow(day_before.replace(hour=10, minute=0)) == []
