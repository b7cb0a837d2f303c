"""A newcomer in a real browser: sign up, confirm through the email, see My page, edit it;
and the sign-up form's "agree to all" box."""

import re

import pytest
from django.core import mail
from django.urls import reverse

from accounts.legal import PRIVACY_VERSION, TERMS_VERSION
from accounts.models import User

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "tiger-lily-2049"


def test_sign_up_verify_by_email_and_see_my_page(live_server, page):
    # live_server serves from another thread of this process: the locmem backend's
    # outbox is shared, so the test reads the email allauth sent.
    mail.outbox = []
    page.goto(live_server.url)
    page.get_by_role("link", name="Sign up").click()
    page.get_by_label("Email:", exact=True).fill("newcomer@example.com")
    page.get_by_label("Password:", exact=True).fill(PASSWORD)
    page.get_by_label("Password (again):", exact=True).fill(PASSWORD)
    page.get_by_label("I agree to the terms of service").check()
    page.get_by_label("I agree to the collection and use of my personal information").check()
    page.get_by_label("I am 14 or older").check()
    page.locator("form.form-signup").get_by_role("button", name="Sign Up").click()

    page.wait_for_url("**/accounts/confirm-email/")
    assert page.get_by_role("heading", name="Verify Your Email Address").is_visible()
    assert [m.to for m in mail.outbox] == [["newcomer@example.com"]]
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", mail.outbox[0].body).group(0)
    assert link.startswith(live_server.url)

    page.goto(link)
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(live_server.url + "/")
    assert page.get_by_role("button", name="Sign out").is_visible()

    page.get_by_role("link", name="My page").click()
    page.wait_for_url("**/my/")
    assert page.get_by_role("heading", name="My page", level=1).is_visible()
    profile = page.locator("section", has=page.get_by_role("heading", name="Profile"))
    assert "newcomer@example.com" in profile.inner_text()
    assert "English" in profile.inner_text()  # the language they signed up in

    page.get_by_role("link", name="Edit profile").click()
    page.get_by_label("Name").fill("김새봄")
    page.get_by_label("Phone number").fill("010-12")
    page.get_by_role("button", name="Save").click()
    assert page.get_by_text("Enter a valid phone number").is_visible()
    page.get_by_label("Phone number").fill("010-2468-1357")
    page.get_by_label("Email me about new shows").check()
    page.get_by_role("button", name="Save").click()

    page.wait_for_url("**/my/")
    assert page.get_by_text("Your profile has been saved.").is_visible()
    profile_text = profile.inner_text()
    assert "김새봄" in profile_text and "010-2468-1357" in profile_text
    user = User.objects.get(email="newcomer@example.com")
    assert (user.name, user.phone, user.marketing_consent) == ("김새봄", "+821024681357", True)
    assert user.marketing_consent_at is not None


def test_agree_to_all_ticks_every_box_and_follows_them(live_server, page):
    mail.outbox = []
    page.goto(live_server.url + reverse("account_signup"))
    boxes = [
        page.get_by_label(label)
        for label in (
            "I agree to the terms of service",
            "I agree to the collection and use of my personal information",
            "I am 14 or older",
            "Email me about new shows",
        )
    ]
    everything = page.get_by_label("Agree to all")
    everything.check()
    assert all(box.is_checked() for box in boxes)
    boxes[3].uncheck()  # the optional one
    assert not everything.is_checked()
    boxes[3].check()
    assert everything.is_checked()

    page.get_by_label("Email:", exact=True).fill("everything@example.com")
    page.get_by_label("Password:", exact=True).fill(PASSWORD)
    page.get_by_label("Password (again):", exact=True).fill(PASSWORD)
    page.locator("form.form-signup").get_by_role("button", name="Sign Up").click()
    page.wait_for_url("**/accounts/confirm-email/")

    user = User.objects.get(email="everything@example.com")
    assert user.terms_version == TERMS_VERSION and user.privacy_version == PRIVACY_VERSION
    assert user.age_confirmed_at is not None
    assert user.marketing_consent and user.marketing_consent_at == user.terms_accepted_at
