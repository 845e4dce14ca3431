"""The audit trail is append-only, filterable, and exports to CSV safely."""

import csv
import io

import pytest
from django.db import models

from portal.audit.models import AppendOnlyError, AuditEvent
from portal.audit.services import record

pytestmark = pytest.mark.django_db


@pytest.fixture
def events(make_user):
    actor = make_user("alice", "Administrator")
    first = record(actor=actor, action="job.start.connectivity_check", target="job:1", after={"a": 1})
    second = record(actor=None, action="job.worker_lost", target="job:2", detail={"worker": "h:1"})
    third = record(actor=actor, action="dl.migrate", target="=HYPERLINK(\"http://x\")", before={"b": b"\x01"})
    return actor, [first, second, third]


@pytest.mark.postgres
def test_record_keeps_who_what_target_before_after(events):
    actor, (first, second, third) = events
    assert first.actor == actor and first.actor_name == "alice" and first.after == {"a": 1}
    assert second.actor is None and second.detail == {"worker": "h:1"}
    assert third.before == {"b": "01"}, "bytes from a directory are stored as hex"


@pytest.mark.postgres
def test_events_cannot_be_changed_or_removed(events):
    _, (first, *_rest) = events
    first.action = "tampered"
    with pytest.raises(AppendOnlyError):
        first.save()
    with pytest.raises(AppendOnlyError):
        first.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=first.pk).update(action="tampered")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.bulk_update([first], ["action"])
    assert AuditEvent.objects.get(pk=first.pk).action == "job.start.connectivity_check"
    assert AuditEvent.objects.filter(pk__in=[e.pk for e in events[1]]).count() == 3


def test_login_is_audited_and_a_failed_one_counted_without_the_password(client, make_user):
    from axes.models import AccessAttempt

    make_user("bob", "Helpdesk", password="right-password-1")
    client.post("/login/", {"username": "bob", "password": "wrong-password-9"})
    assert AccessAttempt.objects.get(username="bob").failures_since_start == 1
    client.post("/login/", {"username": "bob", "password": "right-password-1"})
    actions = list(AuditEvent.objects.filter(action__startswith="auth.").order_by("id").values_list("action", "target"))
    # A failure is counted (django-axes), not audited one row each; only lockouts are.
    assert actions == [("auth.login", "user:bob")]
    dump = str(list(AuditEvent.objects.values()))
    assert "wrong-password-9" not in dump and "right-password-1" not in dump


def test_audit_page_filters(client, events, role_users):
    client.force_login(role_users["Auditor"])
    page = client.get("/audit/", {"action": "job."}).content.decode()
    assert "job.worker_lost" in page and "dl.migrate" not in page
    page = client.get("/audit/", {"actor": "alice"}).content.decode()
    assert "dl.migrate" in page and "job.worker_lost" not in page
    page = client.get("/audit/", {"since": "not a date"}).content.decode()
    assert "Enter a valid date/time" in page


