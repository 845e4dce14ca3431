"""The DL migration pages, without the lab: who may see and do what, refusals, filters, escaping."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from django.test import Client
from django.utils import timezone

from migrations_app.choices import BackupKind, ListKind, ListState, MigrationStatus
from migrations_app.models import DistributionList, Migration, MigrationBackup, MigrationSettings
from migrations_app.options import MigrationOptions
from portal.audit.models import AuditEvent
from portal.connectors import ad
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from tests.support.forms import form_fields

pytestmark = pytest.mark.django_db

OU = "OU=Lists,OU=Sync,DC=contoso,DC=com"


@pytest.fixture
def ad_down(monkeypatch):
    """A list's page reads its members from AD (tests/integration/test_directory_pages.py shows them read from
    the lab's); a unit test that opens one says so by taking this fixture: AD is down, the page still answers."""
    def down(**kwargs):
        raise ad.ServerDown("lab AD not running in unit tests")
    monkeypatch.setattr("migrations_app.views.directory_object", down)


def make_list(name: str, **fields) -> DistributionList:
    defaults = dict(guid=uuid.uuid4(), dn=f"CN={name},{OU}", display_name=name, mail=f"{name}@contoso.com",
                    alias=name, ou=OU, kind=ListKind.DISTRIBUTION, state=ListState.SYNCED, member_count=10,
                    inventoried_at=timezone.now(), cloud_type="MailUniversalDistributionGroup")
    defaults.update(fields)
    return DistributionList.objects.create(name=name, **defaults)


def passed_preflight(user, mail: str, options: dict | None = None) -> Job:
    opts = MigrationOptions.from_dict(options or {}).to_dict()
    checks = [{"key": "found_once", "title": "Found exactly once", "outcome": "pass", "detail": "One group.",
               "objects": [], "objects_total": 0, "remedy": ""},
              {"key": "security_group", "title": "Security group permissions", "outcome": "warning",
               "detail": "Check it.", "objects": [f"CN=x{i},{OU}" for i in range(25)], "objects_total": 40,
               "remedy": "Check where the group is used."}]
    return Job.objects.create(
        kind="dl_preflight", name="DL preflight", target=mail, user=user, status=JobStatus.WARNINGS,
        params={"mail": mail, "options": opts}, finished_at=timezone.now(),
        result={"mail": mail, "ok": True, "summary": "Ready to migrate, with 1 warning(s) to read first.",
                "group_dn": f"CN=x,{OU}", "group_guid": None, "group_name": mail.split("@")[0], "member_count": 12,
                "routing_domain": "contoso.mail.onmicrosoft.com",
                "failures": 0, "warnings": 1, "calls": {}, "checks": checks})


def login(client, user) -> Client:
    client.force_login(user)
    return client


# -- viewing ---------------------------------------------------------------------------------------
def test_every_role_views_inventory_list_and_migration_pages(client, role_users, ad_down):
    dl = make_list("sales-team")
    migration = Migration.objects.create(mail=dl.mail, group_guid=dl.guid, requested_by=role_users["Helpdesk"],
                                         status=MigrationStatus.MIGRATED, distribution_list=dl)
    for user in role_users.values():
        login(client, user)
        assert client.get("/dl/").status_code == 200
        page = client.get(f"/dl/{dl.guid}/")
        assert page.status_code == 200
        body = page.content.decode()
        assert "Active Directory could not be read" in body and f"#{migration.pk}" in body
        assert client.get("/dl/migrations/").status_code == 200
        assert client.get(f"/dl/migrations/{migration.pk}/").status_code == 200


def test_empty_inventory_explains_how_to_fill_it(client, role_users, no_enqueue):
    login(client, role_users["Helpdesk"])
    body = client.get("/dl/").content.decode()
    assert "No list inventoried yet" in body and "Run the inventory" in body
    response = client.post("/dl/inventory/")
    job = Job.objects.get(kind="dl_inventory")
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"


