"""Diagnostics area. Writeback rename: versioned plans (one row per group), their approval, the runbook's
confirmed steps and verifications of the result."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.urls import reverse

from ..writeback.choices import (
    CLOUD_SYNC_COLOURS,
    PLAN_STATUS_COLOURS,
    SECTION_COLOURS,
    CloudSyncVerdict,
    PlanStatus,
    RowSection,
    VerificationOutcome,
)


class WritebackPlan(models.Model):
    """One reading of the written-back groups and the DN each gets with the display-name option.

    A plan never changes after it is stored (a new reading is a new version), so its hash is what an
    approval signs."""

    version = models.PositiveIntegerField(unique=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    container = models.CharField(max_length=1024, help_text="The writeback OU the plan was made for")
    plan_hash = models.CharField(max_length=64, help_text="Hash of every planned group's id, current and new DN")
    counts = models.JSONField(default=dict, blank=True)
    diff = models.JSONField(default=dict, blank=True, help_text="Against the previous version")
    previous = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    notes = models.JSONField(default=list, blank=True)
    # approval (the DL migration's pattern: four eyes, pinned hash, expiry)
    status = models.CharField(max_length=20, choices=PlanStatus.choices, default=PlanStatus.DRAFT, db_index=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="requested_writeback_plans")
    requested_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="approved_writeback_plans",
                                    help_text="Who approved or rejected it (never the requester)")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=500, blank=True)
    approved_hash = models.CharField(max_length=64, blank=True, help_text="The plan hash the approver signed")
    approval_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-version"]
        default_permissions = ("view",)
        constraints = [
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True) | Q(requested_by__isnull=True)
                | ~Q(approved_by=F("requested_by")),
                name="writeback_plan_not_decided_by_requester"),
        ]
        permissions = [
            ("run_writeback_plan", "Make writeback rename plans and verifications, request their approval"),
            ("approve_writeback_plan", "Approve a writeback rename plan requested by someone else"),
            ("confirm_writeback_step", "Confirm steps of the writeback rename runbook"),
        ]

    def __str__(self) -> str:
        return f"Writeback plan v{self.version}"

    def get_absolute_url(self) -> str:
        return reverse("diagnostics_app:writeback_plan", args=[self.pk])

    @property
    def status_colour(self) -> str:
        return PLAN_STATUS_COLOURS[PlanStatus(self.status)]


class WritebackPlanRow(models.Model):
    plan = models.ForeignKey(WritebackPlan, on_delete=models.CASCADE, related_name="rows")
    section = models.CharField(max_length=24, choices=RowSection.choices, db_index=True)
    object_id = models.CharField(max_length=64, blank=True, db_index=True, help_text="The cloud group's id")
    guid = models.CharField(max_length=36, blank=True, help_text="objectGUID in AD")
    display_name = models.CharField(max_length=512, blank=True)
    current_dn = models.CharField(max_length=2048, blank=True)
    planned_dn = models.CharField(max_length=2048, blank=True)
    planned_cn = models.CharField(max_length=256, blank=True)
    truncated = models.BooleanField(default=False)
    flags = models.JSONField(default=list, blank=True, help_text="writeback_names flags")
    changes = models.JSONField(default=list, blank=True, help_text="What differs from the display name")
    collides = models.BooleanField(default=False, db_index=True)
    collision = models.JSONField(default=dict, blank=True)
    same_display_name = models.JSONField(default=list, blank=True)
    risks = models.JSONField(default=list, blank=True)
    risks_key = models.CharField(max_length=256, blank=True, help_text=",risk,risk, for filtering")
    risk_detail = models.JSONField(default=dict, blank=True, help_text="risk -> DNs naming the group")
    mail_enabled = models.BooleanField(null=True)
    security_enabled = models.BooleanField(null=True)
    group_types = models.JSONField(default=list, blank=True)
    writeback_enabled = models.BooleanField(null=True)
    on_premises_group_type = models.CharField(max_length=64, blank=True)
    cloud_sync = models.CharField(max_length=16, choices=CloudSyncVerdict.choices, blank=True)
    cloud_sync_notes = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["section", "display_name", "id"]

    @property
    def section_colour(self) -> str:
        return SECTION_COLOURS[RowSection(self.section)]

    @property
    def cloud_sync_colour(self) -> str:
        return CLOUD_SYNC_COLOURS.get(self.cloud_sync, "grey")

    def as_plan_entry(self) -> dict:
        return {"object_id": self.object_id, "display_name": self.display_name, "current_dn": self.current_dn,
                "planned_dn": self.planned_dn, "flags": self.flags, "risks": self.risks, "collides": self.collides}


class WritebackRunbookStep(models.Model):
    """A confirmed step of the runbook of one approved plan: who, when, and what the portal checked."""

    plan = models.ForeignKey(WritebackPlan, on_delete=models.CASCADE, related_name="steps")
    step = models.CharField(max_length=32)
    confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                     related_name="+")
    confirmed_at = models.DateTimeField(auto_now_add=True)
    checks = models.JSONField(default=list, blank=True, help_text="The portal's checks when it was confirmed")
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["plan", "confirmed_at"]
        constraints = [models.UniqueConstraint(fields=["plan", "step"], name="one_confirmation_per_step")]


class WritebackVerification(models.Model):
    plan = models.ForeignKey(WritebackPlan, on_delete=models.CASCADE, related_name="verifications")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    counts = models.JSONField(default=dict, blank=True)
    rows = models.JSONField(default=list, blank=True, help_text="object id, outcome, planned and actual DN")

    class Meta:
        ordering = ["-created_at", "-id"]

    @property
    def ok(self) -> bool:
        bad = (VerificationOutcome.MISMATCHED, VerificationOutcome.MISSING, VerificationOutcome.UNCHANGED)
        return not any(self.counts.get(o) for o in bad)
