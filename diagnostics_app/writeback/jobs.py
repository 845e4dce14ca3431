"""Jobs of the writeback rename area: make a plan, verify the result against a plan."""

from __future__ import annotations

from typing import Any

from portal.connectors import ad
from portal.connectors.graph import GraphError
from portal.connectors.registry import NotConfigured, active_directory, ad_layout, entra_graph
from portal.jobs.runner import JobFailed, JobRunner

from ..models import WritebackPlan
from .choices import RowSection
from .collect import CollectOptions, collect
from .services import PLAN_JOB, VERIFY_JOB, do_store_plan, do_store_verification
from .verify import read_actual, verify


def _layout() -> tuple[str, str]:
    layout = ad_layout()
    if not layout.writeback_ou:
        raise JobFailed("No writeback OU is configured (AD_WRITEBACK_OU): the plan needs the OU group writeback "
                        "writes to.")
    return layout.writeback_ou, layout.base_dn


class WritebackPlanJob(JobRunner):
    """Reads the written-back groups and their cloud groups; stores the rename plan as a new version."""

    kind = PLAN_JOB
    name = "Writeback rename plan"
    permission = "diagnostics_app.run_writeback_plan"

    @classmethod
    def object_url(cls, job) -> str | None:
        return (job.result or {}).get("url")

    def run(self) -> dict[str, Any]:
        container, base_dn = _layout()
        try:
            with active_directory() as directory, entra_graph() as graph:
                built = collect(directory, graph, options=CollectOptions(container=container, base_dn=base_dn),
                                reporter=self)
        except NotConfigured as exc:
            raise JobFailed(str(exc)) from None
        except ad.AdError as exc:
            raise JobFailed(f"Active Directory refused or failed a read: {exc}") from None
        except GraphError as exc:
            raise JobFailed(f"Microsoft Graph refused or failed a read: {exc}") from None
        with self.fenced():
            plan = do_store_plan(built, container=container, job=self.job, user=self.job.user)
        counts = plan.counts
        planned = counts.get("planned", 0)
        apart = sum(counts.get(k, 0) for k in ("not_joined", "writeback_disabled", "outside_ou"))
        self.summary = (f"Plan v{plan.version}: {planned} group(s) renamed, {counts.get('collisions', 0)} "
                        f"collision(s), {counts.get('truncated', 0)} name(s) cut; {apart} listed apart.")
        if counts.get("collisions"):
            self.warning(f"{counts['collisions']} planned DN(s) collide inside the OU: the plan cannot be approved.")
        self.success(self.summary)
        return {"plan": plan.pk, "version": plan.version, "plan_hash": plan.plan_hash, "counts": counts,
                "diff": plan.diff, "url": plan.get_absolute_url()}


class WritebackVerifyJob(JobRunner):
    """Reads the writeback OU again and compares every group with the plan."""

    kind = VERIFY_JOB
    name = "Writeback rename verification"
    permission = "diagnostics_app.run_writeback_plan"

    @classmethod
    def object_url(cls, job) -> str | None:
        plan = WritebackPlan.objects.filter(pk=(job.params or {}).get("plan_id")).first()
        return plan.get_absolute_url() + "#verification" if plan else None

    def run(self) -> dict[str, Any]:
        plan = WritebackPlan.objects.get(pk=(self.job.params or {}).get("plan_id"))
        try:
            with active_directory() as directory:
                actual = read_actual(directory, plan.container)
        except NotConfigured as exc:
            raise JobFailed(str(exc)) from None
        except ad.AdError as exc:
            raise JobFailed(f"Active Directory refused or failed a read: {exc}") from None
        rows = verify(list(plan.rows.filter(section=RowSection.PLANNED).values("object_id", "guid", "display_name",
                                                                      "current_dn", "planned_dn")), actual,
                      known=plan.rows.exclude(section=RowSection.PLANNED).values_list("guid", flat=True))
        with self.fenced():
            verification = do_store_verification(plan=plan, rows=rows, job=self.job, user=self.job.user)
        counts = verification.counts
        self.summary = (f"Plan v{plan.version}: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
                        if counts else f"Plan v{plan.version}: nothing to verify")
        if counts.get("missing"):
            self.error(f"{counts['missing']} planned group(s) are MISSING from AD: deleted, not renamed.")
        if counts.get("mismatched") or counts.get("unexpected"):
            self.warning("Some groups are not where the plan put them: see the verification table.")
        self.success(self.summary)
        return {"plan": plan.pk, "verification": verification.pk, "counts": counts, "ok": verification.ok,
                "url": plan.get_absolute_url() + "#verification"}