def test_a_list_gone_from_active_directory_says_so(client, role_users, monkeypatch):
    def gone(**kwargs):
        raise ad.NotFound("no object with this GUID")
    monkeypatch.setattr("migrations_app.views.directory_object", gone)
    dl = make_list("sales-team")
    login(client, role_users["Helpdesk"])
    body = client.get(f"/dl/{dl.guid}/").content.decode()
    assert "no longer in Active Directory under this GUID" in body and "sales-team@contoso.com" in body


def test_auditor_views_but_cannot_post(client, role_users, no_enqueue, ad_down):
    dl = make_list("sales-team")
    login(client, role_users["Auditor"])
    body = client.get(f"/dl/{dl.guid}/").content.decode()
    assert "Preflight</a>" not in body
    assert "Run the inventory" not in client.get("/dl/").content.decode()
    assert client.post("/dl/preflight/", {"mail": dl.mail}).status_code == 403
    assert client.post("/dl/inventory/").status_code == 403
    job = passed_preflight(role_users["Helpdesk"], dl.mail)
    report = client.get(f"/dl/preflight/{job.pk}/").content.decode()
    assert "Migrate 1 list" not in report and "can start this migration" in report
    assert client.post("/dl/migrate/", {"preflight": job.pk}).status_code == 403
    assert Job.objects.filter(kind="dl_preflight").count() == 1 and no_enqueue == []


# -- preflight and migrate ---------------------------------------------------------------------------
def test_helpdesk_runs_a_preflight_from_the_form(client, role_users, no_enqueue):
    MigrationSettings.objects.update_or_create(pk=1, defaults={"default_hybrid_mail_flow": True,
                                                               "default_keep_original": False})
    login(client, role_users["Helpdesk"])
    form = client.get("/dl/preflight/?mail=sales-team@contoso.com").content.decode()
    assert 'value="sales-team@contoso.com"' in form
    assert re.search(r'<input type="checkbox" name="hybrid_mail_flow"[^>]* checked>', form)
    assert not re.search(r'<input type="checkbox" name="keep_original"[^>]* checked>', form)
    assert 'id="id_hybrid_mail_flow_helptext"' in form
    assert "csrfmiddlewaretoken" in form
    response = client.post("/dl/preflight/", {"mail": " sales-team@contoso.com ", "hybrid_mail_flow": "on",
                                              "name_prefix": "EXO-"})
    job = Job.objects.get(kind="dl_preflight")
    assert response.status_code == 302 and response["Location"] == f"/dl/preflight/{job.pk}/"
    assert job.params["mail"] == "sales-team@contoso.com"
    assert job.params["options"]["hybrid_mail_flow"] is True and job.params["options"]["name_prefix"] == "EXO-"
    running = client.get(f"/dl/preflight/{job.pk}/").content.decode()
    assert 'data-state="running"' in running and f"/jobs/{job.pk}/" in running


@pytest.mark.parametrize("data,message", [
    ({"mail": "not an address"}, "is not an e-mail address"),
    ({"mail": ""}, "This field is required"),
    ({"mail": "a@contoso.com", "routing_domain": "bad domain"}, "is not a domain name"),
    ({"mail": "a@contoso.com", "name_prefix": "<b>"}, "the name prefix may hold"),
    ({"mail": "a@contoso.com", "non_sync_ou": "Disabled lists"}, "is not a distinguished name"),
    ({"mail": "a@contoso.com", "group_type": "Room"}, "Select a valid choice"),
])
def test_bad_address_or_options_are_refused_and_nothing_queued(client, role_users, no_enqueue, data, message):
    login(client, role_users["Helpdesk"])
    response = client.post("/dl/preflight/", data)
    assert response.status_code == 400
    body = response.content.decode()
    assert message in body
    assert Job.objects.count() == 0 and no_enqueue == []


