from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from .forms import UserChangeForm, UserCreationForm
from .models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    ordering = ["email"]
    list_display = [
        "email",
        "name",
        "phone",
        "preferred_language",
        "marketing_consent",
        "is_staff",
        "is_active",
        "date_joined",
    ]
    list_filter = [
        "is_staff",
        "is_superuser",
        "is_active",
        "preferred_language",
        "marketing_consent",
        ("deleted_at", admin.EmptyFieldListFilter),
    ]
    search_fields = ["email", "name", "phone"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        (_("Personal info"), {"fields": ["name", "phone", "preferred_language"]}),
        (
            _("Consent"),
            {
                "fields": [
                    ("terms_accepted_at", "terms_version"),
                    ("privacy_accepted_at", "privacy_version"),
                    "age_confirmed_at",
                    ("marketing_consent", "marketing_consent_at"),
                ]
            },
        ),
        (_("Permissions"), {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        (_("Important dates"), {"fields": ["last_login", "date_joined", "deleted_at"]}),
    ]
    # Consent is the customer's own act, recorded with its time at sign-up or on the
    # profile page; staff see it but cannot give it for them (an account made here, or
    # by createsuperuser, has none). Deletion runs through the service.
    readonly_fields = [
        "terms_accepted_at",
        "terms_version",
        "privacy_accepted_at",
        "privacy_version",
        "age_confirmed_at",
        "marketing_consent",
        "marketing_consent_at",
        "deleted_at",
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "name", "password1", "password2"]})]
