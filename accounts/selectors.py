"""Reads for the customer's own pages: always filtered by the signed-in user."""

import datetime as dt

from allauth.account.models import EmailAddress
from allauth.socialaccount import providers
from allauth.socialaccount.models import SocialAccount
from django.db.models import Q, QuerySet

from reservations.models import Reservation
from reservations.selectors import upcoming_bookings

from .models import User

Status = Reservation.Status


def user_upcoming_bookings(*, user: User, now: dt.datetime, limit: int = 5) -> list[Reservation]:
    """The next `limit` bookings and live holds for performances still to come."""
    return list(upcoming_bookings(user=user, now=now)[:limit])


def user_deletion_blockers(*, user: User, now: dt.datetime) -> QuerySet[Reservation]:
    """Bookings that must be settled before the account can go: paid ones still to
    come (cancel and refund them first, or the customer loses the tickets), ones
    waiting for a virtual-account deposit, and ones with a refund still owed."""
    return (
        Reservation.objects.filter(
            # A virtual account still open could receive a deposit after the account
            # is gone, and money still owed back needs someone to send it to.
            Q(status=Status.CONFIRMED, performance__starts_at__gt=now)
            | Q(payments__status="awaiting_deposit")
            | Q(payments__needs_refund=True),
            user=user,
        )
        .distinct()
        .select_related("performance__event")
        .order_by("performance__starts_at")
    )


def user_email_addresses(*, user: User) -> list[EmailAddress]:
    return list(EmailAddress.objects.filter(user=user).order_by("-primary", "email"))


def user_social_accounts(*, user: User) -> list[dict]:
    """Connected sign-in providers, named without touching the provider apps.

    SocialAccount.get_provider() may look its app up per account (a query each);
    allauth's registry of provider classes is enough to say "Kakao".
    """
    names = dict(providers.registry.as_choices())
    return [
        {"provider": account.provider, "name": names.get(account.provider, account.provider)}
        for account in SocialAccount.objects.filter(user=user).order_by("provider", "pk")
    ]