def test_report_groups_checks_shows_plan_and_migrates(client, role_users, no_enqueue):
    user = role_users["Helpdesk"]
    login(client, user)
    job = passed_preflight(user, "procurement-team@contoso.com", {"hybrid_mail_flow": True})
    body = client.get(f"/dl/preflight/{job.pk}/").content.decode()
    assert 'data-state="finished"' in body and "Ready, with warnings" in body
    assert body.index("Warnings") < body.index("Passed")
    assert "and 15 more (40 in all" in body and "What to do" in body
    assert "Create a temporary cloud list" in body and "with 12 member(s)" in body
    # The plan names the real routing domain the preflight found, not a placeholder.
    assert "procurement-team@contoso.mail.onmicrosoft.com" in body and "<tenant>" not in body
    assert "targetAddress at contoso.mail.onmicrosoft.com" in body
    assert "Migrate 1 list" in body and "Request approval" not in body
    response = client.post("/dl/migrate/", {"preflight": job.pk})
    migration = Migration.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/dl/migrations/{migration.pk}/"
    assert migration.status == MigrationStatus.QUEUED and migration.job.kind == "dl_migrate"
    page = client.get(response["Location"]).content.decode()
    assert "Queued" in page and f"/jobs/{migration.job_id}/" in page
    # A second request is refused with a sentence, and nothing more is queued.
    again = client.post("/dl/migrate/", {"preflight": job.pk}, follow=True).content.decode()
    assert "already has migration" in again and "Nothing was queued" in again
    assert Migration.objects.count() == 1 and Job.objects.filter(kind="dl_migrate").count() == 1


def test_migrate_without_a_passed_preflight_is_refused(client, role_users, no_enqueue):
    user = role_users["Helpdesk"]
    login(client, user)
    job = passed_preflight(user, "x@contoso.com")
    Job.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, result={**job.result, "ok": False,
                                                                         "summary": "1 check(s) failed"})
    body = client.post("/dl/migrate/", {"preflight": job.pk}, follow=True).content.decode()
    assert "did not pass" in body and Migration.objects.count() == 0 and no_enqueue == []
    assert "Start from a preflight" in client.post("/dl/migrate/", {"preflight": "nope"}, follow=True).content.decode()


def test_approval_setting_changes_the_button_and_four_eyes_apply(client, role_users, no_enqueue):
    MigrationSettings.objects.update_or_create(pk=1, defaults={"require_approval_for_single": True})
    approver, helpdesk = role_users["Approver"], role_users["Helpdesk"]
    login(client, helpdesk)
    job = passed_preflight(helpdesk, "logistics-team@contoso.com")
    assert "Request approval for 1 list" in client.get(f"/dl/preflight/{job.pk}/").content.decode()
    client.post("/dl/migrate/", {"preflight": job.pk})
    migration = Migration.objects.get()
    assert migration.status == MigrationStatus.AWAITING_APPROVAL and no_enqueue == []
    # The requester's own page says why there is no button.
    own = client.get(f"/dl/migrations/{migration.pk}/").content.decode()
    assert "four eyes" in own and "Approve and start" not in own
    assert client.post(f"/dl/migrations/{migration.pk}/approve/").status_code == 403
    # An Approver approves someone else's request.
    login(client, approver)
    page = client.get(f"/dl/migrations/{migration.pk}/").content.decode()
    assert "Approve and start migration" in page
    fields = form_fields(page, f"/dl/migrations/{migration.pk}/approve/")
    # The confirmation is not ticked for the approver: the form as rendered is refused.
    body = client.post(f"/dl/migrations/{migration.pk}/approve/", fields, follow=True).content.decode()
    assert "Tick the confirmation" in body
    migration.refresh_from_db()
    assert migration.status == MigrationStatus.AWAITING_APPROVAL
    client.post(f"/dl/migrations/{migration.pk}/approve/", {**fields, "confirm": "on"})
    migration.refresh_from_db()
    assert migration.status == MigrationStatus.QUEUED and migration.approved_by == approver
    assert migration.job.kind == "dl_migrate"
    # The approver started it on behalf of the requester: the job is the requester's, the audit names both.
    assert migration.job.user == helpdesk
    event = AuditEvent.objects.get(action="job.start.dl_migrate")
    assert event.actor == approver and event.detail == {"on_behalf_of": helpdesk.get_username()}


