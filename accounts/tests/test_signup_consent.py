"""Consent at sign-up: terms of service, collection and use of personal information and
14 or older (required), marketing emails (optional); by email and by Kakao/Naver/Google.
Also the terms and privacy pages the forms link to."""

import datetime as dt

import pytest
import responses
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.urls import reverse
from django.utils import timezone

from accounts.legal import PRIVACY_VERSION, TERMS_VERSION
from accounts.models import User
from accounts.services import user_accept_terms
from events.tests.factories import UserFactory

from .conftest import CONSENT
from .test_signin import EXPECTED, agree_to_social_sign_up, callback, mock_provider, session_user_id, start_login

pytestmark = pytest.mark.django_db

PASSWORD = "tiger-lily-2049"
ERRORS = {
    "terms": "Agree to the terms of service to sign up.",
    "privacy": "Agree to the collection and use of your personal information to sign up.",
    "age": "You must be 14 or older to sign up. Under 14, a parent or guardian must consent too, "
    "which we cannot take online.",
}


def sign_up(client, **boxes):
    data = {"email": "seoyeon@example.com", "password1": PASSWORD, "password2": PASSWORD, **boxes}
    return client.post(reverse("account_signup"), data)


def assert_consented(user: User, *, after: dt.datetime):
    assert user.terms_accepted_at is not None and user.terms_accepted_at >= after
    assert user.privacy_accepted_at == user.age_confirmed_at == user.terms_accepted_at
    assert (user.terms_version, user.privacy_version) == (TERMS_VERSION, PRIVACY_VERSION)


# --- Email sign-up ----------------------------------------------------------------


def test_the_form_offers_each_box_with_its_document(client):
    html = client.get(reverse("account_signup")).content.decode()
    for name in ("terms", "privacy", "age"):
        assert f'name="{name}" required' in html
    assert 'name="marketing_consent" aria-describedby' in html  # not required
    assert f'href="{reverse("terms")}"' in html and f'href="{reverse("privacy")}"' in html
    # What the privacy consent covers is shown beside it, not only behind the link.
    assert "booking and payment records for 5 years" in html
    # "Agree to all" needs its script: drawn hidden, so without JavaScript nobody sees a dead box.
    assert "data-consent-all hidden" in html
    assert 'src="/static/js/consent.js"' in html


@pytest.mark.parametrize("missing", ["terms", "privacy", "age"])
def test_each_required_box_is_required_with_its_own_message(client, mailoutbox, missing):
    boxes = {name: "on" for name in CONSENT if name != missing}
    response = sign_up(client, **boxes, marketing_consent="on")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<p class="error" id="id_{missing}_error">{ERRORS[missing]}</p>' in html
    for other in set(ERRORS) - {missing}:
        assert ERRORS[other] not in html
    # What was typed and ticked is kept for the second try.
    assert 'value="seoyeon@example.com"' in html
    assert (
        'name="marketing_consent" aria-describedby="id_marketing_consent_helptext" id="id_marketing_consent" checked'
        in html
    )
    assert not User.objects.exists()
    assert mailoutbox == []


def test_no_box_ticked_shows_every_required_message(client):
    html = sign_up(client).content.decode()
    for message in ERRORS.values():
        assert message in html
    assert not User.objects.exists()


def test_all_required_boxes_record_when_and_which_version(client):
    before = timezone.now()
    response = sign_up(client, **CONSENT)
    assert response.status_code == 302
    assert response.url == reverse("account_email_verification_sent")
    user = User.objects.get(email="seoyeon@example.com")
    assert_consented(user, after=before)
    assert (user.marketing_consent, user.marketing_consent_at) == (False, None)


def test_the_marketing_box_gives_marketing_consent_with_its_time(client):
    before = timezone.now()
    sign_up(client, **CONSENT, marketing_consent="on")
    user = User.objects.get(email="seoyeon@example.com")
    assert_consented(user, after=before)
    assert user.marketing_consent
    assert user.marketing_consent_at == user.terms_accepted_at


def test_a_registered_address_still_needs_the_boxes_and_still_reveals_nothing(client, verified_user, mailoutbox):
    response = client.post(
        reverse("account_signup"), {"email": verified_user.email, "password1": PASSWORD, "password2": PASSWORD}
    )
    assert response.status_code == 200  # the same errors as for a new address
    assert mailoutbox == []
    response = client.post(
        reverse("account_signup"),
        {"email": verified_user.email, "password1": PASSWORD, "password2": PASSWORD, **CONSENT},
    )
    assert response.url == reverse("account_email_verification_sent")
    verified_user.refresh_from_db()
    assert verified_user.terms_accepted_at is None  # nothing recorded on someone else's account


# --- Kakao, Naver, Google ---------------------------------------------------------


