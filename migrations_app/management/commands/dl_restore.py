"""manage.py dl_restore <migration_id> --user U [--json]: rebuild the list on-premises from its backup."""

from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError

from migrations_app import services as svc
from portal.jobs.choices import JobStatus
from portal.jobs.services import run_job_inline

from ._dl_cli import DlCommand, get_migration, job_dict, migration_dict


class Command(DlCommand):
    help = "Restore a migrated list on-premises from its backup and remove the cloud list (runs inline)."
    permission = "migrations_app.restore_dl"

    def add_arguments(self, parser):
        parser.add_argument("migration_id", type=int)
        super().add_arguments(parser)

    def handle(self, *args, **opts):
        user = self.acting_user(opts["user"])
        migration = get_migration(opts["migration_id"])
        try:
            job = svc.do_start_restore(migration=migration, user=user, enqueue=False)
        except (svc.MigrationRefused, PermissionDenied) as exc:
            raise self.refused(exc) from None
        job = run_job_inline(job)
        self.emit({"job": job_dict(job), "migration": migration_dict(migration)},
                  f"Restore of migration #{migration.pk} (job #{job.pk}): {job.get_status_display()}. {job.summary}",
                  opts["json"])
        if job.status not in (JobStatus.SUCCEEDED, JobStatus.WARNINGS):
            raise CommandError(f"Restore job #{job.pk} {job.get_status_display().lower()}: {job.summary}",
                               returncode=3)
