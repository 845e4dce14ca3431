"""`manage.py writeback_plan [--json]`: make a writeback rename plan now (same service and job as the page)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from diagnostics_app.writeback.services import do_start_plan
from portal.jobs.choices import JobStatus
from portal.jobs.services import run_job_inline


class Command(BaseCommand):
    help = "Read the written-back groups and their cloud groups; store a new rename plan (runs the job inline)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the plan (rows included) as JSON")

    def handle(self, *args, **opts):
        job = run_job_inline(do_start_plan(user=None, enqueue=False))
        ok = job.status in (JobStatus.SUCCEEDED, JobStatus.WARNINGS)
        if opts["json"]:
            from diagnostics_app.models import WritebackPlan
            from diagnostics_app.writeback.services import ROW_FIELDS

            result = dict(job.result or {})
            plan = WritebackPlan.objects.filter(pk=result.get("plan")).first()
            if plan is not None:
                result["rows"] = [{k: getattr(r, k) for k in ROW_FIELDS if k != "risks_key"}
                                  for r in plan.rows.order_by("section", "display_name", "id")]
            self.stdout.write(json.dumps({"job": job.pk, "status": job.status, "summary": job.summary,
                                          "error": job.error or None, **result}, indent=2, default=str))
        else:
            self.stdout.write(job.summary)
        if not ok:
            raise CommandError(f"job #{job.pk} {job.get_status_display().lower()}: {job.error or job.summary}")
