from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .phone import E164_MAX_LENGTH, phone_display, validate_e164


class UserManager(DjangoUserManager):
    """Users are identified by email; there is no username."""

    use_in_migrations = True

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        if not extra_fields["is_staff"] or not extra_fields["is_superuser"]:
            raise ValueError("A superuser must have is_staff=True and is_superuser=True.")
        return self._create_user(email, password, **extra_fields)


# A deleted account keeps its row (bookings point at it) under an address at this
# domain, which can never receive mail (RFC 2606).
DELETED_EMAIL_DOMAIN = "deleted.invalid"


class User(AbstractUser):
    """A customer or staff member. Korean sites sign in by email, so email is the login."""

    username = None
    first_name = None
    last_name = None
    email = models.EmailField(_("email address"), unique=True)
    name = models.CharField(_("name"), max_length=100, blank=True)
    # E.164 ("+821012345678"); accounts.phone turns what people type into this.
    phone = models.CharField(_("phone number"), max_length=E164_MAX_LENGTH, blank=True, validators=[validate_e164])
    preferred_language = models.CharField(
        _("preferred language"), max_length=8, choices=settings.LANGUAGES, default="ko"
    )
    # Opt-in only (정보통신망법 제50조): off until the customer ticks it, and we keep
    # when they did. accounts.services.user_update_profile keeps the pair consistent.
    marketing_consent = models.BooleanField(_("marketing emails"), default=False)
    marketing_consent_at = models.DateTimeField(_("marketing consent given"), null=True, blank=True)
    # The consents every sign-up requires (개인정보 보호법 제22조: each asked for on
    # its own): when they were given and to which version of the text (accounts.legal).
    # Empty for accounts made before sign-up asked, and for staff made with
    # createsuperuser; accounts.services.user_accept_terms sets them together.
    terms_accepted_at = models.DateTimeField(_("terms of service accepted"), null=True, blank=True)
    terms_version = models.CharField(_("terms of service version"), max_length=20, blank=True)
    privacy_accepted_at = models.DateTimeField(_("privacy consent given"), null=True, blank=True)
    privacy_version = models.CharField(_("privacy policy version"), max_length=20, blank=True)
    age_confirmed_at = models.DateTimeField(_("confirmed 14 or older"), null=True, blank=True)
    # Deleted accounts keep their row (bookings point at it, PROTECT) with the
    # personal data erased; see accounts.services.user_delete.
    deleted_at = models.DateTimeField(_("account deleted"), null=True, blank=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.CheckConstraint(
                condition=Q(marketing_consent=True, marketing_consent_at__isnull=False)
                | Q(marketing_consent=False, marketing_consent_at__isnull=True),
                name="user_marketing_consent_has_timestamp",
            ),
            # A consent's time and the version agreed to are one record: both or neither.
            models.CheckConstraint(
                condition=Q(terms_accepted_at__isnull=True, terms_version="")
                | (Q(terms_accepted_at__isnull=False) & ~Q(terms_version="")),
                name="user_terms_accepted_has_version",
            ),
            models.CheckConstraint(
                condition=Q(privacy_accepted_at__isnull=True, privacy_version="")
                | (Q(privacy_accepted_at__isnull=False) & ~Q(privacy_version="")),
                name="user_privacy_accepted_has_version",
            ),
        ]

    def __str__(self):
        return self.email

    def get_full_name(self):
        return self.name or self.email

    def get_short_name(self):
        return self.name or self.email.split("@")[0]

    @property
    def phone_display(self) -> str:
        return phone_display(self.phone)


NAME_MAX_LENGTH = User._meta.get_field("name").max_length