def test_approver_cannot_approve_own_request(client, role_users, no_enqueue):
    approver = role_users["Approver"]
    migration = Migration.objects.create(mail="a@contoso.com", requested_by=approver,
                                         status=MigrationStatus.AWAITING_APPROVAL)
    login(client, approver)
    page = client.get(f"/dl/migrations/{migration.pk}/").content.decode()
    assert "Approve and start" not in page and "someone else" in page
    body = client.post(f"/dl/migrations/{migration.pk}/approve/", {"confirm": "on"}, follow=True).content.decode()
    assert "Four eyes" in body
    migration.refresh_from_db()
    assert migration.status == MigrationStatus.AWAITING_APPROVAL and no_enqueue == []
    other = Migration.objects.create(mail="b@contoso.com", requested_by=role_users["Helpdesk"],
                                     status=MigrationStatus.AWAITING_APPROVAL)
    client.post(f"/dl/migrations/{other.pk}/reject/", {"reason": "not this week"})
    other.refresh_from_db()
    assert other.status == MigrationStatus.REJECTED


def test_aftercare_actions_by_role(client, role_users, no_enqueue):
    migration = Migration.objects.create(mail="a@contoso.com", requested_by=role_users["Helpdesk"],
                                         status=MigrationStatus.MIGRATED)
    MigrationBackup.objects.create(migration=migration, kind=BackupKind.ONPREM_GROUP, data={"dn": "CN=a"})
    login(client, role_users["Helpdesk"])
    page = client.get(f"/dl/migrations/{migration.pk}/").content.decode()
    assert "Enable hybrid mail flow" not in page and "Restore 1 list" not in page
    assert client.post(f"/dl/migrations/{migration.pk}/restore/").status_code == 403
    login(client, role_users["Administrator"])
    page = client.get(f"/dl/migrations/{migration.pk}/").content.decode()
    assert "Enable hybrid mail flow" in page and "Restore 1 list on-premises" in page and "Change address" in page
    bad = client.post(f"/dl/migrations/{migration.pk}/address/", {"new_address": "nope", "confirm": "on"}, follow=True)
    assert "is not an e-mail address" in bad.content.decode() and no_enqueue == []
    fields = form_fields(page, f"/dl/migrations/{migration.pk}/address/")
    unconfirmed = {**fields, "new_address": "b@contoso.com", "new_alias": "b"}
    body = client.post(f"/dl/migrations/{migration.pk}/address/", unconfirmed, follow=True).content.decode()
    assert "Tick the confirmation" in body and not Job.objects.filter(kind="dl_update_address").exists()
    client.post(f"/dl/migrations/{migration.pk}/address/", {**unconfirmed, "confirm": "on"})
    job = Job.objects.get(kind="dl_update_address")
    assert job.params == {"migration_id": migration.pk, "new_address": "b@contoso.com", "new_alias": "b"}
    restore = form_fields(page, f"/dl/migrations/{migration.pk}/restore/")
    for typed in ("", "someone-else@contoso.com"):
        body = client.post(f"/dl/migrations/{migration.pk}/restore/", {**restore, "confirm_mail": typed},
                           follow=True).content.decode()
        assert "(a@contoso.com) in the confirmation field" in body
    assert not Job.objects.filter(kind="dl_restore").exists()
    client.post(f"/dl/migrations/{migration.pk}/restore/", {**restore, "confirm_mail": "A@contoso.com "})
    assert Job.objects.filter(kind="dl_restore").count() == 1


