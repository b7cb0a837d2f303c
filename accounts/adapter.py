"""allauth hooks: the few places where our site and user model differ from allauth's defaults."""

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.utils.translation import gettext as _

from .models import User

NAME_MAX_LENGTH = User._meta.get_field("name").max_length


def profile_name(*, provider: str, data: dict) -> str:
    """The display name in a provider's profile response, or "" when it has none.

    `data` is what allauth keeps as the social account's extra_data: Kakao's
    /v2/user/me body, the `response` object of Naver's /v1/nid/me, Google's
    id_token claims (or its userinfo).
    """
    if provider == "kakao":
        profile = (data.get("kakao_account") or {}).get("profile") or {}
        name = profile.get("nickname") or (data.get("properties") or {}).get("nickname")
    elif provider == "naver":
        name = data.get("name") or data.get("nickname")
    elif provider == "google":
        name = data.get("name") or " ".join(filter(None, [data.get("given_name"), data.get("family_name")]))
    else:
        name = data.get("name")
    return (name or "").strip()[:NAME_MAX_LENGTH]


class AccountAdapter(DefaultAccountAdapter):
    def format_email_subject(self, subject: str) -> str:
        # allauth prefixes the host name ("[tickets.example.com] ..."); customers know our name.
        return f"[{_('Ticketing')}] {subject}"


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def populate_user(self, request, sociallogin, data):
        # allauth fills first_name/last_name, which our user does not have; our
        # single `name` field takes the provider's display name instead.
        user = super().populate_user(request, sociallogin, data)
        if not user.name:
            user.name = profile_name(provider=sociallogin.account.provider, data=sociallogin.account.extra_data)
        return user
