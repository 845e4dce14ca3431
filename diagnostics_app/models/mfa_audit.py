"""Diagnostics area. MFA registration: the directory audit events the snapshots have read, per tenant.

A snapshot needs every MFA-related audit event of the last ``audit_days``. Read in full, that is most of a large
tenant's bytes (about 1 kB an event, ~3 events a user). Kept here, the next snapshot reads only what is new since
the last read (with an overlap for events Microsoft logs late) and takes the rest from this journal.
"""

from __future__ import annotations

from django.db import models


class MfaAuditJournal(models.Model):
    """What has been read of one tenant's directory audit, with which filters, over which span."""

    tenant = models.CharField(max_length=64, unique=True, help_text="Entra tenant id")
    read_key = models.CharField(max_length=64, help_text="what was read (activities, their reading): a new one "
                                                         "means a full read")
    covered_from = models.DateTimeField(help_text="every event from here on was read")
    read_until = models.DateTimeField(help_text="when the latest read started")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"MFA audit journal of {self.tenant}"


class MfaAuditEvent(models.Model):
    """One audit event about one user, as classification reads it (``mfa.classify.Event``)."""

    journal = models.ForeignKey(MfaAuditJournal, on_delete=models.CASCADE, related_name="events")
    audit_id = models.CharField(max_length=200)
    user_id = models.CharField(max_length=64)
    time = models.DateTimeField(null=True)
    activity = models.CharField(max_length=200)
    kind = models.CharField(max_length=32)
    detail = models.TextField(blank=True)
    actor = models.CharField(max_length=400, blank=True)
    added_devices = models.JSONField(default=list, blank=True)
    had_devices = models.PositiveIntegerField(default=0)

    class Meta:
        default_permissions = ()
        indexes = [models.Index(fields=["journal", "time"])]

    def __str__(self) -> str:
        return f"{self.activity} ({self.user_id})"
