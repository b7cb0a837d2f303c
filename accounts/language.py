"""A customer's preferred language, applied to their browser.

Since Django 4.0 the chosen language lives only in the `django_language` cookie
(settings.LANGUAGE_COOKIE_NAME), which LocaleMiddleware reads on every request; the
session no longer carries it. So applying a preference means activating it for the
rest of this request (messages are rendered now) and setting that cookie on the
response, exactly as django.views.i18n.set_language does.
"""

from django.conf import settings
from django.http import HttpResponseBase
from django.utils import translation


def language_apply(*, response: HttpResponseBase, language: str) -> None:
    """Keep `language` for the browser's next requests (language_activate does this one)."""
    if not translation.check_for_language(language):
        return
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )


def language_activate(language: str) -> None:
    """For messages written before the response exists."""
    if translation.check_for_language(language):
        translation.activate(language)
