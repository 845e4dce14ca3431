"""Diagnostics area. MFA registration: a snapshot per run (history kept), one row per user in it."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from portal.object_urls import object_url

from ..mfa.choices import (
    MFA_CLASS_COLOURS,
    POLICY_OUTCOME_COLOURS,
    SNAPSHOT_STATUS_COLOURS,
    MfaClass,
    PolicyOutcome,
    SnapshotStatus,
)


class MfaSnapshot(models.Model):
    """One reading of the tenant's MFA registration state; older snapshots stay for the trend."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    taken_at = models.DateTimeField(help_text="When the Graph reads started")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    status = models.CharField(max_length=16, choices=SnapshotStatus.choices, default=SnapshotStatus.COMPLETE)
    licence_missing = models.BooleanField(default=False)
    message = models.TextField(blank=True, help_text="What a reader must know about this snapshot")
    total_users = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True, help_text="classification -> users")
    method_counts = models.JSONField(default=dict, blank=True, help_text="usable method family -> users")
    groups = models.JSONField(default=dict, blank=True, help_text="group id -> display name")
    departments = models.JSONField(default=list, blank=True)
    graph_calls = models.JSONField(default=dict, blank=True)
    phases = models.JSONField(default=dict, blank=True, help_text="per read: Graph calls, seconds, items")
    questions = models.JSONField(default=dict, blank=True, help_text="why per-user methods were read -> users")
    methods_read = models.PositiveIntegerField(default=0)
    methods_skipped = models.PositiveIntegerField(default=0)
    audit_days = models.PositiveSmallIntegerField(default=30)
    audit_since = models.DateTimeField(null=True, blank=True, help_text="the directory audit was read from here; "
                                       "the window's events before it came from earlier snapshots (the journal)")
    audit_read = models.PositiveIntegerField(default=0, help_text="audit events read from Graph")
    audit_from_journal = models.PositiveIntegerField(default=0, help_text="audit events taken from the journal")
    notes = models.JSONField(default=list, blank=True)
    policies_read = models.BooleanField(default=False, help_text="conditional access policies were read")
    security_defaults = models.BooleanField(null=True, help_text="security defaults on (None: not read)")
    policies_message = models.TextField(blank=True, help_text="why policies were not read, or what to know")
    policy_problems = models.JSONField(default=list, blank=True)
    outcome_counts = models.JSONField(default=dict, blank=True, help_text="policy outcome -> users")

    class Meta:
        ordering = ["-taken_at", "-id"]
        default_permissions = ("view",)
        permissions = [("run_mfa_snapshot", "Start an MFA registration snapshot (reads Graph)")]

    def __str__(self) -> str:
        return f"MFA snapshot #{self.pk} ({self.taken_at:%Y-%m-%d %H:%M})"

    def get_absolute_url(self) -> str:
        return reverse("diagnostics_app:mfa") + f"?snapshot={self.pk}"

    @property
    def status_colour(self) -> str:
        return SNAPSHOT_STATUS_COLOURS[SnapshotStatus(self.status)]


class MfaUserRow(models.Model):
    """One user in one snapshot: facts, the class, and the evidence it rests on."""

    snapshot = models.ForeignKey(MfaSnapshot, on_delete=models.CASCADE, related_name="rows")
    user_id = models.CharField(max_length=64)
    upn = models.CharField(max_length=320, blank=True, verbose_name="User principal name")
    display_name = models.CharField(max_length=256, blank=True)
    user_type = models.CharField(max_length=16, blank=True)
    enabled = models.BooleanField(null=True)
    licensed = models.BooleanField(null=True)
    department = models.CharField(max_length=128, blank=True)
    is_admin = models.BooleanField(null=True, verbose_name="Administrator")
    classification = models.CharField(max_length=32, choices=MfaClass.choices)
    can_satisfy_mfa = models.BooleanField(null=True)
    usable = models.JSONField(default=list, blank=True, help_text="method families that can answer a prompt")
    registered = models.JSONField(default=list, blank=True, help_text="method families listed")
    usable_key = models.CharField(max_length=400, blank=True, help_text=",family,family, (for filtering)")
    group_ids = models.JSONField(default=list, blank=True)
    groups_key = models.TextField(blank=True, help_text=",id,id, (for filtering)")
    flags = models.JSONField(default=list, blank=True)
    reasons = models.JSONField(default=list, blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    question = models.CharField(max_length=64, blank=True, help_text="why the methods were read one by one")
    deleted = models.BooleanField(default=False, help_text="gone from the directory during the snapshot")
    policy_outcome = models.CharField(max_length=32, choices=PolicyOutcome.choices, blank=True,
                                      help_text="what the enabled conditional access policies do to this user")
    policy_hits = models.JSONField(default=list, blank=True, help_text="policy by policy: scope, demand, answer")
    policy_reasons = models.JSONField(default=list, blank=True)
    policy_key = models.TextField(blank=True, help_text=",policy_id=status, (for filtering by policy)")

    class Meta:
        ordering = ["upn", "id"]
        default_permissions = ()
        indexes = [
            # the report filtered by class, in UPN order (the table's order)
            models.Index(fields=["snapshot", "classification", "upn"]),
            models.Index(fields=["snapshot", "department"]),
            models.Index(fields=["snapshot", "upn"]),
            models.Index(fields=["snapshot", "user_id"]),
            models.Index(fields=["snapshot", "policy_outcome"]),
        ]

    def __str__(self) -> str:
        return self.upn or self.display_name or self.user_id

    def get_absolute_url(self) -> str:
        return object_url("diagnostics_app:mfa_user", self.pk)

    @property
    def classification_colour(self) -> str:
        return MFA_CLASS_COLOURS[MfaClass(self.classification)]

    @property
    def policy_outcome_colour(self) -> str:
        return POLICY_OUTCOME_COLOURS[PolicyOutcome(self.policy_outcome)] if self.policy_outcome else "grey"

    @property
    def name(self) -> str:
        return self.upn or self.display_name or f"(no UPN) {self.user_id}"