# -- inventory table ---------------------------------------------------------------------------------
def test_inventory_filters_search_and_sort(client, role_users):
    make_list("alpha", member_count=0)
    make_list("bravo", member_count=150, child_lists=[f"CN=c,{OU}"])
    make_list("charlie", member_count=5000, state=ListState.MIGRATED, dependencies={"authOrig": [f"CN=u,{OU}"]},
              dependency_count=1, ou="OU=Other,DC=contoso,DC=com")
    make_list("delta", member_count=20, kind=ListKind.SECURITY, alias="dee", parent_lists=[f"CN=p,{OU}"])
    login(client, role_users["Auditor"])

    def names(query: str) -> list[str]:
        response = client.get(f"/dl/?{query}")
        assert response.status_code == 200
        table = response.context["table"]
        return [row.record.name for row in table.paginated_rows]

    assert names("") == ["alpha", "bravo", "charlie", "delta"]
    assert names("size=0") == ["alpha"]
    assert names("size=100-999") == ["bravo"]
    assert names("size=5000-") == ["charlie"]
    assert names("nested=yes") == ["bravo", "delta"]
    assert names("nested=no") == ["alpha", "charlie"]
    assert names("state=migrated") == ["charlie"]
    assert names("state=synced") == ["alpha", "bravo", "delta"]
    assert names("has_dependencies=yes") == ["charlie"]
    assert names("kind=security") == ["delta"]
    assert names("ou=OU%3DOther%2CDC%3Dcontoso%2CDC%3Dcom") == ["charlie"]
    assert names("q=dee") == ["delta"]
    assert names("q=BRAVO@contoso") == ["bravo"]
    assert names("sort=-member_count") == ["charlie", "bravo", "delta", "alpha"]
    body = client.get("/dl/").content.decode()
    assert 'hx-push-url="true"' in body and "4 results" in body and "4 lists inventoried" in body


def test_migration_list_filters_by_status(client, role_users):
    Migration.objects.create(mail="a@contoso.com", status=MigrationStatus.MIGRATED)
    Migration.objects.create(mail="b@contoso.com", status=MigrationStatus.ROLLED_BACK)
    login(client, role_users["Auditor"])
    response = client.get("/dl/migrations/?status=rolled_back")
    assert [r.record.mail for r in response.context["table"].paginated_rows] == ["b@contoso.com"]
    assert "Failed, rolled back" in response.content.decode()


