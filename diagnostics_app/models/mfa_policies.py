"""Diagnostics area, MFA: the conditional access policies a snapshot read, and what each one does."""

from __future__ import annotations

from django.db import models
from django.urls import reverse

from ..mfa.choices import POLICY_STATE_COLOURS, PolicyState


class MfaPolicy(models.Model):
    """One conditional access policy as one snapshot read it, with its resolved targets and user counts."""

    snapshot = models.ForeignKey("diagnostics_app.MfaSnapshot", on_delete=models.CASCADE, related_name="policies")
    policy_id = models.CharField(max_length=64)
    display_name = models.CharField(max_length=256)
    state = models.CharField(max_length=48, help_text="as Graph names it; only 'enabled' enforces")
    demand_kind = models.CharField(max_length=16, help_text="mfa | strength | block | none")
    demand = models.JSONField(default=dict, blank=True, help_text="label, strength, accepted combinations, problems")
    users = models.JSONField(default=dict, blank=True, help_text="conditions.users as Graph sent it")
    conditions = models.JSONField(default=dict, blank=True, help_text="other conditions: listed, not evaluated")
    controls = models.JSONField(default=dict, blank=True)
    problems = models.JSONField(default=list, blank=True)
    names = models.JSONField(default=dict, blank=True, help_text="ids the policy names -> display names")
    modified = models.DateTimeField(null=True, blank=True)
    # the counts are of enabled accounts (an unknown state counts as enabled), as the report's figures are
    in_scope = models.PositiveIntegerField(default=0)
    able = models.PositiveIntegerField(default=0)
    interrupted = models.PositiveIntegerField(default=0)
    not_evaluated = models.PositiveIntegerField(default=0)
    excluded = models.PositiveIntegerField(default=0)
    left_out = models.PositiveIntegerField(
        default=0, help_text="disabled accounts (or ones deleted during the snapshot) it names, left out of the counts")

    class Meta:
        ordering = ["display_name", "id"]
        default_permissions = ()
        constraints = [models.UniqueConstraint(fields=["snapshot", "policy_id"], name="mfa_policy_once_per_snapshot")]

    def __str__(self) -> str:
        return self.display_name

    def get_absolute_url(self) -> str:
        return reverse("diagnostics_app:mfa_policy", args=[self.pk])

    @property
    def state_label(self) -> str:
        try:
            return PolicyState(self.state).label
        except ValueError:
            return f"Unknown state ({self.state})"

    @property
    def state_colour(self) -> str:
        try:
            return POLICY_STATE_COLOURS[PolicyState(self.state)]
        except ValueError:
            return "dark"

    @property
    def enforcing(self) -> bool:
        return self.state == PolicyState.ENABLED
