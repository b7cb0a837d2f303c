import copy

import pytest
from allauth.account.models import EmailAddress
from django.core.cache import cache

from events.tests.factories import UserFactory

PASSWORD = "pass-1234-word"  # UserFactory's
# The boxes every sign-up must tick (accounts.forms.ConsentFields); marketing is optional.
CONSENT = {"terms": "on", "privacy": "on", "age": "on"}


@pytest.fixture(autouse=True)
def _fresh_cache():
    # allauth keeps rate-limit counters and used id_tokens in the cache; a test
    # must not inherit another test's failed logins.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def verified_user(db):
    """A customer who signed up and confirmed their address."""
    user = UserFactory(email="minji@example.com", name="김민지")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


@pytest.fixture
def social_apps(settings):
    """Kakao, Naver and Google configured the way production does it: from settings."""
    providers = copy.deepcopy(settings.SOCIALACCOUNT_PROVIDERS)
    for provider in ("kakao", "naver", "google"):
        providers[provider]["APPS"] = [
            {"client_id": f"{provider}-client-id", "secret": f"{provider}-client-secret", "key": ""}
        ]
    settings.SOCIALACCOUNT_PROVIDERS = providers
    return providers


@pytest.fixture
def customer(db):
    """A signed-up customer with a password and a verified address."""
    user = UserFactory(email="jiwoo@example.com", name="이지우")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def seat(n: int) -> str:
    """The label of seat n in row A of the root conftest's `hall`."""
    return f"1층 A구역 A열 {n}번"


def book(user, performance, *labels):
    """A paid booking: held, then confirmed as a completed payment would."""
    from reservations.services import reservation_confirm
    from reservations.tests.factories import hold

    return reservation_confirm(reservation=hold(user, performance, *labels))
