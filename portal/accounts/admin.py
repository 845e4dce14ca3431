"""The Django admin (superusers only): who is linked to Entra ID, and the authenticators of local
accounts. An authenticator is only removed here (the owner enrols a new one at the next sign-in);
its secret and recovery codes are never shown."""

from django.contrib import admin

from .models import EntraIdentity, TotpDevice


@admin.register(TotpDevice)
class TotpDeviceAdmin(admin.ModelAdmin):
    list_display = ("user", "confirmed", "created", "recovery_codes_left")
    fields = ("user", "confirmed", "created", "recovery_codes_left")
    readonly_fields = fields

    @admin.display(description="Recovery codes left")
    def recovery_codes_left(self, device: TotpDevice) -> int:
        return len(device.recovery_code_hashes)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(EntraIdentity)
class EntraIdentityAdmin(admin.ModelAdmin):
    list_display = ("user", "object_id", "tenant_id", "last_sign_in")
    readonly_fields = ("user", "object_id", "tenant_id", "last_sign_in", "token_roles")

    def has_add_permission(self, request) -> bool:
        return False
