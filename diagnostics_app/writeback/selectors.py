"""Reads of the writeback rename area."""

from __future__ import annotations

from django.db.models import QuerySet

from ..models import WritebackPlan, WritebackPlanRow
from .choices import PlanStatus, RowSection


def plans() -> QuerySet[WritebackPlan]:
    return WritebackPlan.objects.select_related("requested_by", "approved_by", "started_by")


def latest_plan() -> WritebackPlan | None:
    return plans().order_by("-version").first()


def plan_rows(plan: WritebackPlan) -> QuerySet[WritebackPlanRow]:
    return plan.rows.all().order_by("section", "display_name", "id")


def readiness_rows(plan: WritebackPlan) -> QuerySet[WritebackPlanRow]:
    # every written-back group with a cloud group: those the switch renames and those disabled for writeback
    return plan.rows.filter(section__in=(RowSection.PLANNED, RowSection.WRITEBACK_DISABLED)).order_by(
        "cloud_sync", "display_name", "id")


def awaiting_approval() -> QuerySet[WritebackPlan]:
    return plans().filter(status=PlanStatus.AWAITING_APPROVAL).order_by("requested_at")


def section_counts(plan: WritebackPlan) -> list[dict]:
    return [{"value": s.value, "label": s.label, "count": plan.counts.get(s.value, 0)} for s in RowSection]
