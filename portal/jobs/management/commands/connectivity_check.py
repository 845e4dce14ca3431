import json

from django.core.management.base import BaseCommand

from portal.jobs.services import do_start_job, run_job_inline


class Command(BaseCommand):
    help = "Run a connectivity check here and now (the same job the browser starts); exit 1 if it failed."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the result as JSON")

    def handle(self, *args, as_json: bool = False, **options):
        job = run_job_inline(do_start_job(kind="connectivity_check", user=None, target="portal dependencies",
                                          enqueue=False))
        if as_json:
            self.stdout.write(json.dumps({"job": job.pk, "status": job.status, "summary": job.summary,
                                         "result": job.result}, indent=2))
        else:
            for line in job.log_lines.order_by("seq"):
                self.stdout.write(str(line))
            self.stdout.write(f"\nJob #{job.pk}: {job.get_status_display()}. {job.summary}")
        if job.status == "failed":
            raise SystemExit(1)
