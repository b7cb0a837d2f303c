"""Signing in: email + password through allauth, and Kakao, Naver, Google over OAuth2.

The providers' HTTP endpoints are mocked at the HTTP layer (`responses`), with
bodies shaped like the real ones, so allauth's own client code runs end to end.
"""

import re
import time
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import responses
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.urls import reverse

from accounts.adapter import profile_name
from accounts.models import User

from .conftest import CONSENT, PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "tiger-lily-2049"
WRONG_CREDENTIALS = "The email address and/or password you specified are not correct."


def session_user_id(client):
    return client.session.get("_auth_user_id")


def link_in(message, pattern):
    # The link must end at whitespace: a mail client links everything up to there.
    match = re.search(rf"http://testserver({pattern})(?:\s|$)", message.body)
    assert match, message.body
    return match.group(1)


def sign_up(client, email, password=NEW_PASSWORD):
    return client.post(
        reverse("account_signup"), {"email": email, "password1": password, "password2": password, **CONSENT}
    )


def log_in(client, email, password, **extra):
    return client.post(reverse("account_login"), {"login": email, "password": password, **extra})


# --- Email and password ---------------------------------------------------------


def test_sign_up_verify_then_sign_out(client, mailoutbox):
    response = sign_up(client, "jisoo@example.com")
    assert response.status_code == 302
    assert response.url == reverse("account_email_verification_sent")
    user = User.objects.get(email="jisoo@example.com")
    assert not EmailAddress.objects.get(user=user).verified
    assert session_user_id(client) is None  # not before the address is confirmed

    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["jisoo@example.com"]
    assert mailoutbox[0].subject == "[Ticketing] Please Confirm Your Email Address"
    confirm_url = link_in(mailoutbox[0], r"/accounts/confirm-email/[^/\s]+/")
    # GET only shows a button: mail scanners that prefetch links confirm nothing.
    page = client.get(confirm_url)
    assert page.status_code == 200
    assert not EmailAddress.objects.get(user=user).verified

    response = client.post(confirm_url)
    assert response.status_code == 302
    assert response.url == "/"
    assert EmailAddress.objects.get(user=user).verified
    assert session_user_id(client) == str(user.pk)

    home = client.get("/").content.decode()
    assert "Sign out" in home
    assert f'action="{reverse("account_logout")}" method="post"' in home

    # Signing out takes a POST; a GET (a link, a prefetch) only asks.
    client.get(reverse("account_logout"))
    assert session_user_id(client) == str(user.pk)
    response = client.post(reverse("account_logout"))
    assert response.status_code == 302
    assert session_user_id(client) is None


def test_header_offers_sign_in_that_returns_to_the_page(client):
    html = client.get(reverse("events:event_list")).content.decode()
    assert f'href="{reverse("account_login")}?next=/events/"' in html
    assert f'href="{reverse("account_signup")}"' in html
    assert "Sign out" not in html


def test_login_lands_on_the_page_asked_for(client, verified_user):
    response = log_in(client, verified_user.email, PASSWORD, next="/events/")
    assert response.status_code == 302
    assert response.url == "/events/"
    assert session_user_id(client) == str(verified_user.pk)


def test_login_rotates_the_session_key(client, verified_user):
    session = client.session  # an anonymous session, as a visitor browsing events has
    session["probe"] = 1
    session.save()
    anonymous_key = session.session_key
    log_in(client, verified_user.email, PASSWORD)
    assert session_user_id(client) == str(verified_user.pk)
    assert client.session.session_key != anonymous_key


def test_wrong_password_and_unknown_email_get_the_same_generic_error(client, verified_user):
    wrong_password = log_in(client, verified_user.email, "not-the-password")
    unknown_email = log_in(client, "nobody@example.com", "not-the-password")
    for response in (wrong_password, unknown_email):
        assert response.status_code == 200
        assert WRONG_CREDENTIALS in response.content.decode()
    assert session_user_id(client) is None


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "https:evil.example"])
def test_login_never_redirects_off_site(client, verified_user, target):
    response = log_in(client, verified_user.email, PASSWORD, next=target)
    assert response.status_code == 302
    assert response.url == "/"
    assert session_user_id(client) == str(verified_user.pk)


