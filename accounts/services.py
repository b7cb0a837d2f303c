"""Changes to a customer's own account: consent at sign-up, profile and deletion."""

import datetime as dt
import logging

from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import get_supported_language_variant, ngettext
from django.utils.translation import gettext as _

from notifications.services import notifications_erase_personal_data
from payments.services import payments_erase_personal_data
from reservations.models import Reservation
from reservations.services import ReservationError, reservation_release

from .legal import PRIVACY_VERSION, TERMS_VERSION
from .models import DELETED_EMAIL_DOMAIN, NAME_MAX_LENGTH, User
from .phone import phone_normalize
from .selectors import user_deletion_blockers

logger = logging.getLogger(__name__)


class AccountDeletionRefused(Exception):
    """The account cannot be deleted yet; `message` is written for the customer."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def user_accept_terms(
    *, user: User, marketing_consent: bool, now: dt.datetime | None = None, commit: bool = True
) -> User:
    """Record the consents given at sign-up: the terms of service, the collection and
    use of personal information (with the versions now published) and being 14 or
    older, all at `now`; and, if ticked, the optional marketing consent.

    The sign-up forms refuse to go on without the three required boxes, so calling
    this is the record that they were ticked. Sign-up calls it on the new user before
    allauth first saves it (commit=False), so no account is written without them.
    Leaving marketing unticked withdraws nothing: that is the profile page's to do.
    """
    now = now or timezone.now()
    user.terms_accepted_at = now
    user.terms_version = TERMS_VERSION
    user.privacy_accepted_at = now
    user.privacy_version = PRIVACY_VERSION
    user.age_confirmed_at = now
    fields = ["terms_accepted_at", "terms_version", "privacy_accepted_at", "privacy_version", "age_confirmed_at"]
    if marketing_consent and not user.marketing_consent:
        user.marketing_consent = True
        user.marketing_consent_at = now
        fields += ["marketing_consent", "marketing_consent_at"]
    if commit:
        user.save(update_fields=fields)
    return user


def user_set_language(*, user: User, language: str) -> bool:
    """The language a signed-in customer picked from the menu becomes their preferred one
    (applied at every sign-in, used for their emails). A variant such as en-gb is the
    language offered for it; False if none is."""
    try:
        language = get_supported_language_variant(language)
    except LookupError:
        return False
    if user.preferred_language != language:
        user.preferred_language = language
        user.save(update_fields=["preferred_language"])
    return True


@transaction.atomic
def user_update_profile(
    *,
    user: User,
    name: str,
    phone: str,
    preferred_language: str,
    marketing_consent: bool,
    now: dt.datetime | None = None,
) -> User:
    """Save what the customer may change about themselves.

    Marketing consent is opt-in and recorded with its time; turning it off clears
    the time, so `marketing_consent_at` always says when the current consent was given.
    """
    now = now or timezone.now()
    name = name.strip()
    errors = {}
    if len(name) > NAME_MAX_LENGTH:
        errors["name"] = _("Ensure the name has at most %(max)d characters.") % {"max": NAME_MAX_LENGTH}
    try:
        phone = phone_normalize(phone)
    except ValidationError as exc:
        errors["phone"] = exc.messages
    if preferred_language not in dict(settings.LANGUAGES):
        errors["preferred_language"] = _("Choose one of the languages offered.")
    if errors:
        raise ValidationError(errors)

    user.name = name
    user.phone = phone
    user.preferred_language = preferred_language
    if marketing_consent and not user.marketing_consent:
        user.marketing_consent_at = now
    elif not marketing_consent:
        user.marketing_consent_at = None
    user.marketing_consent = marketing_consent
    user.save(update_fields=["name", "phone", "preferred_language", "marketing_consent", "marketing_consent_at"])
    return user


def _refuse_if_booked(user: User, now: dt.datetime) -> None:
    codes = [r.code for r in user_deletion_blockers(user=user, now=now)]
    if codes:
        raise AccountDeletionRefused(
            ngettext(
                "You have a paid booking for a performance still to come (%(codes)s). "
                "Cancel it first, then delete your account.",
                "You have paid bookings for performances still to come (%(codes)s). "
                "Cancel them first, then delete your account.",
                len(codes),
            )
            % {"codes": ", ".join(codes)}
        )


@transaction.atomic
def user_delete(*, user: User, now: dt.datetime | None = None) -> User:
    """Close a customer's account: erase what identifies them, keep what accounting needs.

    The User row stays: reservations point at it (PROTECT) and, with their lines,
    are the sales records we must keep (전자상거래법: 5 years for contracts and
    payments). Everything that identifies the person goes: email, name, phone,
    password, verified addresses, social connections. Seats they are holding are
    released; a paid booking still to come must be cancelled first, because
    deleting would otherwise throw away tickets (and a refund) they paid for.
    """
    now = now or timezone.now()
    if user.is_staff or user.is_superuser:
        raise AccountDeletionRefused(_("Staff accounts are closed by an administrator, not from this page."))

    # reservation_hold locks the same row first, so no new hold can start while the
    # account is going away.
    User.objects.select_for_update().filter(pk=user.pk).first()
    _refuse_if_booked(user, now)

    live = Reservation.objects.filter(user=user, status__in=Reservation.LIVE_HOLD_STATUSES).order_by("pk")
    for reservation in live:
        try:
            reservation_release(reservation=reservation, actor=user, reason="account deleted", now=now)
        except ReservationError as exc:
            # Already expired (its seats are free either way) or moved on meanwhile;
            # a payment that confirmed it is caught by the check below.
            logger.info("account %s deletion: reservation %s not released: %s", user.pk, reservation.code, exc)
    # A payment may have confirmed one of those holds while we were working.
    _refuse_if_booked(user, now)

    payments_erase_personal_data(user=user)
    notifications_erase_personal_data(user=user)
    # The booker named at checkout is this person too (the booking itself is kept).
    Reservation.objects.filter(user=user).update(booker_name="", booker_phone="")
    EmailAddress.objects.filter(user=user).delete()  # and their confirmations
    SocialAccount.objects.filter(user=user).delete()  # and their tokens
    user.email = f"deleted-{user.pk}@{DELETED_EMAIL_DOMAIN}"
    user.name = ""
    user.phone = ""
    user.preferred_language = User._meta.get_field("preferred_language").default
    user.marketing_consent = False
    user.marketing_consent_at = None
    # The sign-up consents stay (terms_accepted_at, privacy_accepted_at, their
    # versions, age_confirmed_at): they are times and version strings, nothing that
    # identifies the person, and they are the evidence that the contracts behind the
    # sales records we keep were made on terms the customer agreed to.
    # A new password hash also ends every other session: Django checks the
    # session's stored hash against it on each request.
    user.set_unusable_password()
    user.is_active = False
    user.deleted_at = now
    user.save()
    return user
