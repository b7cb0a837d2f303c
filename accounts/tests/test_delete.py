"""Account deletion: personal data erased, booking records kept, paid future bookings first."""

import datetime as dt

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount, SocialToken
from django.urls import reverse
from django.utils import timezone

from accounts.legal import PRIVACY_VERSION, TERMS_VERSION
from accounts.models import User
from accounts.services import AccountDeletionRefused, user_accept_terms, user_delete
from events.tests.factories import UserFactory
from reservations.models import InventoryItem, Reservation, ReservationLine
from reservations.services import reservation_cancel

from .conftest import CONSENT, PASSWORD, book, seat

pytestmark = pytest.mark.django_db

URL = reverse("accounts:delete")
NEW_PASSWORD = "tiger-lily-2049"


def confirm(client, **data):
    return client.post(URL, {"password": PASSWORD, "confirm": "on", **data})


def assert_anonymised(user: User):
    user.refresh_from_db()
    assert user.email == f"deleted-{user.pk}@deleted.invalid"
    assert (user.name, user.phone) == ("", "")
    assert not user.has_usable_password()
    assert not user.is_active
    assert not user.marketing_consent and user.marketing_consent_at is None
    assert user.deleted_at is not None
    assert not EmailAddress.objects.filter(user=user).exists()
    assert not SocialAccount.objects.filter(user=user).exists()


# --- Access ------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in_and_back(client):
    for method in (client.get, client.post):
        response = method(URL)
        assert response.status_code == 302
        assert response.url == f"{reverse('account_login')}?next={URL}"


def test_the_page_explains_and_asks_for_the_password(client, customer):
    client.force_login(customer)
    html = client.get(URL).content.decode()
    assert 'type="password"' in html
    assert 'autocomplete="current-password"' in html
    assert 'name="email"' not in html
    assert "keeps records of your past bookings" in html
    assert 'class="button button-danger" type="submit"' in html


# --- Confirming who is asking ------------------------------------------------------


def test_wrong_password_deletes_nothing(client, customer):
    client.force_login(customer)
    response = confirm(client, password="not-my-password")
    assert response.status_code == 200
    assert "The password is not correct." in response.content.decode()
    customer.refresh_from_db()
    assert customer.is_active and customer.email == "jiwoo@example.com"
    assert client.session.get("_auth_user_id") == str(customer.pk)


def test_the_box_must_be_ticked(client, customer):
    client.force_login(customer)
    response = client.post(URL, {"password": PASSWORD})
    assert "Tick the box to confirm." in response.content.decode()
    assert User.objects.get(pk=customer.pk).is_active


def test_password_guessing_is_rate_limited(client, customer, settings):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "reauthenticate": "3/m/user"}
    client.force_login(customer)
    for _ in range(3):
        assert confirm(client, password="guess").status_code == 200
    response = confirm(client)  # even the right password, now
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()
    assert User.objects.get(pk=customer.pk).is_active


def test_a_social_only_account_confirms_with_its_email(client, customer):
    customer.set_unusable_password()
    customer.save()
    account = SocialAccount.objects.create(user=customer, provider="kakao", uid="4012345678")
    client.force_login(customer)
    html = client.get(URL).content.decode()
    assert 'name="email"' in html and 'type="password"' not in html

    response = client.post(URL, {"email": "someone@example.com", "confirm": "on"})
    assert "This is not the address of your account." in response.content.decode()
    assert User.objects.get(pk=customer.pk).is_active

    response = client.post(URL, {"email": "JIWOO@example.com", "confirm": "on"})
    assert response.status_code == 302
    assert_anonymised(customer)
    assert not SocialAccount.objects.filter(pk=account.pk).exists()


# --- What deletion does ------------------------------------------------------------


def test_deleting_erases_personal_data_keeps_bookings_and_signs_out(client, customer, performance):
    customer.phone = "+821012345678"
    customer.marketing_consent = True
    customer.marketing_consent_at = performance.sales_open_at
    customer.save()
    SocialAccount.objects.create(user=customer, provider="naver", uid="n-uid")
    later = performance.starts_at + dt.timedelta(days=1)
    past_booking = book(customer, performance, seat(1))  # the performance is over by `later`
    Reservation.objects.filter(pk=past_booking.pk).update(booker_name="김예매", booker_phone="+821012345678")
    cancelled = book(customer, performance, seat(2))
    reservation_cancel(reservation=cancelled, actor=customer)
    client.force_login(customer)

    user_delete(user=customer, now=later)

    assert_anonymised(customer)
    # The records stay, pointing at the anonymised customer.
    assert set(Reservation.objects.filter(user=customer).values_list("code", flat=True)) == {
        past_booking.code,
        cancelled.code,
    }
    assert ReservationLine.objects.filter(reservation=past_booking).count() == 1
    assert not Reservation.objects.filter(user=customer).exclude(booker_name="", booker_phone="").exists()
    # Their other sessions end too: the session no longer matches the password hash.
    assert client.get(reverse("accounts:my_page")).status_code == 302


def test_the_page_deletes_signs_out_and_says_goodbye(client, customer):
    client.force_login(customer)
    response = confirm(client)
    assert response.status_code == 302
    assert response.url == reverse("events:home")
    assert client.session.get("_auth_user_id") is None
    home = client.get(response.url).content.decode()
    assert "Your account has been deleted." in home
    assert "Sign in" in home
    assert_anonymised(customer)


