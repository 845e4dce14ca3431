from __future__ import annotations

from django.conf import settings
from django.db import models


class AppendOnlyError(Exception):
    """Raised on any attempt to change or remove an audit event through the ORM."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("Audit events are append-only: they cannot be updated.")

    def delete(self):
        raise AppendOnlyError("Audit events are append-only: they cannot be deleted.")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError("Audit events are append-only: they cannot be updated.")

    def update_or_create(self, defaults=None, **kwargs):
        raise AppendOnlyError("Audit events are append-only: they cannot be updated.")


_WORDS = {"dl": "DL", "mfa": "MFA", "cli": "Command line", "job": "Job", "ad": "AD"}


def action_label(action: str) -> str:
    """'dl.migration.approve.refused' → 'DL migration approve refused': the code stays filterable, people read
    words."""
    words = [w for part in (action or "").split(".") for w in part.split("_") if w]
    text = " ".join(_WORDS.get(w, w) for w in words)
    return text[:1].upper() + text[1:]


class AuditEvent(models.Model):
    """Who did what to which object, with the values before and after. Written once, never changed."""

    time = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Kept as text too, so the trail still says who it was after an account is renamed.
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=100, db_index=True)
    target = models.CharField(max_length=500, blank=True, db_index=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    source_ip = models.GenericIPAddressField(null=True, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-time", "-id"]
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.actor_name or 'system'} {self.action} {self.target}"

    @property
    def action_label(self) -> str:
        return action_label(self.action)

    def save(self, *args, **kwargs):
        if self.pk is not None or not self._state.adding:
            raise AppendOnlyError("Audit events are append-only: they cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit events are append-only: they cannot be deleted.")
