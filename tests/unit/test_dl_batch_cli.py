"""manage.py dl_batch: the batch's whole life from a shell through the pages' services, JSON out, four
eyes kept, and `run` migrating each list inline (the migration job's work stubbed: no lab here)."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from migrations_app import jobs
from migrations_app.choices import BatchListRun, BatchStatus, MigrationStatus
from migrations_app.models import Migration, MigrationBatch
from tests.unit.test_dl_batches import make_dl, preflighted

pytestmark = pytest.mark.django_db


def cli(*args) -> dict:
    out = StringIO()
    call_command("dl_batch", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.django_db(transaction=True)  # jobs run inline close the connection between them, as a worker's do
def test_a_batch_from_create_to_a_completed_inline_run(role_users, no_enqueue, monkeypatch):
    child, parent = make_dl("child@contoso.com"), make_dl("parent@contoso.com")
    parent.child_lists = [child.dn]
    parent.save()
    created = cli("create", "--name", "From the shell", "--option", "keep_original=true", "--user", "helpdesk")
    pk = str(created["id"])
    assert created["status"] == "draft" and created["options"]["keep_original"] is True
    with pytest.raises(CommandError, match="cannot join the batch.*nobody@contoso.com"):
        cli("add", pk, "parent@contoso.com", "nobody@contoso.com", "--user", "helpdesk")
    added = cli("add", pk, "parent@contoso.com", "child@contoso.com", "--user", "helpdesk")
    assert [i["mail"] for i in added["lists"]] == ["child@contoso.com", "parent@contoso.com"]
    preflighted(MigrationBatch.objects.get(pk=pk), role_users["Helpdesk"])  # the lab's part, as its job leaves it
    submitted = cli("submit", pk, "--user", "helpdesk")
    assert submitted["status"] == "submitted"
    with pytest.raises(CommandError, match="Not allowed: Approving a batch needs the Approver"):
        cli("approve", pk, "--plan-hash", submitted["plan_hash"], "--user", "helpdesk")
    with pytest.raises(CommandError, match="changed while you read it"):
        cli("approve", pk, "--plan-hash", "0" * 64, "--user", "approver")
    approved = cli("approve", pk, "--plan-hash", submitted["plan_hash"], "--note", "ok", "--user", "approver")
    assert approved["status"] == "approved" and approved["approved_by"] == "approver"

    order = []

    def migrate(self):  # what a migration job leaves behind, without a directory
        migration = Migration.objects.get(pk=self.job.params["migration_id"])
        order.append(migration.mail)
        Migration.objects.filter(pk=migration.pk).update(status=MigrationStatus.MIGRATED, finished_at=timezone.now())
        return {"migration": migration.pk}

    monkeypatch.setattr(jobs.MigrateDistributionListJob, "run", migrate)
    done = cli("run", pk, "--user", "helpdesk")
    assert order == ["child@contoso.com", "parent@contoso.com"], "children first"
    assert done["status"] == BatchStatus.COMPLETED and done["job"]["status"] == "succeeded"
    assert {i["run_state"] for i in done["lists"]} == {BatchListRun.MIGRATED}
    assert no_enqueue == [], "an inline run queues nothing"
    assert cli("status", pk, "--user", "auditor")["status"] == BatchStatus.COMPLETED


def test_refusals_change_nothing(role_users):
    with pytest.raises(CommandError, match="There is no batch #999"):
        cli("status", "999", "--user", "helpdesk")
    with pytest.raises(CommandError, match="is not an ISO date"):
        cli("create", "--name", "x", "--window-end", "tomorrow", "--user", "helpdesk")
    with pytest.raises(CommandError, match="Building a batch needs"):
        cli("create", "--name", "x", "--user", "auditor")
    assert not MigrationBatch.objects.exists()