def test_unverified_address_cannot_sign_in_and_is_sent_to_verify(client, mailoutbox):
    user = User.objects.create_user(email="unverified@example.com", password=PASSWORD)
    EmailAddress.objects.create(user=user, email=user.email, verified=False, primary=True)
    response = log_in(client, user.email, PASSWORD)
    assert response.status_code == 302
    assert response.url == reverse("account_email_verification_sent")
    assert session_user_id(client) is None
    assert [m.to for m in mailoutbox] == [[user.email]]
    assert "/accounts/confirm-email/" in mailoutbox[0].body


def test_signing_up_with_a_registered_email_reveals_nothing(client, verified_user, mailoutbox):
    fresh = sign_up(client, "someone-new@example.com")
    taken = sign_up(client, verified_user.email)
    # The same answer as a real sign-up: no "already registered" for an attacker to probe.
    assert (taken.status_code, taken.url) == (fresh.status_code, fresh.url)
    assert User.objects.filter(email=verified_user.email).count() == 1
    # The owner of the address is told instead, with a way back in.
    to_owner = [m for m in mailoutbox if m.to == [verified_user.email]]
    assert len(to_owner) == 1
    assert "already exists" in to_owner[0].body
    assert reverse("account_reset_password") in to_owner[0].body
    assert session_user_id(client) is None


