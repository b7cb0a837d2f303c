"""Security settings the accounts issue asks for, checked as they are configured.

Session rotation on login, enumeration and login throttling are exercised through
the real flows in test_signin.py; this module covers what only shows in settings
or in the password rules.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from accounts.models import User

from .conftest import CONSENT

BASE_DIR = Path(settings.BASE_DIR)


def production_settings(*names: str) -> dict:
    """The named settings as production computes them (DEBUG=0), in a fresh process."""
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "production-check-0123456789-abcdefghijklmnopqrstuvwxyz",
        "ALLOWED_HOSTS": "tickets.example.com",
        "IAMPORT_API_KEY": "production-check-key",
        "IAMPORT_API_SECRET": "production-check-secret",
        "DJANGO_SETTINGS_MODULE": "ticketing.settings",
    }
    code = (
        "import json, django; from django.conf import settings; django.setup(); "
        f"print(json.dumps({{n: getattr(settings, n) for n in {list(names)!r}}}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_production_cookies_are_secure():
    values = production_settings(
        "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "SECURE_SSL_REDIRECT"
    )
    assert values == dict.fromkeys(values, True)


def test_enumeration_prevention_and_verification_are_on():
    assert settings.ACCOUNT_PREVENT_ENUMERATION is True
    assert settings.ACCOUNT_EMAIL_VERIFICATION == "mandatory"
    assert "login_failed" in settings.ACCOUNT_RATE_LIMITS


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short1!", "This password is too short."),
        ("password123", "This password is too common."),
        ("83920174651", "This password is entirely numeric."),
        ("newcomer-example", "The password is too similar to the email address."),
    ],
)
def test_sign_up_enforces_the_password_validators(client, password, message):
    response = client.post(
        reverse("account_signup"),
        {"email": "newcomer@example.com", "password1": password, "password2": password, **CONSENT},
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not User.objects.filter(email="newcomer@example.com").exists()
