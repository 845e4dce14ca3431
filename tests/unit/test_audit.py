"""The audit trail is append-only, filterable, and exports to CSV safely."""

import csv
import io

import pytest

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
    assert AuditEvent.objects.count() == 3


def test_login_and_failed_login_are_audited_without_the_password(client, make_user):
    make_user("bob", "Helpdesk", password="right-password-1")
    client.post("/login/", {"username": "bob", "password": "wrong-password-9"})
    client.post("/login/", {"username": "bob", "password": "right-password-1"})
    actions = list(AuditEvent.objects.order_by("id").values_list("action", "target"))
    assert actions == [("auth.login_failed", "user:bob"), ("auth.login", "user:bob")]
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