def test_password_reset_end_to_end_and_the_link_works_once(client, verified_user, mailoutbox):
    response = client.post(reverse("account_reset_password"), {"email": verified_user.email})
    assert response.status_code == 302
    assert response.url == reverse("account_reset_password_done")
    assert len(mailoutbox) == 1
    reset_url = link_in(mailoutbox[0], r"/accounts/password/reset/key/[^/\s]+/")

    # allauth moves the key into the session and redirects, so it never sits in a Referer.
    response = client.get(reset_url)
    assert response.status_code == 302
    set_password_url = response.url
    response = client.post(set_password_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302
    assert response.url == reverse("account_reset_password_from_key_done")

    verified_user.refresh_from_db()
    assert verified_user.check_password(NEW_PASSWORD)
    assert session_user_id(client) is None  # ACCOUNT_LOGIN_ON_PASSWORD_RESET is off

    used_again = client.get(reset_url, follow=True).content.decode()
    assert "This link can no longer be used" in used_again
    assert "possibly because it has already been used" in used_again

    assert WRONG_CREDENTIALS in log_in(client, verified_user.email, PASSWORD).content.decode()
    assert log_in(client, verified_user.email, NEW_PASSWORD).status_code == 302
    assert session_user_id(client) == str(verified_user.pk)


def test_password_reset_for_an_unknown_address_looks_the_same(client, verified_user, mailoutbox):
    known = client.post(reverse("account_reset_password"), {"email": verified_user.email})
    unknown = client.post(reverse("account_reset_password"), {"email": "nobody@example.com"})
    assert (unknown.status_code, unknown.url) == (known.status_code, known.url)
    # The unknown address gets a note, not a reset link.
    note = next(m for m in mailoutbox if m.to == ["nobody@example.com"])
    assert "/accounts/password/reset/key/" not in note.body


def test_invalid_confirmation_key_gets_a_clear_message(client):
    response = client.get(reverse("account_confirm_email", args=["not-a-real-key"]))
    assert response.status_code == 200
    assert "This email confirmation link expired or is invalid." in response.content.decode()


def test_expired_confirmation_key_gets_a_clear_message(client, mailoutbox):
    sign_up(client, "late@example.com")
    confirm_url = link_in(mailoutbox[0], r"/accounts/confirm-email/[^/\s]+/")
    four_days_later = time.time() + 4 * 24 * 3600  # keys last ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS = 3
    with mock.patch("django.core.signing.time.time", return_value=four_days_later):
        page = client.get(confirm_url)
        client.post(confirm_url)
    assert "This email confirmation link expired or is invalid." in page.content.decode()
    assert not EmailAddress.objects.get(email="late@example.com").verified
    assert session_user_id(client) is None


def test_failed_logins_are_rate_limited(client, verified_user, settings):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login_failed": "10/m/ip,3/300s/key"}
    for _ in range(3):
        assert WRONG_CREDENTIALS in log_in(client, verified_user.email, "guess").content.decode()
    # Even the right password is refused now, so guessing cannot go on.
    response = log_in(client, verified_user.email, PASSWORD)
    assert response.status_code == 200
    assert "Too many failed login attempts. Try again later." in response.content.decode()
    assert session_user_id(client) is None


def test_korean_confirmation_email_keeps_the_link_clickable(client, mailoutbox):
    client.post(
        reverse("account_signup"),
        {"email": "hana@example.com", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD, **CONSENT},
        HTTP_ACCEPT_LANGUAGE="ko",
    )
    message = mailoutbox[0]
    assert message.subject.startswith("[티켓팅] ")
    confirm_url = link_in(message, r"/accounts/confirm-email/[^/\s]+/")
    assert client.post(confirm_url).status_code == 302
    assert EmailAddress.objects.get(email="hana@example.com").verified


def test_pages_use_the_site_layout_and_korean(client):
    html = client.get(reverse("account_login"), HTTP_ACCEPT_LANGUAGE="ko").content.decode()
    assert 'href="/static/css/site.css"' in html
    assert 'class="auth-form form-entrance form-login"' in html
    assert '<label for="id_login">이메일:</label>' in html
    assert "로그인 상태 유지" in html
    assert 'class="button" type="submit"' in html


# --- Kakao, Naver, Google -------------------------------------------------------

CLIENT_IDS = {"kakao": "kakao-client-id", "naver": "naver-client-id", "google": "google-client-id"}
TOKEN_URLS = {
    "kakao": "https://kauth.kakao.com/oauth/token",
    "naver": "https://nid.naver.com/oauth2.0/token",
    "google": "https://oauth2.googleapis.com/token",
}
AUTHORIZE_URLS = {
    "kakao": "https://kauth.kakao.com/oauth/authorize",
    "naver": "https://nid.naver.com/oauth2.0/authorize",
    "google": "https://accounts.google.com/o/oauth2/v2/auth",
}


def kakao_profile(*, uid=4012345678, email="kakao-fan@example.com", verified=True, nickname="라이언"):
    # GET https://kapi.kakao.com/v2/user/me
    return {
        "id": uid,
        "connected_at": "2025-03-01T09:00:00Z",
        "properties": {"nickname": nickname},
        "kakao_account": {
            "profile_nickname_needs_agreement": False,
            "profile": {"nickname": nickname, "is_default_nickname": False},
            "has_email": True,
            "email_needs_agreement": False,
            "is_email_valid": True,
            "is_email_verified": verified,
            "email": email,
        },
    }


def naver_profile(*, uid="Hk3Xq9vYb2TNaverUid", email="naver-fan@example.com", name="홍길동"):
    # GET https://openapi.naver.com/v1/nid/me: the profile sits in a "response" envelope.
    return {
        "resultcode": "00",
        "message": "success",
        "response": {
            "id": uid,
            "nickname": "길동이",
            "name": name,
            "email": email,
            "gender": "M",
            "age": "30-39",
            "birthday": "10-01",
            "profile_image": "https://phinf.pstatic.net/contact/profile.png",
            "birthyear": "1990",
            "mobile": "010-1234-5678",
        },
    }


def google_id_token(*, sub="109876543210987654321", email="google-fan@example.com", verified=True, name="Kim Google"):
    now = int(time.time())
    claims = {
        "iss": "https://accounts.google.com",
        "azp": CLIENT_IDS["google"],
        "aud": CLIENT_IDS["google"],
        "sub": sub,
        "email": email,
        "email_verified": verified,
        "at_hash": "HK6E_P6Dh8Y93mRNtsDB1Q",
        "name": name,
        "picture": "https://lh3.googleusercontent.com/a/photo",
        "given_name": name.split()[0],
        "family_name": name.split()[-1],
        "iat": now,
        "exp": now + 3600,
    }
    # Received straight from Google's token endpoint over TLS, so allauth (per
    # OpenID Connect Core 3.1.3.7) checks iss/aud/exp but not the signature.
    return jwt.encode(claims, "not-googles-key-" + "x" * 32, algorithm="HS256", headers={"kid": "test-kid"})


def token_response(provider, id_token=None):
    if provider == "kakao":
        return {
            "token_type": "bearer",
            "access_token": "kakao-access-token",
            "expires_in": 21599,
            "refresh_token": "kakao-refresh-token",
            "refresh_token_expires_in": 5183999,
            "scope": "account_email profile_nickname",
        }
    if provider == "naver":
        # Naver sends expires_in as a string.
        return {
            "access_token": "naver-access-token",
            "refresh_token": "naver-refresh-token",
            "token_type": "bearer",
            "expires_in": "3600",
        }
    return {
        "access_token": "ya29.google-access-token",
        "expires_in": 3599,
        "scope": "openid https://www.googleapis.com/auth/userinfo.profile https://www.googleapis.com/auth/userinfo.email",
        "token_type": "Bearer",
        "id_token": id_token or google_id_token(),
    }


def mock_provider(rsps, provider, **profile):
    """Register the token endpoint and, for Kakao and Naver, the profile endpoint."""
    if provider == "kakao":
        rsps.post(TOKEN_URLS["kakao"], json=token_response("kakao"))
        rsps.get("https://kapi.kakao.com/v2/user/me", json=kakao_profile(**profile))
    elif provider == "naver":
        rsps.post(TOKEN_URLS["naver"], json=token_response("naver"))
        rsps.get("https://openapi.naver.com/v1/nid/me", json=naver_profile(**profile))
    else:
        rsps.post(TOKEN_URLS["google"], json=token_response("google", google_id_token(**profile)))


def start_login(client, provider):
    """Press the provider's button: a POST that redirects to the provider with a fresh state."""
    response = client.post(reverse(f"{provider}_login") + "?process=login")
    assert response.status_code == 302
    authorize = urlsplit(response.url)
    assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == AUTHORIZE_URLS[provider]
    query = {key: values[0] for key, values in parse_qs(authorize.query).items()}
    assert query["client_id"] == CLIENT_IDS[provider]
    assert query["redirect_uri"] == f"http://testserver{reverse(f'{provider}_callback')}"
    assert query["state"] in client.session["socialaccount_states"]
    return query


def callback(client, provider, **params):
    return client.get(reverse(f"{provider}_callback"), params)


def agree_to_social_sign_up(client, **data):
    """A first sign-in stops at the consent form (SOCIALACCOUNT_AUTO_SIGNUP is off): send
    it with the address the provider gave, as the page fills it in, and the boxes ticked."""
    page = client.get(reverse("socialaccount_signup"))
    assert page.status_code == 200
    email = page.context["form"]["email"].value()
    return client.post(reverse("socialaccount_signup"), {"email": email, **CONSENT, **data})


EXPECTED = {
    "kakao": ("kakao-fan@example.com", "라이언", "4012345678"),
    "naver": ("naver-fan@example.com", "홍길동", "Hk3Xq9vYb2TNaverUid"),
    "google": ("google-fan@example.com", "Kim Google", "109876543210987654321"),
}


@pytest.mark.parametrize("provider", ["kakao", "naver", "google"])
def test_social_sign_up_then_sign_in_again_is_the_same_user(client, social_apps, provider):
    email, name, uid = EXPECTED[provider]
    for attempt in range(2):
        query = start_login(client, provider)
        with responses.RequestsMock() as rsps:  # any other outgoing request fails the test
            mock_provider(rsps, provider)
            response = callback(client, provider, code=f"auth-code-{attempt}", state=query["state"])
            token_request = parse_qs(rsps.calls[0].request.body)
        assert response.status_code == 302, response.content.decode()
        if attempt == 0:
            # The account is made only once the customer has agreed to the terms.
            assert response.url == reverse("socialaccount_signup")
            assert not User.objects.exists()
            response = agree_to_social_sign_up(client)
            assert response.status_code == 302, response.content.decode()
        assert response.url == "/"
        assert token_request["code"] == [f"auth-code-{attempt}"]
        assert token_request["client_id"] == [CLIENT_IDS[provider]]
        assert token_request["client_secret"] == [f"{provider}-client-secret"]
        assert token_request["redirect_uri"] == [query["redirect_uri"]]
        if provider == "google":
            assert query["code_challenge_method"] == "S256"
            assert token_request["code_verifier"]  # PKCE

        user = User.objects.get()
        assert (user.email, user.name) == (email, name)
        assert session_user_id(client) == str(user.pk)
        assert EmailAddress.objects.get(user=user, email=email).verified
        assert SocialAccount.objects.get(user=user, provider=provider).uid == uid
        client.post(reverse("account_logout"))
    assert SocialAccount.objects.count() == 1


@pytest.mark.parametrize("provider", ["kakao", "naver", "google"])
def test_social_login_cancelled_at_the_provider(client, social_apps, provider):
    query = start_login(client, provider)
    with responses.RequestsMock():  # nothing may be fetched
        response = callback(
            client, provider, error="access_denied", error_description="User denied access", state=query["state"]
        )
    assert response.status_code == 302
    page = client.get(response.url).content.decode()
    assert "You decided to cancel logging in" in page
    assert not User.objects.exists()
    assert session_user_id(client) is None


def test_social_provider_error_shows_a_clear_message(client, social_apps):
    query = start_login(client, "kakao")
    with responses.RequestsMock():
        response = callback(client, "kakao", error="server_error", state=query["state"])
    assert response.status_code == 401
    html = response.content.decode()
    assert "We could not sign you in with Kakao. No account was created or changed." in html
    assert not User.objects.exists()


def test_social_token_exchange_failure_creates_no_user(client, social_apps):
    query = start_login(client, "naver")
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URLS["naver"], status=401, json={"error": "invalid_request", "error_description": "no code"})
        response = callback(client, "naver", code="bad-code", state=query["state"])
    assert response.status_code == 401
    assert "We could not sign you in with Naver." in response.content.decode()
    assert not User.objects.exists()


