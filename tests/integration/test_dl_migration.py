"""DL migration end to end in the rehearsal lab: preflight, migration, rollback, resume, aftercare."""

from __future__ import annotations

import pytest

from migrations_app import engine
from migrations_app import services as svc
from migrations_app.choices import BackupKind, MigrationStatus
from migrations_app.models import Migration
from portal.connectors import ad as adc
from portal.connectors import exchange as exo
from portal.connectors.registry import active_directory, exchange_online
from portal.jobs.choices import JobStatus
from portal.jobs.services import run_job_inline

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def preflight(user, mail, **options):
    job = svc.do_start_preflight(mail=mail, options=options, user=user, enqueue=False)
    return run_job_inline(job)


def migrate(user, mail, **options):
    pre = preflight(user, mail, **options)
    assert pre.result.get("ok"), pre.result
    migration = svc.do_request_migration(mail=mail, options=options, user=user, enqueue=False)
    job = run_job_inline(migration.job)
    migration.refresh_from_db()
    return migration, job


def cloud_list(mail):
    with exchange_online() as exchange:
        try:
            return exchange.get_distribution_group(mail)
        except exo.ObjectNotFound:
            return None


def test_preflight_passes_for_a_plain_list(lab_tenant, make_user):
    user = make_user("tech", "Helpdesk")
    job = preflight(user, "sales-team@contoso.com")
    assert job.status in (JobStatus.SUCCEEDED, JobStatus.WARNINGS), job.summary
    checks = {c["key"]: c["outcome"] for c in job.result["checks"]}
    assert checks["found_once"] == "pass"
    assert checks["synced"] == "pass"
    assert checks["non_sync_ou"] == "pass", job.result


def test_migrate_a_flat_list_end_to_end(lab_tenant, make_user):
    user = make_user("tech2", "Helpdesk")
    before = cloud_list("finance-team@contoso.com")
    assert before is not None and before.is_dir_synced
    migration, job = migrate(user, "finance-team@contoso.com", hybrid_mail_flow=True)
    lines = "\n".join(job.log_lines.values_list("message", flat=True))
    assert job.status in (JobStatus.SUCCEEDED, JobStatus.WARNINGS), lines
    assert migration.status in (MigrationStatus.MIGRATED, MigrationStatus.MIGRATED_WITH_WARNINGS)
    after = cloud_list("finance-team@contoso.com")
    assert after is not None and after.is_dir_synced is False
    assert after.name == before.name
    with active_directory() as directory:
        original = directory.read_by_guid(migration.group_guid)
        assert original.first("extensionAttribute1") == "MigratedByScript"
        assert not original.get("mail")
    assert migration.backups.filter(kind=BackupKind.ONPREM_GROUP).exists()
    assert migration.report["members"]["missing"] == []