@pytest.mark.parametrize("provider", ["kakao", "naver", "google"])
def test_a_first_social_sign_in_asks_for_consent_before_making_the_account(client, social_apps, provider):
    email, name, uid = EXPECTED[provider]
    query = start_login(client, provider)
    with responses.RequestsMock() as rsps:
        mock_provider(rsps, provider)
        response = callback(client, provider, code="c", state=query["state"])
    assert response.status_code == 302
    assert response.url == reverse("socialaccount_signup")
    assert not User.objects.exists() and not SocialAccount.objects.exists()
    assert session_user_id(client) is None

    page = client.get(response.url)
    html = page.content.decode()
    assert f"You are signing in with {provider.title()}" in html
    assert f'value="{email}"' in html  # the provider's address, filled in
    assert 'name="terms" required' in html and f'href="{reverse("privacy")}"' in html

    # Without a required box: the form again, and still nothing made.
    refused = client.post(reverse("socialaccount_signup"), {"email": email, "terms": "on", "privacy": "on"})
    assert refused.status_code == 200
    assert ERRORS["age"] in refused.content.decode()
    assert not User.objects.exists()

    before = timezone.now()
    response = agree_to_social_sign_up(client, marketing_consent="on")
    assert response.status_code == 302
    assert response.url == "/"
    user = User.objects.get()
    assert (user.email, user.name) == (email, name)
    assert SocialAccount.objects.get(user=user, provider=provider).uid == uid
    assert session_user_id(client) == str(user.pk)
    assert_consented(user, after=before)
    assert user.marketing_consent and user.marketing_consent_at == user.terms_accepted_at
    assert not user.has_usable_password()


def test_an_existing_social_customer_is_not_asked_again(client, social_apps):
    # An account from before sign-up asked: its consents stay empty, and it signs in as before.
    user = UserFactory(email="kakao-fan@example.com")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    SocialAccount.objects.create(user=user, provider="kakao", uid=EXPECTED["kakao"][2])
    query = start_login(client, "kakao")
    with responses.RequestsMock() as rsps:
        mock_provider(rsps, "kakao")
        response = callback(client, "kakao", code="c", state=query["state"])
    assert response.status_code == 302
    assert response.url == "/"
    assert session_user_id(client) == str(user.pk)
    user.refresh_from_db()
    assert user.terms_accepted_at is None


# --- The service ------------------------------------------------------------------


def test_accepting_the_terms_saves_and_leaving_marketing_unticked_withdraws_nothing():
    given = timezone.now() - dt.timedelta(days=30)
    user = UserFactory(marketing_consent=True, marketing_consent_at=given)
    now = timezone.now()
    user_accept_terms(user=user, marketing_consent=False, now=now)
    user.refresh_from_db()
    assert (user.terms_accepted_at, user.terms_version, user.privacy_version) == (now, TERMS_VERSION, PRIVACY_VERSION)
    assert (user.marketing_consent, user.marketing_consent_at) == (True, given)


def test_a_consent_time_without_its_version_is_refused_by_the_database():
    from django.db import IntegrityError

    user = UserFactory()
    user.terms_accepted_at = timezone.now()
    with pytest.raises(IntegrityError):
        user.save()


def test_the_demo_accounts_have_agreed_as_if_they_had_signed_up():
    import io

    from django.core.management import call_command

    from events.management.commands.seed_demo import CUSTOMER_LOGIN, STAFF_LOGIN

    call_command("seed_demo", stdout=io.StringIO())
    customer = User.objects.get(email=CUSTOMER_LOGIN[0])
    agreed_at = customer.terms_accepted_at
    assert_consented(customer, after=agreed_at)
    assert_consented(User.objects.get(email=STAFF_LOGIN[0]), after=agreed_at - dt.timedelta(minutes=1))
    call_command("seed_demo", stdout=io.StringIO())  # again: what they agreed to stays as it was
    assert User.objects.get(email=CUSTOMER_LOGIN[0]).terms_accepted_at == agreed_at


# --- The documents ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url_name", "heading", "version"),
    [("terms", "Terms of service", TERMS_VERSION), ("privacy", "Privacy policy", PRIVACY_VERSION)],
)
@pytest.mark.parametrize("language", ["ko", "en"])
def test_the_documents_are_public_in_both_languages(client, url_name, heading, version, language):
    response = client.get(reverse(url_name), HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<html lang="{language}">' in html
    assert version in html
    # The site's own layout, in the language asked for (the header's sign-in link).
    assert {"ko": ">로그인</a>", "en": ">Sign in</a>"}[language] in html
    if language == "en":
        assert f"<h1>{heading}</h1>" in html


def test_the_privacy_policy_says_what_how_long_and_how_to_delete(client):
    html = client.get(reverse("privacy")).content.decode()
    for said in ("email address", "phone number", "payment", "5 years", "Act on the Consumer Protection"):
        assert said in html
    for name in ("accounts:my_page", "accounts:profile_edit", "accounts:delete"):
        assert f'href="{reverse(name)}"' in html


def test_every_page_links_the_documents_in_its_footer(client):
    html = client.get(reverse("events:home")).content.decode()
    footer = html.split('<footer class="site-footer">')[1]
    assert f'<a href="{reverse("terms")}">Terms of service</a>' in footer
    assert f'<a href="{reverse("privacy")}"><strong>Privacy policy</strong></a>' in footer


def test_the_documents_take_no_posts(client):
    assert client.post(reverse("terms")).status_code == 405