def test_social_callback_with_a_state_from_elsewhere_is_refused(client, social_apps):
    # A callback link crafted by someone else (login CSRF) carries a state this session never issued.
    start_login(client, "google")
    with responses.RequestsMock():
        response = callback(client, "google", code="attacker-code", state="attacker-state")
    assert response.status_code == 401
    assert "We could not sign you in with Google." in response.content.decode()
    assert not User.objects.exists()


def test_kakao_address_it_has_not_verified_must_be_verified_here(client, social_apps, mailoutbox):
    query = start_login(client, "kakao")
    with responses.RequestsMock() as rsps:
        mock_provider(rsps, "kakao", verified=False)
        callback(client, "kakao", code="c", state=query["state"])
    response = agree_to_social_sign_up(client)
    assert response.status_code == 302
    assert response.url == reverse("account_email_verification_sent")
    assert session_user_id(client) is None
    assert not EmailAddress.objects.get(email="kakao-fan@example.com").verified
    assert [m.to for m in mailoutbox] == [["kakao-fan@example.com"]]


@pytest.mark.parametrize("provider", ["kakao", "google"])
def test_verified_provider_email_signs_into_the_registered_account(client, social_apps, verified_user, provider):
    # Kakao and Google vouch for the address (is_email_verified / email_verified).
    query = start_login(client, provider)
    with responses.RequestsMock() as rsps:
        mock_provider(rsps, provider, email=verified_user.email)
        response = callback(client, provider, code="c", state=query["state"])
    assert response.status_code == 302
    assert response.url == "/"
    assert session_user_id(client) == str(verified_user.pk)
    assert User.objects.count() == 1
    # Connected on the way (EMAIL_AUTHENTICATION_AUTO_CONNECT), so it keeps working if the email changes.
    assert SocialAccount.objects.get(provider=provider).user == verified_user


