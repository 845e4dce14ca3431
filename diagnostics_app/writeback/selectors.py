"""Reads of the writeback rename area."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet

from portal.directory import writeback_names as wn

from ..models import WritebackPlan, WritebackPlanRow
from .choices import PlanStatus, RowSection


def plans() -> QuerySet[WritebackPlan]:
    return WritebackPlan.objects.select_related("requested_by", "approved_by", "started_by")


def latest_plan() -> WritebackPlan | None:
    return plans().order_by("-version").first()


def earlier_plans(plan: WritebackPlan) -> QuerySet[WritebackPlan]:
    """Every version before ``plan``, newest first: what its diff may be taken against."""
    return plans().filter(version__lt=plan.version).order_by("-version")


def planned_entries(plan: WritebackPlan) -> list[dict[str, Any]]:
    """The planned groups of a plan in the form :func:`writeback_names.diff_plans` compares."""
    return [r.as_plan_entry() for r in plan.rows.filter(section=RowSection.PLANNED)]


def diff_against(*, plan: WritebackPlan, earlier: WritebackPlan) -> dict[str, Any]:
    """What changed from ``earlier`` to ``plan``: the stored diff when ``earlier`` is the previous version
    (computed once, when the plan was made), computed from both plans' rows otherwise."""
    if plan.previous_id == earlier.pk and plan.diff:
        return plan.diff
    return wn.diff_plans(planned_entries(earlier), planned_entries(plan))


def plan_rows(plan: WritebackPlan) -> QuerySet[WritebackPlanRow]:
    return plan.rows.all().order_by("section", "display_name", "id")


def readiness_rows(plan: WritebackPlan) -> QuerySet[WritebackPlanRow]:
    # every written-back group with a cloud group: those the switch renames and those disabled for writeback
    return plan.rows.filter(section__in=(RowSection.PLANNED, RowSection.WRITEBACK_DISABLED)).order_by(
        "cloud_sync", "display_name", "id")


def readiness_counts(plan: WritebackPlan) -> dict[str, int]:
    """Verdict -> groups, over the rows the readiness page lists."""
    return dict(readiness_rows(plan).order_by().values_list("cloud_sync").annotate(n=Count("id")))


def awaiting_approval() -> QuerySet[WritebackPlan]:
    return plans().filter(status=PlanStatus.AWAITING_APPROVAL).order_by("requested_at")


def section_counts(plan: WritebackPlan) -> list[dict]:
    return [{"value": s.value, "label": s.label, "count": plan.counts.get(s.value, 0)} for s in RowSection]
