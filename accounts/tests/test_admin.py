"""Customers in the staff admin: profile fields shown, filters, consent read-only."""

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.legal import TERMS_VERSION
from accounts.models import User
from accounts.services import user_accept_terms
from events.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(email="staff@example.com", is_staff=True, is_superuser=True))
    return client


def test_customers_cannot_open_the_admin(client, customer):
    client.force_login(customer)
    response = client.get(reverse("admin:accounts_user_changelist"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


def test_the_list_shows_and_filters_by_profile_fields(staff_client, customer):
    customer.phone = "+821012345678"
    customer.preferred_language = "en"
    customer.marketing_consent, customer.marketing_consent_at = True, timezone.now()
    customer.save()
    UserFactory(email="quiet@example.com")
    url = reverse("admin:accounts_user_changelist")

    html = staff_client.get(url).content.decode()
    assert "+821012345678" in html
    for parameter in ("preferred_language__exact=en", "marketing_consent__exact=1", "deleted_at__isempty=1"):
        assert parameter in html

    filtered = staff_client.get(url, {"marketing_consent__exact": "1"})
    assert [u.email for u in filtered.context["cl"].result_list] == [customer.email]
    filtered = staff_client.get(url, {"preferred_language__exact": "en"})
    assert [u.email for u in filtered.context["cl"].result_list] == [customer.email]
    found = staff_client.get(url, {"q": "+821012345678"})
    assert [u.email for u in found.context["cl"].result_list] == [customer.email]


def test_staff_edit_the_phone_as_typed_and_cannot_give_consent(staff_client, customer):
    url = reverse("admin:accounts_user_change", args=[customer.pk])
    form = staff_client.get(url).context["adminform"].form
    assert {"phone", "preferred_language"} <= set(form.fields)
    consent = {"terms_accepted_at", "terms_version", "privacy_accepted_at", "privacy_version", "age_confirmed_at"}
    assert not {"marketing_consent", "marketing_consent_at", "deleted_at", *consent} & set(form.fields)

    data = {
        "email": customer.email,
        "name": customer.name,
        "phone": "010-2222-3333",
        "preferred_language": "en",
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "10:00:00",
        "marketing_consent": "on",  # ignored: read-only
        "terms_version": "2000-01-01",  # ignored: read-only
    }
    response = staff_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    customer.refresh_from_db()
    assert (customer.phone, customer.preferred_language, customer.marketing_consent) == ("+821022223333", "en", False)
    assert customer.terms_version == ""

    response = staff_client.post(url, {**data, "phone": "010-12"})
    assert response.status_code == 200
    assert "Enter a valid phone number" in str(response.context["adminform"].form.errors["phone"])
    assert User.objects.get(pk=customer.pk).phone == "+821022223333"


def test_staff_see_when_and_to_which_version_a_customer_agreed(staff_client, customer):
    user_accept_terms(user=customer, marketing_consent=True)
    html = staff_client.get(reverse("admin:accounts_user_change", args=[customer.pk])).content.decode()
    for label in ("Terms of service accepted", "Privacy policy version", "Confirmed 14 or older"):
        assert label in html
    assert TERMS_VERSION in html