def test_unverified_kakao_email_does_not_take_over_the_registered_account(client, social_apps, verified_user):
    query = start_login(client, "kakao")
    with responses.RequestsMock() as rsps:
        mock_provider(rsps, "kakao", email=verified_user.email, verified=False)
        callback(client, "kakao", code="c", state=query["state"])
    response = agree_to_social_sign_up(client)
    # The enumeration-safe answer: "check your email"; nothing is created or connected.
    assert response.status_code == 302
    assert response.url == reverse("account_email_verification_sent")
    assert session_user_id(client) is None
    assert User.objects.count() == 1
    assert not SocialAccount.objects.exists()


def test_naver_with_a_registered_email_does_not_take_over_that_account(client, social_apps, verified_user, mailoutbox):
    # Naver reports no "verified" flag, so it may not vouch for an existing account.
    query = start_login(client, "naver")
    with responses.RequestsMock() as rsps:
        mock_provider(rsps, "naver", email=verified_user.email)
        callback(client, "naver", code="c", state=query["state"])
    response = agree_to_social_sign_up(client)
    # The answer a new sign-up gets (no enumeration); the owner is emailed instead.
    assert response.status_code == 302
    assert response.url == reverse("account_email_verification_sent")
    assert session_user_id(client) is None
    assert User.objects.count() == 1
    assert not SocialAccount.objects.exists()
    assert [m.to for m in mailoutbox] == [[verified_user.email]]
    assert "already exists" in mailoutbox[0].body