def test_audit_csv_export_is_filtered_and_formula_safe(client, events, role_users):
    client.force_login(role_users["Administrator"])
    response = client.get("/audit/", {"actor": "alice", "export": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["time", "actor", "action", "target"]
    assert {r[2] for r in rows[1:]} == {"job.start.connectivity_check", "dl.migrate"}
    target = next(r[3] for r in rows[1:] if r[2] == "dl.migrate")
    assert target.startswith("'="), "a cell that a spreadsheet would run as a formula is neutralised"


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_the_database_itself_refuses_to_change_or_remove_audit_events(events):
    """Not only the ORM's manager: raw SQL and the managers' back doors are refused by triggers."""
    from django.db import DatabaseError, connection, transaction

    _, (first, *_rest) = events
    back_doors = [
        lambda: AuditEvent._base_manager.filter(pk=first.pk).update(action="tampered"),
        lambda: models.QuerySet(AuditEvent).filter(pk=first.pk).delete(),
        lambda: connection.cursor().execute("UPDATE audit_auditevent SET action = 'tampered'"),
        lambda: connection.cursor().execute("DELETE FROM audit_auditevent"),
    ]
    for attempt in back_doors:
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            attempt()
    assert AuditEvent.objects.get(pk=first.pk).action == "job.start.connectivity_check"
    assert AuditEvent.objects.filter(action__startswith="job.").count() == 2


def test_changes_of_accounts_and_roles_are_audited_with_who_made_them(client, make_user):
    from django.contrib.auth.models import Group

    admin = make_user("root", "Administrator")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    client.force_login(admin)
    target = make_user("carol", "Helpdesk")
    # Through the Django admin, as a person would: grant the Approver role and deactivate.
    approver, helpdesk = Group.objects.get(name="Approver"), Group.objects.get(name="Helpdesk")
    client.post(f"/admin/auth/user/{target.pk}/change/", {
        "username": "carol", "is_active": "", "groups": [helpdesk.pk, approver.pk],
        "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00", "initial-date_joined_0": "2026-01-01",
        "initial-date_joined_1": "00:00:00"})
    events = {e.action: e for e in AuditEvent.objects.filter(target="user:carol").order_by("id")}
    assert "account.create" in events
    change = events["account.change"]
    assert change.actor == admin and change.before == {"is_active": True} and change.after == {"is_active": False}
    added = events["account.roles.added"]
    assert added.actor == admin and added.after["roles"] == ["Approver"]
    target.set_password("another-password-42")
    target.save()
    assert AuditEvent.objects.filter(action="account.password_change", target="user:carol").exists()
    assert "another-password-42" not in str(list(AuditEvent.objects.values()))


def test_the_client_address_comes_from_the_trusted_proxy_header_when_set(rf, settings):
    from portal.audit.services import client_ip

    request = rf.get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9")
    assert client_ip(request) == "10.0.0.5"  # no header configured: a forged one is ignored
    settings.AUDIT_CLIENT_IP_HEADER = "X-Forwarded-For"
    assert client_ip(request) == "203.0.113.9"  # the entry the proxy appended, not the client's claim
    assert client_ip(rf.get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="not-an-ip")) == "10.0.0.5"


def test_denied_requests_are_audited(client, role_users):
    helpdesk = role_users["Helpdesk"]
    client.force_login(helpdesk)
    assert client.get("/audit/").status_code == 403
    assert client.post("/dl/settings/", {"require_approval_for_single": ""}).status_code == 403
    denied = list(AuditEvent.objects.filter(action="access.denied").order_by("id"))
    assert [(e.actor, e.target, e.detail["method"]) for e in denied] == [
        (helpdesk, "/audit/", "GET"), (helpdesk, "/dl/settings/", "POST")]
    assert denied[0].detail["missing"] == ["audit.view_auditevent"]


@pytest.mark.django_db(transaction=True)  # streamed downloads close the connection when they end
def test_exports_and_downloads_are_audited_with_who_and_what(client, role_users, no_enqueue):
    from migrations_app.choices import BackupKind, MigrationStatus
    from migrations_app.models import Migration, MigrationBackup
    from portal.jobs.services import do_start_job, run_job_inline

    admin = role_users["Administrator"]
    client.force_login(admin)
    migration = Migration.objects.create(mail="a@contoso.com", requested_by=role_users["Helpdesk"],
                                         status=MigrationStatus.MIGRATED)
    MigrationBackup.objects.create(migration=migration, kind=BackupKind.ONPREM_GROUP, data={"dn": "CN=a"})
    job = run_job_inline(do_start_job(kind="test_steps", user=admin, params={}))
    assert client.get(f"/dl/migrations/{migration.pk}/backup/{BackupKind.ONPREM_GROUP}.json").status_code == 200
    b"".join(client.get(f"/jobs/{job.pk}/log.txt").streaming_content)
    b"".join(client.get("/audit/", {"export": "csv", "action": "job."}).streaming_content)
    downloads = {e.action: e for e in AuditEvent.objects.filter(action__startswith="download.")}
    assert set(downloads) == {"download.backup", "download.job_log", "download.audit_log"}
    assert downloads["download.backup"].detail["kind"] == BackupKind.ONPREM_GROUP
    assert downloads["download.backup"].target == "dl:a@contoso.com"
    assert downloads["download.audit_log"].detail["query"] == {"export": "csv", "action": "job."}
    assert all(e.actor == admin for e in downloads.values())


def test_actions_read_as_words_beside_their_code(client, events, role_users):
    from portal.audit.models import action_label

    assert action_label("dl.migration.approve.refused") == "DL migration approve refused"
    assert action_label("job.start.connectivity_check") == "Job start connectivity check"
    client.force_login(role_users["Auditor"])
    page = client.get("/audit/").content.decode()
    assert 'Job worker lost <span class="mono small muted">job.worker_lost</span>' in page
