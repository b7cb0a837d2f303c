from allauth.account import forms as allauth_forms
from django.contrib.auth import forms as auth_forms
from django.utils.translation import gettext_lazy as _

from .models import User


class UserCreationForm(auth_forms.UserCreationForm):
    class Meta:
        model = User
        fields = ["email", "name"]


class UserChangeForm(auth_forms.UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class LoginForm(allauth_forms.LoginForm):
    """allauth's login form; "Remember me" keeps the session past the browser's closing."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "remember" in self.fields:
            # allauth's Korean catalogue says "save my ID", a different feature.
            self.fields["remember"].label = _("Keep me signed in")
