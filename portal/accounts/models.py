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
        ]
