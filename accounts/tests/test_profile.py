"""Profile: name, phone, language, marketing consent; the page and the service."""

import datetime as dt

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.phone import INVALID_PHONE
from accounts.services import user_update_profile

pytestmark = pytest.mark.django_db

URL = reverse("accounts:profile_edit")


def profile_data(**overrides):
    data = {"name": "이지우", "phone": "010-1234-5678", "preferred_language": "en", "marketing_consent": ""}
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def test_anonymous_visitors_are_sent_to_sign_in_and_back(client):
    for method in (client.get, client.post):
        response = method(URL)
        assert response.status_code == 302
        assert response.url == f"{reverse('account_login')}?next={URL}"


def test_the_form_shows_the_customers_own_profile(client, customer):
    customer.phone = "+821012345678"
    customer.save()
    client.force_login(customer)
    html = client.get(URL).content.decode()
    assert 'value="이지우"' in html
    assert 'value="010-1234-5678"' in html  # shown as typed, not as stored
    assert 'type="tel"' in html
    assert 'autocomplete="tel"' in html
    assert '<option value="ko" selected>한국어</option>' in html
    assert '<option value="en">English</option>' in html
    assert 'name="marketing_consent"' in html
    assert "checked" not in html  # consent is off until the customer ticks it
    assert customer.email in html


def test_saving_normalises_the_phone_and_returns_to_my_page(client, customer):
    client.force_login(customer)
    response = client.post(URL, profile_data(name="  박지우 ", phone="010 9876 5432"))
    assert response.status_code == 302
    assert response.url == reverse("accounts:my_page")
    customer.refresh_from_db()
    assert (customer.name, customer.phone, customer.preferred_language) == ("박지우", "+821098765432", "en")
    assert not customer.marketing_consent
    page = client.get(response.url).content.decode()
    assert "Your profile has been saved." in page
    assert "010-9876-5432" in page


def test_a_number_abroad_is_kept_with_its_country_code(client, customer):
    client.force_login(customer)
    client.post(URL, profile_data(phone="+1 (650) 253-0000"))
    customer.refresh_from_db()
    assert customer.phone == "+16502530000"
    assert "+1 650-253-0000" in client.get(reverse("accounts:my_page")).content.decode()


def test_clearing_the_phone_is_allowed(client, customer):
    customer.phone = "+821012345678"
    customer.save()
    client.force_login(customer)
    client.post(URL, profile_data(phone=""))
    customer.refresh_from_db()
    assert customer.phone == ""


@pytest.mark.parametrize("phone", ["123", "010-12", "abc", "+1 555", "010-abcd-efgh"])
def test_an_invalid_phone_is_shown_again_with_the_error_and_changes_nothing(client, customer, phone):
    client.force_login(customer)
    response = client.post(URL, profile_data(name="바뀐 이름", phone=phone, marketing_consent="on"))
    assert response.status_code == 200
    html = response.content.decode()
    assert str(INVALID_PHONE) in html
    assert f'value="{phone}"' in html  # what they typed, to correct it
    assert 'value="바뀐 이름"' in html
    # The header still shows the saved name: the failed form did not touch request.user.
    assert '<span class="account-name">이지우</span>' in html
    customer.refresh_from_db()
    assert (customer.name, customer.phone, customer.marketing_consent) == ("이지우", "", False)
    assert customer.preferred_language == "ko"


@pytest.mark.parametrize(
    ("field", "value"),
    [("preferred_language", "fr"), ("preferred_language", ""), ("name", "가" * 101)],
)
def test_other_bad_input_changes_nothing(client, customer, field, value):
    client.force_login(customer)
    response = client.post(URL, profile_data(**{field: value}))
    assert response.status_code == 200
    assert 'class="error"' in response.content.decode()
    customer.refresh_from_db()
    assert (customer.name, customer.phone, customer.preferred_language) == ("이지우", "", "ko")


def test_consent_is_timestamped_when_given_and_cleared_when_withdrawn(client, customer):
    client.force_login(customer)
    before = timezone.now()
    client.post(URL, profile_data(marketing_consent="on"))
    customer.refresh_from_db()
    assert customer.marketing_consent
    given_at = customer.marketing_consent_at
    assert given_at is not None and before <= given_at <= timezone.now()
    assert (
        f"Subscribed since {timezone.localtime(given_at):%Y.%m.%d}"
        in client.get(reverse("accounts:my_page")).content.decode()
    )

    # Saving again with consent still on keeps the time it was first given.
    client.post(URL, profile_data(marketing_consent="on", name="새 이름"))
    customer.refresh_from_db()
    assert customer.marketing_consent_at == given_at

    client.post(URL, profile_data())  # unticked
    customer.refresh_from_db()
    assert not customer.marketing_consent
    assert customer.marketing_consent_at is None


def test_the_service_records_consent_time_and_validates(customer):
    when = timezone.now() - dt.timedelta(days=3)
    kwargs = {"name": "A", "phone": "", "preferred_language": "ko"}
    user_update_profile(user=customer, marketing_consent=True, now=when, **kwargs)
    assert User.objects.get(pk=customer.pk).marketing_consent_at == when
    user_update_profile(user=customer, marketing_consent=True, now=when + dt.timedelta(days=1), **kwargs)
    assert User.objects.get(pk=customer.pk).marketing_consent_at == when
    user_update_profile(user=customer, marketing_consent=False, **kwargs)
    assert User.objects.get(pk=customer.pk).marketing_consent_at is None

    with pytest.raises(ValidationError) as exc:
        user_update_profile(user=customer, name="B", phone="010-12", preferred_language="xx", marketing_consent=True)
    assert set(exc.value.message_dict) == {"phone", "preferred_language"}
    fresh = User.objects.get(pk=customer.pk)
    assert (fresh.name, fresh.marketing_consent) == ("A", False)


def test_the_database_refuses_consent_without_a_time(customer):
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.filter(pk=customer.pk).update(marketing_consent=True, marketing_consent_at=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.filter(pk=customer.pk).update(marketing_consent=False, marketing_consent_at=timezone.now())


def test_changing_the_language_applies_at_once(client, customer):
    client.force_login(customer)
    response = client.post(URL, profile_data(preferred_language="ko"), HTTP_ACCEPT_LANGUAGE="en")
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "ko"
    page = client.get(response.url).content.decode()
    assert '<html lang="ko">' in page
    assert "프로필을 저장했습니다." in page  # the message too, written in the new language

    response = client.post(URL, profile_data(preferred_language="en"))
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    page = client.get(response.url).content.decode()
    assert '<html lang="en">' in page
    assert "Your profile has been saved." in page


def test_profile_page_is_in_korean(client, customer):
    client.force_login(customer)
    html = client.get(URL, HTTP_ACCEPT_LANGUAGE="ko").content.decode()
    assert "프로필 수정" in html
    assert "전화번호" in html
