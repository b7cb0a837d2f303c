from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    # allauth's app is "Accounts" (email addresses) too: two boxes of one name on the admin's home.
    verbose_name = _("Customers and staff")