# -- backups, CSRF, escaping -------------------------------------------------------------------------
def test_backup_download_as_json(client, role_users):
    migration = Migration.objects.create(mail="a@contoso.com", status=MigrationStatus.MIGRATED)
    MigrationBackup.objects.create(migration=migration, kind=BackupKind.ONPREM_MEMBERS,
                                   data={"members": [{"dn": "CN=u1"}]})
    login(client, role_users["Auditor"])
    assert "onprem_members.json" in client.get(f"/dl/migrations/{migration.pk}/").content.decode()
    response = client.get(f"/dl/migrations/{migration.pk}/backup/onprem_members.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert f'migration-{migration.pk}-onprem_members.json' in response["Content-Disposition"]
    assert json.loads(response.content)["data"] == {"members": [{"dn": "CN=u1"}]}
    assert client.get(f"/dl/migrations/{migration.pk}/backup/cloud_group.json").status_code == 404
    assert client.get(f"/dl/migrations/{migration.pk}/backup/bogus.json").status_code == 404


def test_forms_carry_csrf_and_posts_without_it_are_refused(role_users):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(role_users["Administrator"])
    migration = Migration.objects.create(mail="a@contoso.com", status=MigrationStatus.MIGRATED,
                                         requested_by=role_users["Helpdesk"])
    MigrationBackup.objects.create(migration=migration, kind=BackupKind.ONPREM_GROUP, data={})
    for url in ("/dl/preflight/", "/dl/settings/", f"/dl/migrations/{migration.pk}/", "/dl/"):
        body = strict.get(url).content.decode()
        assert body.count("<form method=\"post\"") <= body.count("csrfmiddlewaretoken"), url
    for url in ("/dl/preflight/", "/dl/inventory/", "/dl/migrate/", "/dl/settings/",
                f"/dl/migrations/{migration.pk}/restore/"):
        assert strict.post(url, {"mail": "a@contoso.com"}).status_code == 403, url
    assert Job.objects.count() == 0


def test_script_in_a_list_name_is_escaped(client, role_users):
    evil = '<script>alert(1)</script>'
    dl = make_list("evil", display_name=evil, child_lists=[f"CN={evil},{OU}"])
    DistributionList.objects.filter(pk=dl.pk).update(name=evil)
    login(client, role_users["Auditor"])
    for url in ("/dl/", f"/dl/{dl.guid}/"):
        body = client.get(url).content.decode()
        assert evil not in body, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body, url


def test_settings_page_is_for_administrators(client, role_users):
    login(client, role_users["Helpdesk"])
    assert client.get("/dl/settings/").status_code == 403
    login(client, role_users["Administrator"])
    client.post("/dl/settings/", {"require_approval_for_single": "on", "default_keep_original": "on"})
    current = MigrationSettings.current()
    assert current.require_approval_for_single and current.default_keep_original
    assert not current.default_hybrid_mail_flow and current.updated_by == role_users["Administrator"]


def test_the_migration_page_follows_its_aftercare_jobs_and_lists_its_activity(client, role_users, no_enqueue):
    from migrations_app import services as svc

    admin = role_users["Administrator"]
    migration = Migration.objects.create(mail="a@contoso.com", requested_by=role_users["Helpdesk"],
                                         status=MigrationStatus.MIGRATED)
    login(client, admin)
    job = svc.do_start_update_address(migration=migration, new_address="b@contoso.com", user=admin)
    page = client.get(f"/dl/migrations/{migration.pk}/").content.decode()
    # The change runs: the page polls itself and says so, without a visit to Jobs.
    assert 'data-state="running"' in page and "Change address of a migrated list" in page
    assert "this page updates by itself" in page
    Job.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, summary="Exchange Online refused the change.",
                                         finished_at=timezone.now())
    page = client.get(f"/dl/migrations/{migration.pk}/").content.decode()
    assert 'data-state="settled"' in page and "Exchange Online refused the change." in page
    assert "It did not finish" in page
    activity = page[page.index('id="activity"'):]
    assert f"Change address of a migrated list job #{job.pk}" in activity and "job.start.dl_update_address" in activity
    # And the job's page leads back to the migration.
    job_page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert f'href="/dl/migrations/{migration.pk}/" id="job-object"' in job_page


def test_written_back_groups_show_their_cloud_display_name_and_say_so(client, role_users, settings):
    settings.AD_HOST, settings.AD_WRITEBACK_OU = "dc.contoso.com", "OU=Writeback,DC=contoso,DC=com"
    make_list("Group_0a1b2c3d-aaaa-bbbb-cccc-0123456789ab", display_name="Finance Team (cloud)",
              ou="OU=Writeback,DC=contoso,DC=com")
    make_list("plain-list")
    login(client, role_users["Helpdesk"])
    page = client.get("/dl/").content.decode()
    assert 'Finance Team (cloud) <span class="badge badge-grey"' in page and "written back from the cloud" in page
    assert page.count("written back from the cloud") == 1


def test_options_read_as_the_form_names_them(client, role_users):
    options = {"keep_original": True, "hybrid_mail_flow": False, "name_prefix": "EXO-"}
    migration = Migration.objects.create(mail="a@contoso.com", requested_by=role_users["Helpdesk"],
                                         status=MigrationStatus.MIGRATED, options=options)
    login(client, role_users["Helpdesk"])
    page = client.get(f"/dl/migrations/{migration.pk}/").content.decode()
    assert "Keep the original group: Yes" in page and "Name prefix: EXO-" in page
    assert "keep_original=" not in page and "Hybrid mail flow:" not in page


