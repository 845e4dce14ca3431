"""Reads of the wave-groups flow (kept apart from selectors.py, whose readiness() is tuned for load on its own)."""

from __future__ import annotations

from django.db.models import QuerySet

from ..models import MfaWaveGroups
from .choices import WaveGroupsStatus


def wave_groups_awaiting_approval(*, user) -> QuerySet[MfaWaveGroups]:
    """Wave groups this user may sign (four eyes: never their own), oldest first, for the approvals queue."""
    if not user.has_perm("diagnostics_app.approve_mfa_wave_groups"):
        return MfaWaveGroups.objects.none()
    return (MfaWaveGroups.objects.filter(status=WaveGroupsStatus.AWAITING_APPROVAL).exclude(requested_by=user)
            .select_related("requested_by", "snapshot").order_by("created_at", "id"))