def test_seats_being_held_are_released(client, customer, performance):
    from reservations.services import reservation_await_payment
    from reservations.tests.factories import hold

    held = hold(customer, performance, seat(1))
    paying = reservation_await_payment(reservation=hold(customer, performance, seat(2)))
    client.force_login(customer)
    assert confirm(client).status_code == 302

    for reservation in (held, paying):
        reservation.refresh_from_db()
        assert reservation.status == "released"
        last = reservation.transitions.last()
        assert (last.reason, last.actor_id) == ("account deleted", customer.pk)
    assert not InventoryItem.objects.filter(reservation__user=customer, status="held").exists()


def test_an_expired_hold_does_not_stop_deletion(customer, performance):
    from reservations.tests.factories import hold

    expired = hold(customer, performance, seat(1), now=performance.sales_open_at + dt.timedelta(minutes=1))
    user_delete(user=customer)
    expired.refresh_from_db()
    assert expired.status == "expired"
    assert_anonymised(customer)


def test_refused_while_a_paid_booking_is_still_to_come_then_allowed_after_cancelling(client, customer, performance):
    booking = book(customer, performance, seat(1), seat(2))
    client.force_login(customer)

    page = client.get(URL).content.decode()
    assert "Cancel it first" in page
    assert booking.code in page
    assert 'type="password"' not in page  # no form to fill in while it cannot work

    response = confirm(client)  # posted anyway (an old tab)
    assert response.status_code == 409
    assert f"You have a paid booking for a performance still to come ({booking.code})" in response.content.decode()
    customer.refresh_from_db()
    assert customer.is_active and customer.email == "jiwoo@example.com"
    assert EmailAddress.objects.filter(user=customer).exists()
    booking.refresh_from_db()
    assert booking.status == "confirmed"

    reservation_cancel(reservation=booking, actor=customer)
    assert confirm(client).status_code == 302
    assert_anonymised(customer)


def test_refusal_changes_nothing_not_even_holds(customer, performance):
    from reservations.tests.factories import hold

    booking = book(customer, performance, seat(1))
    held = hold(customer, performance, seat(2))
    with pytest.raises(AccountDeletionRefused) as exc:
        user_delete(user=customer)
    assert booking.code in exc.value.message
    held.refresh_from_db()
    assert held.status == "held"


def test_staff_accounts_are_not_deleted_here(client, customer):
    customer.is_staff = True
    customer.save()
    with pytest.raises(AccountDeletionRefused):
        user_delete(user=customer)
    client.force_login(customer)
    response = confirm(client)
    assert response.status_code == 409
    assert "Staff accounts are closed by an administrator" in response.content.decode()
    assert User.objects.get(pk=customer.pk).is_active


# --- Afterwards --------------------------------------------------------------------


def test_old_credentials_no_longer_sign_in(client, customer):
    user_delete(user=customer)
    response = client.post(reverse("account_login"), {"login": "jiwoo@example.com", "password": PASSWORD})
    assert response.status_code == 200
    assert "The email address and/or password you specified are not correct." in response.content.decode()
    assert client.session.get("_auth_user_id") is None
    # Nor through the admin's own form (ModelBackend refuses inactive users).
    assert not client.login(email=f"deleted-{customer.pk}@deleted.invalid", password=PASSWORD)


def test_the_address_can_sign_up_again_as_a_new_customer(client, customer, performance, mailoutbox):
    old = book(customer, performance, seat(1))
    reservation_cancel(reservation=old, actor=customer)
    user_delete(user=customer)

    response = client.post(
        reverse("account_signup"),
        {"email": "jiwoo@example.com", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD, **CONSENT},
    )
    assert response.status_code == 302
    fresh = User.objects.get(email="jiwoo@example.com")
    assert fresh.pk != customer.pk
    assert fresh.is_active and fresh.name == ""
    # A real sign-up: a confirmation link, not an "already registered" note.
    assert "/accounts/confirm-email/" in mailoutbox[-1].body
    # The old booking belongs to the anonymised account, not the new one.
    assert Reservation.objects.get(pk=old.pk).user_id == customer.pk
    assert not Reservation.objects.filter(user=fresh).exists()


def test_the_sign_up_consents_are_kept_as_evidence(customer):
    # Times and versions only, nothing that identifies the person: the kept sales
    # records were made on terms the customer agreed to, and this shows which.
    agreed = timezone.now() - dt.timedelta(days=400)
    user_accept_terms(user=customer, marketing_consent=True, now=agreed)
    user_delete(user=customer)
    assert_anonymised(customer)  # marketing consent is withdrawn with the account
    assert (customer.terms_accepted_at, customer.privacy_accepted_at, customer.age_confirmed_at) == (agreed,) * 3
    assert (customer.terms_version, customer.privacy_version) == (TERMS_VERSION, PRIVACY_VERSION)


def test_social_tokens_go_with_the_social_accounts(customer):
    from allauth.socialaccount.models import SocialApp

    app = SocialApp.objects.create(provider="kakao", name="Kakao", client_id="id", secret="s")
    account = SocialAccount.objects.create(user=customer, provider="kakao", uid="1")
    SocialToken.objects.create(app=app, account=account, token="access")
    user_delete(user=customer)
    assert not SocialToken.objects.exists()


def test_deleting_one_account_leaves_others_alone(customer):
    other = UserFactory(email="other@example.com", name="다른 사람")
    EmailAddress.objects.create(user=other, email=other.email, verified=True, primary=True)
    SocialAccount.objects.create(user=other, provider="kakao", uid="other")
    user_delete(user=customer)
    other.refresh_from_db()
    assert (other.email, other.name, other.is_active) == ("other@example.com", "다른 사람", True)
    assert EmailAddress.objects.filter(user=other).exists()
    assert SocialAccount.objects.filter(user=other).exists()
