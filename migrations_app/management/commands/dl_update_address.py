"""manage.py dl_update_address <migration_id> --address X [--alias Y] --user U [--json]."""

from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError

from migrations_app import services as svc
from portal.jobs.choices import JobStatus
from portal.jobs.services import run_job_inline

from ._dl_cli import DlCommand, get_migration, job_dict, migration_dict


class Command(DlCommand):
    help = ("Change the primary SMTP address (and optionally alias) of a migrated list in Exchange Online and, "
            "if that succeeded, on the on-premises dynamic list (runs inline).")
    permission = "migrations_app.change_migrated_dl"

    def add_arguments(self, parser):
        parser.add_argument("migration_id", type=int)
        parser.add_argument("--address", required=True, help="The new primary SMTP address.")
        parser.add_argument("--alias", default="", help="A new alias (optional).")
        super().add_arguments(parser)

    def handle(self, *args, **opts):
        user = self.acting_user(opts["user"])
        migration = get_migration(opts["migration_id"])
        try:
            job = svc.do_start_update_address(migration=migration, new_address=opts["address"],
                                              new_alias=opts["alias"], user=user, enqueue=False)
        except (svc.MigrationRefused, PermissionDenied) as exc:
            raise self.refused(exc) from None
        job = run_job_inline(job)
        self.emit({"job": job_dict(job), "migration": migration_dict(migration)},
                  f"Address change of migration #{migration.pk} (job #{job.pk}): {job.get_status_display()}. "
                  f"{job.summary}", opts["json"])
        if job.status not in (JobStatus.SUCCEEDED, JobStatus.WARNINGS):
            raise CommandError(f"Address change job #{job.pk} {job.get_status_display().lower()}: {job.summary}",
                               returncode=3)
