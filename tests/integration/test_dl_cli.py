"""The dl_* commands against the lab: the same services as the pages, inline, with JSON out."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from migrations_app.choices import MigrationStatus
from migrations_app.models import Migration
from portal.jobs.models import Job
from tests.integration.dl_lab import fresh_list

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_dl_preflight_json(lab_tenant, make_user):
    make_user("cli-tech", "Helpdesk")
    data = json.loads(run("dl_preflight", "sales-team@contoso.com", "--user", "cli-tech", "--json",
                          "--option", "hybrid_mail_flow=true", "--option", "name_prefix=EXO-"))
    assert data["ok"] is True, data["summary"]
    assert data["mail"] == "sales-team@contoso.com" and data["member_count"] > 0
    checks = {c["key"]: c["outcome"] for c in data["checks"]}
    assert checks["found_once"] == "pass" and checks["name_length"] == "pass"
    job = Job.objects.get(pk=data["job"])
    assert job.kind == "dl_preflight" and job.params["options"]["name_prefix"] == "EXO-"
    assert job.user.username == "cli-tech"
    assert Migration.objects.count() == 0, "a preflight changes nothing"


def test_dl_preflight_refusals(lab_tenant, make_user):
    make_user("cli-tech", "Helpdesk")
    make_user("cli-auditor", "Auditor")
    with pytest.raises(CommandError, match="is not an e-mail address"):
        run("dl_preflight", "not-an-address", "--user", "cli-tech")
    with pytest.raises(CommandError, match="is not a domain name"):
        run("dl_preflight", "sales-team@contoso.com", "--user", "cli-tech", "--option", "routing_domain=x y")
    with pytest.raises(CommandError, match="not KEY=VALUE with a known key"):
        run("dl_preflight", "sales-team@contoso.com", "--user", "cli-tech", "--option", "colour=blue")
    with pytest.raises(CommandError, match="needs the permission migrations_app.run_preflight"):
        run("dl_preflight", "sales-team@contoso.com", "--user", "cli-auditor")
    assert Job.objects.count() == 0, "nothing queued on refusal"
    # Nothing found: the preflight job runs and says so, exit code 2.
    with pytest.raises(CommandError, match="did not pass") as err:
        run("dl_preflight", "nobody-at-all@contoso.com", "--user", "cli-tech")
    assert err.value.returncode == 2


def test_dl_migrate_json(lab_tenant, lab, make_user):
    make_user("cli-tech", "Helpdesk")
    # A list nobody else migrates, made for this run: the lab keeps migrated lists across runs.
    mail, _ = fresh_list(lab, prefix="dlcli", members=7)
    data = json.loads(run("dl_migrate", mail, "--user", "cli-tech", "--json", "--option", "hybrid_mail_flow=true"))
    migration = data["migration"]
    assert data["preflight"]["ok"] is True
    assert migration["status"] in (MigrationStatus.MIGRATED, MigrationStatus.MIGRATED_WITH_WARNINGS), migration
    assert migration["report"]["members"]["missing"] == []
    assert migration["report"]["members"]["found"] == data["preflight"]["member_count"] == 7
    assert migration["dynamic_list_dn"] and migration["contact_dn"]
    assert "onprem_group" in migration["backups"]
    assert migration["requested_by"] == "cli-tech"
    # A second run is refused before anything is queued.
    jobs = Job.objects.count()
    with pytest.raises(CommandError, match="already has migration"):
        run("dl_migrate", mail, "--user", "cli-tech")
    assert Job.objects.count() == jobs

    # Aftercare from the command line: the address change, then the restore (Administrator).
    make_user("cli-admin", "Administrator")
    with pytest.raises(CommandError, match="needs the permission migrations_app.change_migrated_dl"):
        run("dl_update_address", str(migration["id"]), "--address", "x@contoso.com", "--user", "cli-tech")
    new_mail = mail.replace("@", "-new@")
    changed = json.loads(run("dl_update_address", str(migration["id"]), "--address", new_mail, "--user",
                             "cli-admin", "--json"))
    assert changed["job"]["status"] in ("succeeded", "warnings"), changed["job"]
    restored = json.loads(run("dl_restore", str(migration["id"]), "--user", "cli-admin", "--json"))
    assert restored["job"]["status"] in ("succeeded", "warnings"), restored["job"]
    assert restored["migration"]["status"] == MigrationStatus.RESTORED
