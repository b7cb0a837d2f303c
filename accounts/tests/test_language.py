"""The preferred language: chosen at sign-up by browsing, applied at every sign-in."""

import pytest
import responses
from django.conf import settings
from django.urls import reverse

from accounts.models import User

from .conftest import CONSENT, PASSWORD
from .test_signin import agree_to_social_sign_up, callback, mock_provider, start_login

pytestmark = pytest.mark.django_db

COOKIE = settings.LANGUAGE_COOKIE_NAME


def log_in(client, user, **extra):
    return client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD}, **extra)


@pytest.mark.parametrize(("preferred", "browsing"), [("ko", "en"), ("en", "ko")])
def test_signing_in_switches_to_the_preferred_language(client, verified_user, preferred, browsing):
    verified_user.preferred_language = preferred
    verified_user.save()
    client.cookies[COOKIE] = browsing
    response = log_in(client, verified_user, HTTP_ACCEPT_LANGUAGE=browsing)
    assert response.status_code == 302
    assert response.cookies[COOKIE].value == preferred
    page = client.get(response.url).content.decode()
    assert f'<html lang="{preferred}">' in page
    # allauth's "signed in" message is written in the new language too.
    signed_in = {"ko": "로그인", "en": "Successfully signed in as"}[preferred]
    assert signed_in in page.split('class="wrap messages"')[1].split("</div>")[0]


def test_a_failed_sign_in_changes_no_language(client, verified_user):
    verified_user.preferred_language = "ko"
    verified_user.save()
    response = client.post(reverse("account_login"), {"login": verified_user.email, "password": "wrong"})
    assert COOKIE not in response.cookies


def test_sign_up_keeps_the_language_the_visitor_browsed_in(client, mailoutbox):
    password = "tiger-lily-2049"
    for email, language in (("ko-user@example.com", "ko"), ("en-user@example.com", "en")):
        client.post(
            reverse("account_signup"),
            {"email": email, "password1": password, "password2": password, **CONSENT},
            HTTP_ACCEPT_LANGUAGE=language,
        )
        assert User.objects.get(email=email).preferred_language == language


def test_a_social_sign_up_keeps_the_language_too_and_applies_it(client, social_apps):
    client.cookies[COOKIE] = "en"
    query = start_login(client, "kakao")
    with responses.RequestsMock() as rsps:
        mock_provider(rsps, "kakao")
        callback(client, "kakao", code="c", state=query["state"])
    response = agree_to_social_sign_up(client)
    assert response.status_code == 302
    assert User.objects.get().preferred_language == "en"
    assert response.cookies[COOKIE].value == "en"


def test_confirming_the_email_signs_in_with_the_preferred_language(client, mailoutbox):
    import re

    password = "tiger-lily-2049"
    client.post(
        reverse("account_signup"),
        {"email": "hana@example.com", "password1": password, "password2": password, **CONSENT},
        HTTP_ACCEPT_LANGUAGE="ko",
    )
    confirm_url = re.search(r"http://testserver(/accounts/confirm-email/\S+/)", mailoutbox[0].body).group(1)
    response = client.post(confirm_url)
    assert response.status_code == 302
    assert response.cookies[COOKIE].value == "ko"


@pytest.mark.parametrize("browsing", ["ko", "en"])
def test_the_language_menu_names_each_language_in_itself(client, browsing):
    page = client.get("/", HTTP_ACCEPT_LANGUAGE=browsing).content.decode()
    menu = page.split('id="lang-select"')[1].split("</select>")[0]
    # Someone who reads only English finds "English" on a Korean page, and the reverse.
    assert '<option value="en" lang="en"' in menu and ">English</option>" in menu
    assert '<option value="ko" lang="ko"' in menu and ">한국어</option>" in menu
    assert "영어" not in menu and "Korean" not in menu
    assert f'value="{browsing}" lang="{browsing}" selected' in menu


def test_a_signed_in_customer_s_menu_choice_is_kept_for_the_next_sign_in(client, verified_user):
    verified_user.preferred_language = "ko"
    verified_user.save()
    client.force_login(verified_user)
    response = client.post(reverse("set_language"), {"language": "en", "next": "/"})
    assert response.status_code == 302 and response.cookies[COOKIE].value == "en"
    verified_user.refresh_from_db()
    assert verified_user.preferred_language == "en"
    client.post(reverse("set_language"), {"language": "ko-kr", "next": "/"})  # a variant: its language
    verified_user.refresh_from_db()
    assert verified_user.preferred_language == "ko"
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    client.post(reverse("set_language"), {"language": "fr", "next": "/"})  # not offered: nothing changes
    verified_user.refresh_from_db()
    assert verified_user.preferred_language == "en"
    client.logout()
    response = log_in(client, verified_user)
    assert response.cookies[COOKIE].value == "en"


def test_a_visitor_s_menu_choice_sets_only_the_cookie(client):
    response = client.post(reverse("set_language"), {"language": "en", "next": "/"})
    assert response.status_code == 302 and response.cookies[COOKIE].value == "en"
    assert client.get(reverse("set_language")).status_code == 405
