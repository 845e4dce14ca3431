"""`manage.py mfa_snapshot [--json]`: take an MFA registration snapshot now (same service and job as the page)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from diagnostics_app.mfa.services import do_start_snapshot
from portal.jobs.choices import JobStatus
from portal.jobs.services import run_job_inline


class Command(BaseCommand):
    help = "Read the MFA registration state from Microsoft Graph and store a snapshot (runs the job inline)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the job's result as JSON")
        parser.add_argument("--audit-days", type=int, default=30)
        parser.add_argument("--method-read-limit", type=int, default=2_000,
                            help="at most this many users' methods are read one by one (default 2000)")
        parser.add_argument("--fallback-limit", type=int, default=5_000,
                            help="without a premium licence: users whose methods are read (default 5000)")
        parser.add_argument("--max-groups", type=int, default=500)
        parser.add_argument("--full-audit", action="store_true",
                            help="read the whole audit window again instead of what is new since the last snapshot")

    def handle(self, *args, **opts):
        try:
            job = do_start_snapshot(user=None, enqueue=False, audit_days=opts["audit_days"],
                                    method_read_limit=opts["method_read_limit"],
                                    fallback_limit=opts["fallback_limit"], max_groups=opts["max_groups"],
                                    full_audit=opts["full_audit"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        job = run_job_inline(job)
        ok = job.status in (JobStatus.SUCCEEDED, JobStatus.WARNINGS)
        if opts["json"]:
            self.stdout.write(json.dumps({"job": job.pk, "status": job.status, "summary": job.summary,
                                          "error": job.error or None, **(job.result or {})}, indent=2))
        else:
            self.stdout.write(job.summary)
        if not ok:
            raise CommandError(f"job #{job.pk} {job.get_status_display().lower()}: {job.error or job.summary}")
