"""The sign-in backends, loading the signed-in user with a statement compiled once.

Every signed-in request loads its user. Django's backends do it through the ORM, which
compiles the lookup afresh each time (~0.3 ms of CPU, more than the database needs to
answer it); on a flash sale that is paid by every hold (docs/benchmarks.md). Signing in
itself is unchanged.
"""

from allauth.account import auth_backends
from django.contrib.auth import backends, get_user_model

from ticketing.compiled import RowFetch

_USER_BY_ID = RowFetch(get_user_model(), where="t.id = %s")


class _CompiledGetUser:
    def get_user(self, user_id):
        user = _USER_BY_ID.one([user_id])
        return user if user is not None and self.user_can_authenticate(user) else None


class ModelBackend(_CompiledGetUser, backends.ModelBackend):
    """Django's: the admin's own sign-in form."""


class AuthenticationBackend(_CompiledGetUser, auth_backends.AuthenticationBackend):
    """allauth's: email and password, and the social accounts."""
