from django.contrib import admin, messages
from django.utils.translation import gettext_lazy, ngettext

from ticketing.admin_helpers import ServiceWrittenAdmin

from . import services
from .models import Notification


@admin.register(Notification)
class NotificationAdmin(ServiceWrittenAdmin):
    """The log of customer emails: written by the services only, so read-only here."""

    list_display = ["created_at", "kind", "recipient", "reservation", "status", "attempts", "sent_at"]
    list_filter = ["status", "kind", "language", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["recipient", "user__email", "reservation__code", "subject", "dedupe_key"]
    list_select_related = ["reservation"]
    readonly_fields = [
        "kind",
        "status",
        "user",
        "recipient",
        "language",
        "subject",
        "reservation",
        "payment",
        "context",
        "error",
        "attempts",
        "dedupe_key",
        "created_at",
        "next_attempt_at",
        "claimed_at",
        "sent_at",
    ]
    actions = ["resend"]

    @admin.action(description=gettext_lazy("Send again"), permissions=["change"])
    def resend(self, request, queryset):
        count = 0
        for notification in queryset.order_by("pk"):
            services.notification_resend(notification=notification)
            count += 1
        self.message_user(
            request,
            ngettext(
                "%(count)d message queued to be sent again; it appears at the top of the list.",
                "%(count)d messages queued to be sent again; they appear at the top of the list.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )
