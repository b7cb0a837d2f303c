"""My page, profile and account deletion. Every such page is the signed-in customer's
own: none takes an id, so there is nothing of anyone else's to ask for. And the terms
of service and privacy policy, which are for everyone."""

from allauth.core import ratelimit
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django.views.i18n import set_language as django_set_language

from notifications.selectors import user_notifications
from reservations.selectors import for_booking_rows

from . import legal, selectors, services
from .forms import AccountDeleteForm, ProfileForm
from .language import language_activate, language_apply


@login_required
@require_safe
def my_page(request):
    user = request.user
    upcoming = selectors.user_upcoming_bookings(user=user, now=timezone.now())
    return render(
        request,
        "accounts/my_page.html",
        {
            "upcoming": upcoming,
            "has_held": for_booking_rows(upcoming, timezone.now()),
            "email_addresses": selectors.user_email_addresses(user=user),
            "social_accounts": selectors.user_social_accounts(user=user),
            "notifications": user_notifications(user=user),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def profile_edit(request):
    user = request.user
    form = ProfileForm.for_user(user, request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            services.user_update_profile(user=user, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            response = redirect("accounts:my_page")
            # A new language takes effect now, this message included.
            language_activate(user.preferred_language)
            messages.success(request, _("Your profile has been saved."))
            language_apply(response=response, language=user.preferred_language)
            return response
    return render(request, "accounts/profile_edit.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def account_delete(request):
    user = request.user
    form = AccountDeleteForm(request.POST if request.method == "POST" else None, user=user)
    status = 200
    if request.method == "POST":
        # Each attempt checks a password: allauth's reauthentication limit (per user,
        # counted in the shared cache) stops a left-open session being used to guess it.
        if not ratelimit.consume(request, action="reauthenticate", user=user):
            messages.error(request, _("Too many attempts. Please wait a minute and try again."))
            status = 429
        elif form.is_valid():
            try:
                services.user_delete(user=user)
            except services.AccountDeletionRefused as exc:
                messages.error(request, exc.message)
                status = 409
            else:
                logout(request)
                messages.success(
                    request, _("Your account has been deleted. Thank you for booking with us, and goodbye.")
                )
                return redirect("events:home")
    # Read after any refused attempt, so the page lists what stands in the way now.
    blockers = list(selectors.user_deletion_blockers(user=user, now=timezone.now()))
    return render(request, "accounts/delete.html", {"form": form, "blockers": blockers}, status=status)


@require_safe
def terms(request):
    return render(request, "accounts/terms.html", {"version": legal.TERMS_VERSION})


@require_safe
def privacy(request):
    return render(request, "accounts/privacy.html", {"version": legal.PRIVACY_VERSION})


def admin_login(request, extra_context=None):
    """The staff admin's login, throttled with the same limits as the site's sign-in.

    allauth only limits its own login form; without this, /admin/login/ would accept
    unlimited password guesses for staff accounts.
    """
    from django.contrib import admin

    email = request.POST.get("username", "").strip().lower() if request.method == "POST" else ""
    if email and not ratelimit.consume(request, action="login_failed", key=email, dry_run=True):
        return render(request, "429.html", status=429)
    response = admin.site.login(request, extra_context=extra_context)
    if email:
        if request.user.is_authenticated:
            ratelimit.clear(request, action="login_failed", key=email)
        else:
            ratelimit.consume(request, action="login_failed", key=email)
    return response


@require_POST
def set_language(request):
    """The language menu. Django's view sets the cookie; a signed-in customer's choice is
    also kept as their preferred language, or the next sign-in would switch it back."""
    response = django_set_language(request)
    if request.user.is_authenticated:
        services.user_set_language(user=request.user, language=request.POST.get("language", ""))
    return response
