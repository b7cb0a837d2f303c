"""The sign-in backends load the signed-in user as Django's own would."""

import pytest
from django.contrib.auth import backends as django_backends

from accounts.backends import AuthenticationBackend, ModelBackend

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("backend", [ModelBackend(), AuthenticationBackend()])
def test_get_user_matches_djangos(backend, alice):
    ours = backend.get_user(alice.pk)
    djangos = django_backends.ModelBackend().get_user(alice.pk)

    assert {f.attname: getattr(ours, f.attname) for f in type(ours)._meta.concrete_fields} == {
        f.attname: getattr(djangos, f.attname) for f in type(djangos)._meta.concrete_fields
    }
    assert ours.get_session_auth_hash() == djangos.get_session_auth_hash()


@pytest.mark.parametrize("backend", [ModelBackend(), AuthenticationBackend()])
def test_an_inactive_or_unknown_user_is_nobody(backend, alice):
    assert backend.get_user(alice.pk + 1000) is None
    alice.is_active = False
    alice.save()
    assert backend.get_user(alice.pk) is None


def test_a_deactivated_customer_is_signed_out_on_the_next_request(client, alice):
    client.force_login(alice)
    assert client.get("/my/").status_code == 200
    alice.is_active = False
    alice.save()

    response = client.get("/my/")

    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
