"""My page: profile, upcoming bookings, sign-in settings, deletion; only one's own."""

import datetime as dt

import pytest
from allauth.socialaccount.models import SocialAccount
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from events.tests.factories import PerformanceFactory, UserFactory
from reservations.services import reservation_release
from reservations.tests.factories import hold

from .conftest import book, seat

pytestmark = pytest.mark.django_db

URL = reverse("accounts:my_page")


def test_anonymous_visitors_are_sent_to_sign_in_and_back(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response.url == f"{reverse('account_login')}?next={URL}"


def test_only_get_is_allowed(client, customer):
    client.force_login(customer)
    assert client.post(URL).status_code == 405


def test_header_links_to_my_page_when_signed_in(client, customer):
    assert f'href="{URL}"' not in client.get("/").content.decode()
    client.force_login(customer)
    assert f'href="{URL}"' in client.get("/").content.decode()


def test_profile_summary_and_links(client, customer):
    customer.phone = "+821012345678"
    customer.save()
    client.force_login(customer)
    html = client.get(URL).content.decode()
    assert "이지우" in html
    assert customer.email in html
    assert "010-1234-5678" in html
    assert "한국어" in html
    assert "Marketing emails" in html
    for name in ("accounts:profile_edit", "accounts:delete", "reservations:list"):
        assert f'href="{reverse(name)}"' in html
    for name in ("account_email", "account_change_password", "socialaccount_connections"):
        assert f'href="{reverse(name)}"' in html
    assert "Verified" in html


def test_a_social_only_customer_is_offered_to_set_a_password(client, customer):
    customer.set_unusable_password()
    customer.save()
    SocialAccount.objects.create(user=customer, provider="kakao", uid="4012345678")
    SocialAccount.objects.create(user=customer, provider="google", uid="1098765")
    client.force_login(customer)
    html = client.get(URL).content.decode()
    assert f'href="{reverse("account_set_password")}"' in html
    assert f'href="{reverse("account_change_password")}"' not in html
    assert html.index(">Google<") < html.index(">Kakao<")
    assert "No Kakao, Naver or Google account is connected." not in html


def test_upcoming_bookings_are_mine_live_and_to_come(client, customer, performance):
    other = UserFactory(email="someone-else@example.com")
    mine_paid = book(customer, performance, seat(1))
    mine_held = hold(customer, performance, seat(2))
    released = hold(customer, performance, seat(3))
    reservation_release(reservation=released, actor=customer)
    theirs = book(other, performance, seat(5))
    client.force_login(customer)

    html = client.get(URL).content.decode()
    assert mine_paid.code in html
    assert mine_held.code in html
    assert released.code not in html
    assert theirs.code not in html  # and no page takes a user id to ask for it
    assert "Confirmed" in html and "Held" in html
    # Seats by name, and the hold counting down (the script loaded with it).
    assert seat(1) in html and seat(2) in html
    assert 'data-countdown="' in html and 'data-seconds=""' not in html and "js/countdown.js" in html


def test_an_expired_hold_is_not_upcoming_even_before_the_sweeper(client, customer, performance):
    expired = hold(customer, performance, seat(1), now=performance.sales_open_at + dt.timedelta(minutes=1))
    assert expired.status == "held"
    client.force_login(customer)
    html = client.get(URL).content.decode()
    assert expired.code not in html
    assert "No upcoming bookings." in html


def test_query_count_does_not_grow_with_bookings(client, customer, performance):
    later = PerformanceFactory(event=performance.event, layout=performance.layout)
    client.force_login(customer)
    SocialAccount.objects.create(user=customer, provider="naver", uid="n-1")

    book(customer, performance, seat(1))
    with CaptureQueriesContext(connection) as one:
        html = client.get(URL).content.decode()
    assert html.count('class="booking ') == 1

    book(customer, performance, seat(2))
    hold(customer, performance, seat(3), seat(4))
    book(customer, later, seat(1))
    hold(customer, later, seat(2))
    with CaptureQueriesContext(connection) as five:
        html = client.get(URL).content.decode()
    assert html.count('class="booking ') == 5
    assert len(five.captured_queries) == len(one.captured_queries), [q["sql"] for q in five.captured_queries]
    assert len(one.captured_queries) <= 8


def test_no_account_page_takes_an_id():
    # Every page is "mine": there is no id in the URL to swap for someone else's.
    from accounts import urls

    assert [pattern.pattern.converters for pattern in urls.urlpatterns] == [{}, {}, {}]
