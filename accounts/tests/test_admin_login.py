import pytest
from django.core.cache import cache

from events.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clean_counters():
    cache.clear()
    yield
    cache.clear()


def test_staff_can_sign_in_to_the_admin(client):
    UserFactory(email="staff@example.com", is_staff=True)
    credentials = {"username": "staff@example.com", "password": "pass-1234-word"}
    response = client.post("/admin/login/?next=/admin/", credentials)
    assert response.status_code == 302 and response.url == "/admin/"


def test_admin_password_guessing_is_throttled(client, settings):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login_failed": "3/m/ip,3/300s/key"}
    UserFactory(email="staff@example.com", is_staff=True)
    for _ in range(3):
        response = client.post("/admin/login/", {"username": "staff@example.com", "password": "wrong"})
        assert response.status_code == 200  # the form again, with its error
    blocked = client.post("/admin/login/", {"username": "staff@example.com", "password": "pass-1234-word"})
    assert blocked.status_code == 429
    assert "Too many attempts" in blocked.content.decode()
    assert "_auth_user_id" not in client.session
