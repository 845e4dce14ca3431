from django.conf import settings
from django.db import models


class PortalPermission(models.Model):
    """Holds the permissions that guard pages and actions with no model of their own.

    No table: Django only needs the model's content type to create the permission rows.
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_directory", "Read on-premises Active Directory (Directory pages)"),
            ("view_dl_migration", "Use the DL migration area"),
            ("view_address_repair", "Use the address repair area"),
            ("view_mfa_report", "Read the MFA registration report"),
            ("view_writeback_plan", "Read writeback rename plans"),
            ("manage_lab", "Run the rehearsal lab (lab mode only)"),
            ("unlock_sign_in", "See locked-out local sign-ins and unlock them"),
            ("view_diagnostics", "Open the diagnostics index (the address repair, MFA and writeback areas one holds)"),
        ]


class EntraIdentity(models.Model):
    """Links a portal account to the Entra ID user who signs in with it (tenant and object id: the
    user principal name can change, these do not)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="entra_identity")
    tenant_id = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    last_sign_in = models.DateTimeField()
    # The app roles and groups of the last token, as the token said them (before the mapping).
    token_roles = models.JSONField(default=list, blank=True)

    class Meta:
        default_permissions = ()
        constraints = [models.UniqueConstraint(fields=["tenant_id", "object_id"], name="entra_identity_unique")]

    def __str__(self) -> str:
        return f"{self.user} ({self.object_id})"


class TotpDevice(models.Model):
    """A local account's authenticator (second factor): its TOTP secret, encrypted, and the hashes of
    its unused recovery codes. Unconfirmed until the first code from the app is typed back."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="totp_device")
    secret_encrypted = models.TextField()
    confirmed = models.BooleanField(default=False)
    # The last time step a code was accepted for: a code is good once.
    last_used_step = models.BigIntegerField(default=0)
    recovery_code_hashes = models.JSONField(default=list, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"authenticator of {self.user}"