def test_the_now_panel_says_what_it_could_not_read(client, role_users, monkeypatch):
    from portal.connectors import registry

    def unreachable():
        raise registry.NotConfigured("not reachable in this test")

    # Both directories unreachable on purpose: a lab left running by another test on this worker must not answer.
    monkeypatch.setattr(registry, "exchange_online", unreachable)
    monkeypatch.setattr(registry, "active_directory", unreachable)
    migration = Migration.objects.create(mail="a@contoso.com", requested_by=role_users["Helpdesk"],
                                         status=MigrationStatus.MIGRATED, group_guid=uuid.uuid4())
    login(client, role_users["Auditor"])
    page = client.get(f"/dl/migrations/{migration.pk}/").content.decode()
    assert f'hx-get="/dl/migrations/{migration.pk}/now/"' in page
    panel = client.get(f"/dl/migrations/{migration.pk}/now/")
    body = panel.content.decode()
    assert panel.status_code == 200 and body.count("unknown") >= 2
    assert "Exchange Online could not be read: not reachable in this test" in body


def test_the_migration_page_shows_the_last_lines_of_its_job(client, role_users, no_enqueue):
    from portal.jobs.runner import append_line

    migration = Migration.objects.create(mail="a@contoso.com", requested_by=role_users["Helpdesk"],
                                         status=MigrationStatus.RUNNING)
    job = Job.objects.create(kind="dl_migrate", name="DL migration", user=role_users["Helpdesk"],
                             params={"migration_id": migration.pk}, status=JobStatus.RUNNING)
    Migration.objects.filter(pk=migration.pk).update(job=job)
    for n in range(12):
        append_line(job.pk, level="info", message=f"step line {n}")
    login(client, role_users["Helpdesk"])
    page = client.get(f"/dl/migrations/{migration.pk}/").content.decode()
    recent = page[page.index('id="recent-log"'):]
    assert "step line 11" in recent and "step line 4" in recent and "step line 3" not in recent
    assert 'data-state="running"' in page


def test_pages_name_a_migration_by_its_own_number_and_its_job_by_the_jobs(client, role_users, no_enqueue):
    """A migration and its job are numbered apart (a user read "job 12" for migration 7): every page says
    which is which."""
    from migrations_app import services as svc

    admin = role_users["Administrator"]
    for _ in range(3):  # the job numbers run ahead of the migration numbers, as they do in real use
        Job.objects.create(kind="test_steps", name="Test steps", user=admin)
    migration = Migration.objects.create(mail="a@contoso.com", requested_by=role_users["Helpdesk"],
                                         status=MigrationStatus.MIGRATED)
    job = svc.do_start_update_address(migration=migration, new_address="b@contoso.com", user=admin)
    Migration.objects.filter(pk=migration.pk).update(job=job)
    assert job.pk != migration.pk
    login(client, admin)

    job_page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert f'<span class="muted">job #{job.pk} · for Migration #{migration.pk}</span></h1>' in job_page
    assert f'href="/dl/migrations/{migration.pk}/" id="job-object">Migration #{migration.pk}</a>' in job_page
    assert f"<title>Job #{job.pk} · Migration #{migration.pk}" in job_page

    migration_page = client.get(f"/dl/migrations/{migration.pk}/").content.decode()
    assert f"migration #{migration.pk}</span></h1>" in migration_page
    assert f"job #{job.pk} — live log" in migration_page

    listing = client.get("/dl/migrations/").content.decode()
    row = listing[listing.index(f'href="/dl/migrations/{migration.pk}/"'):]
    row = row[:row.index("</tr>")]
    assert f">#{migration.pk}</a>" in row and f">job #{job.pk}</a>" in row
    # The job's raw result stays folded: the migration page presents it.
    Job.objects.filter(pk=job.pk).update(result={"migration": migration.pk, "status": "migrated"})
    job_page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert (f'<summary>Result as recorded (<a href="/dl/migrations/{migration.pk}/">Migration #{migration.pk}</a> '
            "presents it)</summary>") in job_page
