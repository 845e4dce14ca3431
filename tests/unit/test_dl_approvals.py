"""Approvals pin what was approved: the database refuses self-approval and a second open migration of
one list, approvals expire within a maximum, refusals are audited, turning four eyes off takes two."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction

from migrations_app import services as svc
from migrations_app.choices import MigrationStatus
from migrations_app.models import Migration, MigrationSettings
from migrations_app.preflight import plan_differences, plan_hash
from portal.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def awaiting(role_users):
    return Migration.objects.create(mail="sales@contoso.com", requested_by=role_users["Helpdesk"],
                                    status=MigrationStatus.AWAITING_APPROVAL, plan_hash="a" * 64)


@pytest.mark.postgres
def test_the_database_refuses_self_approval_whatever_writes_the_row(awaiting):
    with pytest.raises(IntegrityError, match="migration_not_decided_by_requester"), transaction.atomic():
        Migration.objects.filter(pk=awaiting.pk).update(approved_by=awaiting.requested_by)
    awaiting.refresh_from_db()
    assert awaiting.approved_by is None


@pytest.mark.postgres
def test_the_database_refuses_a_second_open_migration_of_one_list(awaiting, role_users):
    with pytest.raises(IntegrityError, match="one_open_migration_per_list"), transaction.atomic():
        Migration.objects.create(mail="SALES@contoso.com", requested_by=role_users["Administrator"],
                                 status=MigrationStatus.QUEUED)
    # Closed ones do not count: a list rolled back may be migrated again.
    Migration.objects.filter(pk=awaiting.pk).update(status=MigrationStatus.ROLLED_BACK)
    Migration.objects.create(mail="sales@contoso.com", requested_by=role_users["Administrator"],
                             status=MigrationStatus.QUEUED)


def test_a_forged_approval_of_ones_own_request_is_refused_and_audited(client, awaiting, no_enqueue):
    requester = awaiting.requested_by
    requester.groups.add(*type(requester.groups.first()).objects.filter(name="Approver"))
    client.force_login(requester)
    signed = {"valid_hours": "24", "confirm": "on"}
    body = client.post(f"/dl/migrations/{awaiting.pk}/approve/", signed, follow=True).content.decode()
    assert "Four eyes" in body and "Nothing was changed" in body
    awaiting.refresh_from_db()
    assert awaiting.status == MigrationStatus.AWAITING_APPROVAL and awaiting.approved_by is None and no_enqueue == []
    refusal = AuditEvent.objects.get(action="dl.migration.approve.refused")
    assert refusal.actor == requester and "Four eyes" in refusal.detail["reason"]


def test_a_replayed_approval_is_refused_and_audited(client, awaiting, role_users, no_enqueue):
    approver = role_users["Approver"]
    client.force_login(approver)
    signed = {"valid_hours": "48", "note": "window Saturday", "confirm": "on"}
    client.post(f"/dl/migrations/{awaiting.pk}/approve/", signed)
    awaiting.refresh_from_db()
    assert awaiting.status == MigrationStatus.QUEUED and awaiting.approved_by == approver
    assert awaiting.approval_expires_at - awaiting.decided_at == timedelta(hours=48)
    assert awaiting.decision_note == "window Saturday"
    queued = list(no_enqueue)
    body = client.post(f"/dl/migrations/{awaiting.pk}/approve/", signed, follow=True).content.decode()
    assert "not awaiting approval" in body and no_enqueue == queued
    assert AuditEvent.objects.filter(action="dl.migration.approve.refused", actor=approver).count() == 1


def test_an_approval_is_valid_at_most_the_configured_maximum(awaiting, role_users, settings, no_enqueue):
    settings.DL_APPROVAL_MAX_VALID_HOURS = 72
    with pytest.raises(svc.MigrationRefused, match="at most 3 day"):
        svc.do_approve_migration(migration=awaiting, user=role_users["Approver"], valid_for=timedelta(days=4))
    awaiting.refresh_from_db()
    assert awaiting.status == MigrationStatus.AWAITING_APPROVAL
    svc.do_approve_migration(migration=awaiting, user=role_users["Approver"], valid_for=timedelta(days=3))


def test_a_rejection_records_who_and_why(client, awaiting, role_users):
    client.force_login(role_users["Approver"])
    client.post(f"/dl/migrations/{awaiting.pk}/reject/", {"reason": "not during the audit"})
    page = client.get(f"/dl/migrations/{awaiting.pk}/").content.decode()
    assert "Rejected by approver" in page and "not during the audit" in page and "Approved by" not in page


def test_turning_four_eyes_off_needs_a_second_administrator(client, make_user):
    first, second = make_user("admin-a", "Administrator"), make_user("admin-b", "Administrator")
    MigrationSettings.objects.update_or_create(pk=1, defaults={"require_approval_for_single": True})
    client.force_login(first)
    form = {"default_hybrid_mail_flow": "on", "default_keep_original": "on"}  # the approval box unticked
    body = client.post("/dl/settings/", form, follow=True).content.decode()
    assert "needs a second Administrator" in body and "Confirm: turn approvals off" not in body
    assert MigrationSettings.current().require_approval_for_single
    body = client.post("/dl/settings/four-eyes-off/confirm/", follow=True).content.decode()
    assert "another Administrator must confirm" in body and MigrationSettings.current().require_approval_for_single
    client.force_login(second)
    assert "Confirm: turn approvals off" in client.get("/dl/settings/").content.decode()
    client.post("/dl/settings/four-eyes-off/confirm/")
    assert not MigrationSettings.current().require_approval_for_single
    event = AuditEvent.objects.get(action="dl.settings.four_eyes_off")
    assert event.detail == {"requested_by": "admin-a", "confirmed_by": "admin-b"} and event.actor == second


def test_plan_differences_name_what_changed():
    old = {"group_guid": "g", "members": ["cn=a", "cn=b"], "options": {"keep_original": True}}
    new = {"group_guid": "g", "members": ["cn=a", "cn=c"], "options": {"keep_original": False}}
    assert plan_hash(old) != plan_hash(new) and plan_hash(old) == plan_hash(dict(reversed(old.items())))
    assert plan_differences(old, new) == ["members: 1 added (cn=c)", "members: 1 removed (cn=b)",
                                          "options.keep_original: True → False"]


def test_cancelling_a_queued_migration_marks_the_migration_cancelled(awaiting, role_users, no_enqueue):
    from portal.jobs.services import do_cancel_job

    migration = svc.do_approve_migration(migration=awaiting, user=role_users["Approver"])
    assert migration.status == MigrationStatus.QUEUED
    do_cancel_job(job=migration.job, user=role_users["Administrator"])
    migration.refresh_from_db()
    assert migration.status == MigrationStatus.CANCELLED and migration.finished_at
    # The list is free for a new request.
    svc.check_no_open_migration(mail=migration.mail)


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_concurrent_requests_for_one_list_make_exactly_one_migration(role_users, monkeypatch, no_enqueue):
    import threading

    from django.db import connection

    from tests.unit.test_dl_pages import passed_preflight

    users = [role_users["Helpdesk"], role_users["Administrator"]]
    for user in users:
        passed_preflight(user, "race@contoso.com")
    # Both requests passed the service's own check before either wrote (the race): the database decides.
    monkeypatch.setattr(svc, "check_no_open_migration", lambda *, mail: None)
    outcomes: list[str] = []

    def request(user):
        try:
            svc.do_request_migration(mail="race@contoso.com", user=user, enqueue=False)
            outcomes.append("created")
        except svc.MigrationRefused as exc:
            outcomes.append(str(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=request, args=(users[i % 2],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(outcomes) == 4 and outcomes.count("created") == 1, outcomes
    assert all("already has an open migration" in o for o in outcomes if o != "created")
    assert Migration.objects.filter(mail__iexact="race@contoso.com").count() == 1


def test_the_approvers_queue_and_the_navigation_badge(client, awaiting, role_users, make_user):
    approver = role_users["Approver"]
    client.force_login(approver)
    page = client.get("/dl/approvals/").content.decode()
    assert "sales@contoso.com" in page and f"/dl/migrations/{awaiting.pk}/" in page
    assert 'id="nav-approvals"' in page and '<span class="badge badge-amber nav-count">1</span>' in page
    # The requester's own request is not in their queue, and a Helpdesk tech has no queue at all.
    client.force_login(awaiting.requested_by)
    page = client.get("/dl/").content.decode()
    assert 'id="nav-approvals"' not in page
    assert client.get("/dl/approvals/").status_code == 403


def test_reject_needs_a_reason(client, awaiting, role_users):
    client.force_login(role_users["Approver"])
    body = client.post(f"/dl/migrations/{awaiting.pk}/reject/", {"reason": "  "}, follow=True).content.decode()
    assert "Say why it is rejected" in body
    awaiting.refresh_from_db()
    assert awaiting.status == MigrationStatus.AWAITING_APPROVAL


def test_the_requester_withdraws_a_pending_request_and_nobody_else_can(client, awaiting, role_users):
    client.force_login(role_users["Administrator"])
    body = client.post(f"/dl/migrations/{awaiting.pk}/withdraw/", follow=True).content.decode()
    assert "Only the person who requested" in body
    client.force_login(awaiting.requested_by)
    page = client.get(f"/dl/migrations/{awaiting.pk}/").content.decode()
    assert "Withdraw my request" in page
    client.post(f"/dl/migrations/{awaiting.pk}/withdraw/")
    awaiting.refresh_from_db()
    assert awaiting.status == MigrationStatus.CANCELLED and "Withdrawn" in awaiting.decision_note
    assert AuditEvent.objects.filter(action="dl.migration.withdraw", actor=awaiting.requested_by).exists()
    assert AuditEvent.objects.filter(action="dl.migration.withdraw.refused").count() == 1
