"""`manage.py address_scan [--json]`: scan the sync scope and the tenant now (same service and job as the page)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from diagnostics_app.addresses.services import do_start_scan
from portal.jobs.choices import JobStatus
from portal.jobs.services import run_job_inline


class Command(BaseCommand):
    help = "Run the Address repair rules over AD's sync scope and the tenant; store the findings (runs the job inline)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the job's result as JSON")

    def handle(self, *args, **opts):
        job = run_job_inline(do_start_scan(user=None, enqueue=False))
        ok = job.status in (JobStatus.SUCCEEDED, JobStatus.WARNINGS)
        if opts["json"]:
            self.stdout.write(json.dumps({"job": job.pk, "status": job.status, "summary": job.summary,
                                          "error": job.error or None, **(job.result or {})}, indent=2))
        else:
            self.stdout.write(job.summary)
        if not ok:
            raise CommandError(f"job #{job.pk} {job.get_status_display().lower()}: {job.error or job.summary}")
