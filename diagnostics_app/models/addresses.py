"""Diagnostics area. Address repair: a scan per run (history kept), one row per finding in it."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.urls import reverse

from portal.object_urls import object_url

from ..addresses.choices import (
    FIX_STATUS_COLOURS,
    SCAN_STATUS_COLOURS,
    SEVERITY_COLOURS,
    STATE_COLOURS,
    FindingCategory,
    FindingRule,
    FindingSeverity,
    FindingState,
    FixStatus,
    ScanStatus,
)


class AddressScan(models.Model):
    """One pass of the rules over the sync scope and the tenant; earlier scans stay for the history."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    status = models.CharField(max_length=16, choices=ScanStatus.choices, default=ScanStatus.RUNNING)
    objects_read = models.PositiveIntegerField(default=0)
    cloud_objects_read = models.PositiveIntegerField(default=0)
    findings_total = models.PositiveIntegerField(default=0)
    gone_total = models.PositiveIntegerField(default=0)
    skipped = models.JSONField(default=list, blank=True, help_text="[dn, why] IdFix leaves out (first 1000)")
    skipped_total = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True, help_text="rule / severity / category -> findings")
    scope = models.JSONField(default=list, blank=True, help_text="the sync OUs read")
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        default_permissions = ("view",)
        permissions = [("run_address_scan", "Start an address scan (reads AD and the tenant)")]

    def __str__(self) -> str:
        return f"Address scan #{self.pk} ({self.created_at:%Y-%m-%d %H:%M})"

    def get_absolute_url(self) -> str:
        return reverse("diagnostics_app:address_repair") + f"?scan={self.pk}"

    @property
    def status_colour(self) -> str:
        return SCAN_STATUS_COLOURS[ScanStatus(self.status)]


class AddressFinding(models.Model):
    """One value of one object that a rule flags, what it means and what would fix it."""

    scan = models.ForeignKey(AddressScan, on_delete=models.CASCADE, related_name="findings")
    # sha256 of dn|attribute|rule|value (lower case): the same finding in the next scan has the same key.
    key = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=FindingState.choices, default=FindingState.NEW)
    first_seen = models.DateTimeField(help_text="when a scan first raised it")
    dn = models.TextField(verbose_name="Object")
    ou = models.TextField(blank=True, verbose_name="OU")
    object_class = models.CharField(max_length=32, blank=True, verbose_name="Type")
    attribute = models.CharField(max_length=64)
    value = models.TextField(blank=True)
    rule = models.CharField(max_length=32, choices=FindingRule.choices)
    severity = models.CharField(max_length=16, choices=FindingSeverity.choices)
    category = models.CharField(max_length=32, choices=FindingCategory.choices, blank=True,
                                verbose_name="Connect Health category")
    errors = models.JSONField(default=list, blank=True, help_text="IdFix error types")
    action = models.CharField(max_length=16, blank=True, verbose_name="Proposed action")
    proposed_value = models.TextField(blank=True, null=True)
    explanation = models.TextField()
    beyond_idfix = models.BooleanField(default=False)
    fix = models.JSONField(null=True, blank=True)
    others = models.JSONField(default=list, blank=True, help_text="other holders of a duplicated value")

    class Meta:
        ordering = ["dn", "attribute", "id"]
        default_permissions = ()
        indexes = [
            models.Index(fields=["scan", "severity"]),
            models.Index(fields=["scan", "rule"]),
            models.Index(fields=["scan", "key"]),
            models.Index(fields=["scan", "state"]),
            # the findings page's default order, and its OU and attribute filter choices (DISTINCT), read
            # from the index instead of sorting a scan's findings on every request
            models.Index(fields=["scan", "dn", "attribute"]),
            models.Index(fields=["scan", "ou"]),
            models.Index(fields=["scan", "attribute"]),
        ]

    def __str__(self) -> str:
        return f"{self.dn}: {self.attribute} ({self.rule})"

    def get_absolute_url(self) -> str:
        return object_url("diagnostics_app:address_finding", self.pk)

    @property
    def severity_colour(self) -> str:
        return SEVERITY_COLOURS[FindingSeverity(self.severity)]

    @property
    def state_colour(self) -> str:
        return STATE_COLOURS[FindingState(self.state)]


class AddressFix(models.Model):
    """A planned repair of selected findings: before/after per object, approved by someone else (pinned by the
    plan's hash, for a limited time), applied by a job that backs the values up first, undone from that backup."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    scan = models.ForeignKey(AddressScan, null=True, on_delete=models.SET_NULL, related_name="fixes")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                     related_name="requested_address_fixes")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="approved_address_fixes",
                                    help_text="Who approved or rejected it (never the requester)")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=500, blank=True)
    approval_expires_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=24, choices=FixStatus.choices, default=FixStatus.AWAITING_APPROVAL,
                              db_index=True)
    finding_ids = models.JSONField(default=list, blank=True)
    plan = models.JSONField(default=dict, help_text="{'changes': [{dn, attribute, before, after, target}]}")
    plan_hash = models.CharField(max_length=64)
    refused = models.JSONField(default=list, blank=True, help_text="fixes left out of the plan, and why")
    backup = models.JSONField(default=dict, blank=True, help_text="dn -> attribute -> values before the apply")
    report = models.JSONField(default=dict, blank=True, help_text="applied / skipped / undone, per object")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    undo_job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        default_permissions = ()
        permissions = [("plan_address_fix", "Plan and undo address fixes"),
                       ("approve_address_fix", "Approve an address fix planned by someone else")]
        constraints = [
            # The database itself refuses self-approval, whatever code path writes the row.
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True) | Q(requested_by__isnull=True)
                | ~Q(approved_by=F("requested_by")),
                name="address_fix_not_decided_by_requester"),
        ]

    def __str__(self) -> str:
        return f"Address fix #{self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("diagnostics_app:address_fix", args=[self.pk])

    @property
    def status_colour(self) -> str:
        return FIX_STATUS_COLOURS[FixStatus(self.status)]

    @property
    def changes(self) -> list[dict]:
        return list((self.plan or {}).get("changes") or [])
