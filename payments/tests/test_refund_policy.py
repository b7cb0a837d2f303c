import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from payments.refund_policy import KOREAN_STANDARD, Policy, cancellation_deadline, refund_quote

SEOUL = ZoneInfo("Asia/Seoul")
START = dt.datetime(2026, 12, 24, 19, 30, tzinfo=SEOUL)  # Thursday evening
PRICES = [120000, 90000]


def quote(now, booked_at=None, prices=PRICES, fee=4000, policy=KOREAN_STANDARD):
    return refund_quote(
        policy=policy,
        ticket_prices=prices,
        booking_fee=fee,
        booked_at=booked_at or dt.datetime(2026, 11, 1, 10, 0, tzinfo=SEOUL),
        starts_at=START,
        now=now,
    )


def at(month, day, hour=12, minute=0):
    return dt.datetime(2026, month, day, hour, minute, tzinfo=SEOUL)


def test_free_within_seven_days_of_booking_when_the_show_is_far_away():
    q = quote(at(11, 5), booked_at=at(11, 1, 10))
    assert (q.allowed, q.cancellation_fee, q.ticket_refund) == (True, 0, 210000)
    assert q.fee_refund == 0  # not the booking day


def test_booking_fee_comes_back_only_on_the_booking_day():
    q = quote(at(11, 1, 23, 59), booked_at=at(11, 1, 0, 1))
    assert q.fee_refund == 4000
    assert q.total_refund == 214000


def test_flat_fee_per_ticket_after_the_free_week_capped_at_ten_percent():
    q = quote(at(12, 1))  # 23 days before, booked long ago
    assert q.cancellation_fee == 4000 + 4000
    cheap = quote(at(12, 1), prices=[30000])
    assert cheap.cancellation_fee == 3000  # 10% of 30,000 is less than 4,000


def test_free_week_does_not_apply_within_ten_days_of_the_show():
    q = quote(at(12, 20), booked_at=at(12, 19))  # booked yesterday, 4 days before
    assert q.cancellation_fee == 210000 * 20 // 100


@pytest.mark.parametrize(
    ("now", "percent"),
    [
        (at(12, 15), 10),  # 9 days before
        (at(12, 17), 10),  # 7 days
        (at(12, 18), 20),  # 6 days
        (at(12, 21), 20),  # 3 days
        (at(12, 22), 30),  # 2 days
        (at(12, 23, 16, 59), 30),  # the day before, before 17:00
    ],
)
def test_fee_rises_as_the_performance_nears(now, percent):
    q = quote(now)
    assert q.allowed
    assert q.cancellation_fee == 210000 * percent // 100
    assert q.ticket_refund == 210000 - q.cancellation_fee


def test_no_cancellation_from_five_pm_the_day_before():
    q = quote(at(12, 23, 17, 0))
    assert not q.allowed
    assert "2026-12-23 17:00" in q.rule
    assert q.total_refund == 0
    assert cancellation_deadline(KOREAN_STANDARD, START) == at(12, 23, 17, 0)


def test_a_policy_round_trips_through_json_and_ignores_unknown_keys():
    custom = Policy(free_days_after_booking=3, fee_percent_2_to_1_days=50)
    assert Policy.from_dict({**custom.as_dict(), "something": 1}) == custom
    q = quote(at(12, 22), policy=custom)
    assert q.cancellation_fee == 210000 * 50 // 100


def test_a_policy_frozen_out_of_range_is_brought_into_range():
    # Frozen on a payment before the model refused such values: no page may fail on it.
    frozen = Policy.from_dict(
        {**KOREAN_STANDARD.as_dict(), "cutoff_hour_day_before": 25, "fee_percent_2_to_1_days": 150}
    )
    assert (frozen.cutoff_hour_day_before, frozen.fee_percent_2_to_1_days) == (23, 100)
    q = quote(at(12, 22), policy=frozen)
    assert q.cancellation_fee == 210000 and q.ticket_refund == 0  # never a negative refund
    assert cancellation_deadline(frozen, START) == at(12, 23, 23, 0)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("fee_percent_2_to_1_days", 150, "Ensure this value is less than or equal to 100."),
        ("cutoff_hour_day_before", 25, "Ensure this value is less than or equal to 23."),
    ],
)
def test_staff_cannot_save_a_policy_out_of_range(admin_client, field, value, message):
    from django.urls import reverse

    from events.tests.factories import EventFactory
    from payments.models import RefundPolicy

    event = EventFactory()
    fields = {**KOREAN_STANDARD.as_dict(), "event": event.pk, field: value}
    response = admin_client.post(reverse("admin:payments_refundpolicy_add"), fields)
    assert response.status_code == 200 and message in response.content.decode()
    assert not RefundPolicy.objects.exists()


@pytest.mark.django_db
def test_the_database_refuses_a_fee_above_the_ticket_too():
    from django.db import IntegrityError

    from events.tests.factories import EventFactory
    from payments.models import RefundPolicy

    with pytest.raises(IntegrityError):
        RefundPolicy.objects.create(event=EventFactory(), fee_percent_9_to_7_days=101)