def test_only_configured_providers_get_a_button(client, settings):
    html = client.get(reverse("account_login")).content.decode()
    assert "Continue with" not in html

    providers = {**settings.SOCIALACCOUNT_PROVIDERS}
    providers["naver"] = {**providers["naver"], "APPS": [{"client_id": "n", "secret": "s", "key": ""}]}
    settings.SOCIALACCOUNT_PROVIDERS = providers
    html = client.get(reverse("account_login")).content.decode()
    assert "Continue with Naver" in html
    assert "Continue with Kakao" not in html
    assert "Continue with Google" not in html
    # A button posts (with a CSRF token) straight to allauth's login view.
    assert f'<form method="post" action="{reverse("naver_login")}?process=login">' in html


@pytest.mark.parametrize(
    ("provider", "data", "expected"),
    [
        ("kakao", kakao_profile(nickname="어피치"), "어피치"),
        ("kakao", {"id": 1, "properties": {"nickname": "춘식이"}}, "춘식이"),
        ("naver", naver_profile()["response"], "홍길동"),
        ("naver", {"id": "x", "nickname": "길동이"}, "길동이"),
        ("google", {"sub": "1", "given_name": "Ji", "family_name": "Kim"}, "Ji Kim"),
        ("google", {"sub": "1"}, ""),
    ],
)
def test_profile_name(provider, data, expected):
    assert profile_name(provider=provider, data=data) == expected
