"""The notification log: staff browse it and resend from the admin; customers see
their own messages on my page."""

import pytest
from django.urls import reverse

from events.tests.factories import UserFactory
from notifications.models import Notification
from reservations.services import reservation_confirm
from reservations.tests.factories import hold

from .conftest import A1, A2

pytestmark = pytest.mark.django_db

MY_PAGE = reverse("accounts:my_page")


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(email="staff@example.com", is_staff=True, is_superuser=True))
    return client


def log(user, reservation, kind="booking_confirmed", status="sent", subject="", **fields):
    return Notification.objects.create(
        user=user,
        reservation=reservation,
        kind=kind,
        status=status,
        subject=subject or f"[Ticketing] {kind} {reservation.code}",
        recipient=user.email,
        dedupe_key=f"{kind}:{reservation.pk}:{status}",
        **fields,
    )


@pytest.fixture
def booking(alice, performance):
    return reservation_confirm(reservation=hold(alice, performance, A1))


def test_customers_cannot_open_the_log(client, alice):
    client.force_login(alice)
    response = client.get(reverse("admin:notifications_notification_changelist"))
    assert response.status_code == 302 and response.url.startswith(reverse("admin:login"))


def test_staff_browse_filter_and_search_the_log(staff_client, booking, bob, performance):
    sent = log(booking.user, booking)
    failed = log(booking.user, booking, kind="payment_reminder", status="failed", error="550 No such user")
    theirs = log(bob, hold(bob, performance, A2), kind="awaiting_deposit")
    url = reverse("admin:notifications_notification_changelist")
    html = staff_client.get(url).content.decode()
    assert booking.code in html and "alice@example.com" in html
    assert [n.pk for n in staff_client.get(url, {"status__exact": "failed"}).context["cl"].result_list] == [failed.pk]
    found = staff_client.get(url, {"q": booking.code}).context["cl"].result_list
    assert {n.pk for n in found} == {sent.pk, failed.pk}
    assert theirs.pk not in {n.pk for n in found}
    page = staff_client.get(reverse("admin:notifications_notification_change", args=[failed.pk]))
    assert page.status_code == 200 and "550 No such user" in page.content.decode()
    assert staff_client.get(reverse("admin:notifications_notification_add")).status_code == 403


def test_staff_resend_from_the_list(staff_client, booking, mailoutbox, django_capture_on_commit_callbacks):
    failed = log(booking.user, booking, status="failed", error="SMTP down")
    url = reverse("admin:notifications_notification_changelist")
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url, {"action": "resend", "_selected_action": [failed.pk]}, follow=True)
    assert "1 message queued to be sent again" in response.content.decode()
    copy = Notification.objects.exclude(pk=failed.pk).get()
    assert (copy.kind, copy.reservation, copy.status) == ("booking_confirmed", booking, "sent")
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["alice@example.com"]


def test_the_schedule_is_in_the_admin(staff_client):
    assert staff_client.get(reverse("admin:django_celery_beat_periodictask_changelist")).status_code == 200


# --- My page ----------------------------------------------------------------------------


def test_my_page_lists_my_messages_only(client, booking, bob, performance):
    mine = log(booking.user, booking, subject="[Ticketing] Booking confirmed, mine")
    not_delivered = log(booking.user, booking, kind="payment_reminder", status="failed", subject="A bounced one")
    log(booking.user, booking, kind="awaiting_deposit", status="skipped", subject="Never sent: not shown")
    log(bob, hold(bob, performance, A2), subject="Bob's confirmation")
    client.force_login(booking.user)
    html = client.get(MY_PAGE).content.decode()
    assert "Messages" in html
    assert mine.subject in html and not_delivered.subject in html
    assert "Not delivered" in html and "Sent" in html
    assert f'href="{booking.get_absolute_url()}"' in html
    assert "Never sent" not in html and "Bob" not in html


def test_my_page_without_messages(client, alice):
    client.force_login(alice)
    assert "No messages yet." in client.get(MY_PAGE).content.decode()
