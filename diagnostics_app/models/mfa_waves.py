"""Diagnostics area, MFA: a request to materialise a readiness result's waves as cloud security groups."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.urls import reverse

from ..mfa.choices import WAVE_GROUPS_STATUS_COLOURS, WaveGroupsStatus


class MfaWaveGroups(models.Model):
    """The waves one readiness result was split into, one security group each: requested by one person,
    approved by another (pinned by the membership hash, for a limited time), written by a job."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    snapshot = models.ForeignKey("diagnostics_app.MfaSnapshot", null=True, on_delete=models.SET_NULL,
                                 related_name="wave_groups")
    scope = models.CharField(max_length=300, help_text="the readiness scope the waves split, in words")
    group_id = models.CharField(max_length=64, blank=True, help_text="the readiness scope's group, if any")
    wave_by = models.CharField(max_length=16)
    max_size = models.PositiveIntegerField()
    waves = models.JSONField(default=list, help_text="[{number, bucket, part, parts, group_name, mail_nickname, "
                                                     "user_ids}]")
    plan_hash = models.CharField(max_length=64)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                     related_name="requested_mfa_wave_groups")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="approved_mfa_wave_groups",
                                    help_text="Who approved or rejected it (never the requester)")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=500, blank=True)
    approval_expires_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=24, choices=WaveGroupsStatus.choices,
                              default=WaveGroupsStatus.AWAITING_APPROVAL, db_index=True)
    report = models.JSONField(default=dict, blank=True, help_text="per wave: group id, created, added, removed")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        default_permissions = ()
        permissions = [("request_mfa_wave_groups", "Request wave groups for a staged MFA roll-out"),
                       ("approve_mfa_wave_groups", "Approve wave groups requested by someone else")]
        constraints = [
            # The database itself refuses self-approval, whatever code path writes the row.
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True) | Q(requested_by__isnull=True)
                | ~Q(approved_by=F("requested_by")),
                name="mfa_wave_groups_not_decided_by_requester"),
        ]

    def __str__(self) -> str:
        return f"MFA wave groups #{self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("diagnostics_app:mfa_wave_groups", args=[self.pk])

    @property
    def status_colour(self) -> str:
        return WAVE_GROUPS_STATUS_COLOURS[WaveGroupsStatus(self.status)]

    @property
    def user_total(self) -> int:
        return sum(len(w.get("user_ids") or ()) for w in self.waves or ())
