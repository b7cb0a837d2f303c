from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

from accounts.views import admin_login

admin.site.site_header = _("Ticketing staff")
admin.site.site_title = _("Ticketing staff")
admin.site.index_title = _("Box office")

urlpatterns = [
    # Before admin.site.urls, so the admin's login is the throttled one.
    path("admin/login/", admin_login, name="staff_login"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("accounts/", include("allauth.urls")),
    path("my/", include("accounts.urls")),
    path("", include("payments.urls")),
    path("", include("reservations.urls")),
    path("", include("events.urls")),
]

if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
