"""allauth hooks: the few places where our site and user model differ from allauth's defaults."""

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from . import services
from .forms import ConsentFields
from .language import language_activate, language_apply
from .models import NAME_MAX_LENGTH


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

    def new_user(self, request):
        # Email and social sign-ups both come through here. The language the visitor
        # was browsing in is their preference until they choose another, so signing
        # in later does not switch an English-speaking customer to Korean.
        user = super().new_user(request)
        language = translation.get_language()
        if language in dict(settings.LANGUAGES):
            user.preferred_language = language
        return user

    def save_user(self, request, user, form, commit=True):
        # Both sign-up forms (email, and a first Kakao/Naver/Google sign-in) carry the
        # consent boxes and are valid only with the required ones ticked. They are
        # recorded here, before allauth first writes the row, so that no account
        # exists without them even if a later step of the sign-up fails.
        if isinstance(form, ConsentFields):
            marketing_consent = form.cleaned_data["marketing_consent"]
            services.user_accept_terms(user=user, marketing_consent=marketing_consent, commit=False)
        return super().save_user(request, user, form, commit=commit)

    def post_login(self, request, user, **kwargs):
        # Every allauth sign-in (password, email confirmation, Kakao/Naver/Google)
        # ends here. Activate first so the "signed in" message is in their language.
        language_activate(user.preferred_language)
        response = super().post_login(request, user, **kwargs)
        language_apply(response=response, language=user.preferred_language)
        return response


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def populate_user(self, request, sociallogin, data):
        # allauth fills first_name/last_name, which our user does not have; our
        # single `name` field takes the provider's display name instead.
        user = super().populate_user(request, sociallogin, data)
        if not user.name:
            user.name = profile_name(provider=sociallogin.account.provider, data=sociallogin.account.extra_data)
        return user
