"""manage.py dl_preflight <mail> [--option k=v ...] --user U [--json]: the page's preflight, run inline."""

from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError

from migrations_app import services as svc
from portal.jobs.services import run_job_inline

from ._dl_cli import DlCommand, add_option_arguments, default_options, parse_options, preflight_text


class Command(DlCommand):
    help = "Preflight one distribution list (changes nothing). Exit 0 when it may be migrated, 2 when not."
    permission = "migrations_app.run_preflight"

    def add_arguments(self, parser):
        parser.add_argument("mail", help="Primary SMTP address of the list.")
        add_option_arguments(parser)
        super().add_arguments(parser)

    def handle(self, *args, **opts):
        user = self.acting_user(opts["user"])
        options = parse_options(opts["option"], defaults=default_options(), method=opts.get("method"))
        try:
            job = svc.do_start_preflight(mail=opts["mail"], options=options, user=user, enqueue=False)
        except (svc.MigrationRefused, PermissionDenied) as exc:
            raise self.refused(exc) from None
        job = run_job_inline(job)
        report = job.result or {}
        self.emit({"job": job.pk, "status": job.status, "options": options, **report},
                  preflight_text(report) if report.get("checks") else f"Preflight job #{job.pk}: {job.summary}",
                  opts["json"])
        if not report.get("ok"):
            raise CommandError(f"Preflight of {opts['mail']} did not pass (job #{job.pk}): "
                               f"{report.get('summary') or job.summary}", returncode=2)
