"""Admin building blocks shared by the apps."""

from django.contrib import admin


class ReadOnlyTabularInline(admin.TabularInline):
    """Records that are written by services only (logs, frozen receipts): shown, never edited."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ServiceWrittenAdmin(admin.ModelAdmin):
    """Records that only services write (sales, payments, the email log): every field
    in `readonly_fields` is shown and none is edited, added or deleted here; changes go
    through admin actions that call the services."""

    def get_fields(self, request, obj=None):
        return self.readonly_fields

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
