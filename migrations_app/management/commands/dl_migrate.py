"""manage.py dl_migrate <mail> [--option k=v ...] --user U [--json]: preflight, then migrate, both inline."""

from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError

from migrations_app import services as svc
from migrations_app.choices import MigrationStatus
from portal.jobs.services import run_job_inline

from ._dl_cli import (
    DlCommand,
    add_option_arguments,
    default_options,
    migration_dict,
    parse_options,
    preflight_text,
)


class Command(DlCommand):
    help = ("Migrate one distribution list to Exchange Online: runs a preflight inline, then the migration "
            "inline (or leaves it awaiting approval when the settings require it).")
    permission = "migrations_app.migrate_dl"

    def add_arguments(self, parser):
        parser.add_argument("mail", help="Primary SMTP address of the list.")
        add_option_arguments(parser)
        super().add_arguments(parser)

    def handle(self, *args, **opts):
        user = self.acting_user(opts["user"])
        options = parse_options(opts["option"], defaults=default_options(), method=opts.get("method"))
        try:
            svc.check_no_open_migration(mail=svc.check_address(opts["mail"]))
            pre = svc.do_start_preflight(mail=opts["mail"], options=options, user=user, enqueue=False)
        except (svc.MigrationRefused, PermissionDenied) as exc:
            raise self.refused(exc) from None
        pre = run_job_inline(pre)
        report = pre.result or {}
        if not report.get("ok"):
            if opts["json"]:
                self.emit({"preflight": {"job": pre.pk, **report}, "migration": None}, "", True)
            else:
                self.stdout.write(preflight_text(report) if report.get("checks") else pre.summary)
            raise CommandError(f"Not migrated: the preflight of {opts['mail']} did not pass (job #{pre.pk}).",
                               returncode=2)
        if not opts["json"]:
            self.stdout.write(f"Preflight passed (job #{pre.pk}): {report.get('summary')}")
        try:
            migration = svc.do_request_migration(mail=opts["mail"], options=options, user=user, enqueue=False)
        except (svc.MigrationRefused, PermissionDenied) as exc:
            raise self.refused(exc) from None
        if migration.status == MigrationStatus.AWAITING_APPROVAL:
            self.emit({"preflight": {"job": pre.pk, **report}, "migration": migration_dict(migration)},
                      f"Migration #{migration.pk} awaits an Approver's sign-off (the settings require it).",
                      opts["json"])
            return
        if not opts["json"]:
            self.stdout.write(f"Migration #{migration.pk} running (job #{migration.job.pk})…")
        run_job_inline(migration.job)
        data = migration_dict(migration)
        self.emit({"preflight": {"job": pre.pk, **report}, "migration": data},
                  f"Migration #{migration.pk} of {migration.mail}: {data['status_label']}. "
                  f"{data['job']['summary'] if data['job'] else ''}", opts["json"])
        if data["status"] not in (MigrationStatus.MIGRATED, MigrationStatus.MIGRATED_WITH_WARNINGS):
            raise CommandError(f"Migration #{migration.pk} ended {data['status_label'].lower()}: "
                               f"{data['job']['summary'] if data['job'] else ''}", returncode=3)
