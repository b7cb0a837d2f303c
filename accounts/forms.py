from allauth.account import forms as allauth_forms
from allauth.socialaccount import forms as socialaccount_forms
from django import forms
from django.conf import settings
from django.contrib.auth import forms as auth_forms
from django.core.exceptions import ValidationError
from django.utils.translation import get_language_info
from django.utils.translation import gettext_lazy as _

from .models import NAME_MAX_LENGTH, User
from .phone import phone_display, phone_normalize


class PhoneNumberField(forms.CharField):
    """Takes a number as people type it ("010-1234-5678") and cleans it to E.164."""

    widget = forms.TextInput(attrs={"type": "tel", "autocomplete": "tel", "inputmode": "tel"})

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 32)  # room for spaces, dashes and brackets
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_python(self, value):
        return phone_normalize(super().to_python(value))

    def prepare_value(self, value):
        # Stored numbers are shown the way they are typed; what the customer just
        # typed (perhaps wrong) is shown back unchanged.
        if isinstance(value, str) and value.startswith("+"):
            try:
                return phone_display(phone_normalize(value))
            except ValidationError:
                return value
        return value


class UserCreationForm(auth_forms.UserCreationForm):
    class Meta:
        model = User
        fields = ["email", "name"]


class UserChangeForm(auth_forms.UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"
        field_classes = {"phone": PhoneNumberField}


class LoginForm(allauth_forms.LoginForm):
    """allauth's login form; "Remember me" keeps the session past the browser's closing."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "remember" in self.fields:
            # allauth's Korean catalogue says "save my ID", a different feature.
            self.fields["remember"].label = _("Keep me signed in")


class ConsentFields(forms.Form):
    """The boxes of both sign-up forms, email and Kakao/Naver/Google: no account is
    made without the three required ones (개인정보 보호법 제22조 asks for each consent
    on its own, with what it covers shown beside it: templates/accounts/_consent.html).
    accounts.adapter records them, with the versions agreed to, as the user is saved."""

    terms = forms.BooleanField(
        label=_("I agree to the terms of service (required)"),
        error_messages={"required": _("Agree to the terms of service to sign up.")},
    )
    privacy = forms.BooleanField(
        label=_("I agree to the collection and use of my personal information (required)"),
        error_messages={"required": _("Agree to the collection and use of your personal information to sign up.")},
    )
    # Under 14 a guardian must consent to the collection of personal information
    # as well (개인정보 보호법 제22조의2); this site has no way to take that consent,
    # so it signs up only customers who confirm they are 14 or older.
    age = forms.BooleanField(
        label=_("I am 14 or older (required)"),
        error_messages={
            "required": _(
                "You must be 14 or older to sign up. Under 14, a parent or guardian must consent too, "
                "which we cannot take online."
            )
        },
    )
    marketing_consent = forms.BooleanField(
        label=_("Email me about new shows, presales and offers (optional)"),
        required=False,
        help_text=_("You can turn this off on your profile page at any time."),
    )

    consent_field_names = ("terms", "privacy", "age", "marketing_consent")

    def consent_fields(self):
        """The boxes, for the template that shows each with what it covers."""
        return [self[name] for name in self.consent_field_names]


class SignupForm(ConsentFields, allauth_forms.SignupForm):
    """allauth's email sign-up form, with the consent boxes after the password."""

    field_order = ["email", "password1", "password2", *ConsentFields.consent_field_names]


class SocialSignupForm(ConsentFields, socialaccount_forms.SignupForm):
    """What a first Kakao/Naver/Google sign-in asks before the account is made: the
    address the provider gave (to confirm or change) and the consent boxes."""


def _language_choices():
    # Each language in its own name, as the header's switcher shows them.
    return [(code, get_language_info(code)["name_local"]) for code, _name in settings.LANGUAGES]


class ProfileForm(forms.Form):
    """What a customer may change about themselves. A plain form, not a ModelForm:
    a ModelForm would copy invalid input onto request.user while validating."""

    name = forms.CharField(label=_("Name"), max_length=NAME_MAX_LENGTH, required=False)
    phone = PhoneNumberField(
        label=_("Phone number"),
        help_text=_("For questions about your bookings. Numbers abroad start with + and the country code."),
    )
    preferred_language = forms.ChoiceField(label=_("Language"), choices=_language_choices)
    marketing_consent = forms.BooleanField(
        label=_("Email me about new shows, presales and offers"),
        required=False,
        help_text=_("Optional. You can turn this off here at any time."),
    )

    @classmethod
    def for_user(cls, user: User, data=None) -> "ProfileForm":
        initial = {
            "name": user.name,
            "phone": user.phone,
            "preferred_language": user.preferred_language,
            "marketing_consent": user.marketing_consent,
        }
        return cls(data, initial=initial)


class AccountDeleteForm(forms.Form):
    """Proof that the person at the keyboard owns the account: the password, or,
    for an account that only signs in through Kakao/Naver/Google, its email address."""

    password = forms.CharField(
        label=_("Current password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    email = forms.EmailField(label=_("Your email address"), widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    confirm = forms.BooleanField(
        label=_("I understand that my account cannot be restored."),
        error_messages={"required": _("Tick the box to confirm.")},
    )

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        if user.has_usable_password():
            del self.fields["email"]
        else:
            del self.fields["password"]
            self.fields["email"].help_text = _("Type the address you sign in with, to confirm.")

    def clean_password(self):
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise ValidationError(_("The password is not correct."), code="wrong_password")
        return password

    def clean_email(self):
        email = self.cleaned_data["email"]
        if email.strip().casefold() != self.user.email.casefold():
            raise ValidationError(_("This is not the address of your account."), code="wrong_email")
        return email
