from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

from accounts import views as account_views
from accounts.views import admin_login

admin.site.site_header = _("Ticketing staff")
admin.site.site_title = _("Ticketing staff")
admin.site.index_title = _("Box office")

urlpatterns = [
    # Before admin.site.urls, so the admin's login is the throttled one.
    path("admin/login/", admin_login, name="staff_login"),
    path("admin/", admin.site.urls),
    # The language menu, which also keeps a signed-in customer's choice (accounts.views).
    path("i18n/setlang/", account_views.set_language, name="set_language"),
    # Public pages, linked from the sign-up forms and the footer, beside allauth's.
    path("accounts/terms/", account_views.terms, name="terms"),
    path("accounts/privacy/", account_views.privacy, name="privacy"),
    path("accounts/", include("allauth.urls")),
    path("my/", include("accounts.urls")),
    path("", include("payments.urls")),
    path("", include("reservations.urls")),
    path("", include("events.urls")),
]

if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
