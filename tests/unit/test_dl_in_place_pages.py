"""The method on the DL pages: chosen on the preflight form (posted as the browser renders it), the
recommendation and in-place plan on the report, the in-place report and take-back on the migration page."""

from __future__ import annotations

import pytest

from migrations_app import services as svc
from migrations_app.choices import BackupKind, MigrationMethod, MigrationStatus
from migrations_app.models import Migration, MigrationBackup
from migrations_app.services import MigrationRefused
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from tests.support.forms import form_fields

pytestmark = pytest.mark.django_db


def test_the_method_is_chosen_on_the_preflight_form_and_travels_in_the_options(client, role_users, no_enqueue):
    client.force_login(role_users["Helpdesk"])
    page = client.get("/dl/preflight/?mail=sales-team@contoso.com").content.decode()
    assert "In place: hand its source of authority to the cloud" in page
    fields = form_fields(page, "/dl/preflight/")
    assert fields["method"] == "recreate"  # the default, ticked as rendered
    client.post("/dl/preflight/", {**fields, "method": "in_place"})
    job = Job.objects.get(kind="dl_preflight")
    assert job.params["options"]["method"] == "in_place"

    refused = client.post("/dl/preflight/", {**fields, "method": "sideways"})
    assert refused.status_code == 400 and "Select a valid choice" in refused.content.decode()
    assert Job.objects.count() == 1


def test_the_report_shows_the_recommendation_and_the_in_place_plan(client, role_users):
    user = role_users["Helpdesk"]
    report = {
        "mail": "sales@contoso.com", "ok": True, "summary": "Ready", "group_dn": "CN=Sales,OU=Groups",
        "member_count": 3, "plan": {},
        "checks": [{"key": "sync_client", "title": "Sync client honours the conversion", "outcome": "pass",
                    "detail": "Entra Connect 2.5.79.0.", "objects": [], "objects_total": 0, "remedy": ""}],
        "routing_domain": "contoso.mail.onmicrosoft.com",
        "recommendation": {"method": "in_place", "reasons": [
            {"fact": "sync_client", "favours": "in_place", "text": "Entra Connect 2.5.79.0 honours the conversion."},
            {"fact": "nesting", "favours": "recreate", "text": "1 child list(s) are still on-premises <b>x</b>."}],
            "facts": {}, "unread": []},
    }
    job = Job.objects.create(kind="dl_preflight", user=user, status=JobStatus.SUCCEEDED, result=report,
                             params={"mail": "sales@contoso.com", "options": {"method": "in_place"}})
    client.force_login(user)
    page = client.get(f"/dl/preflight/{job.pk}/").content.decode()
    assert "in place recommended" in page and "Entra Connect 2.5.79.0 honours" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page  # directory text is escaped
    assert "Hand the source of authority to the cloud" in page and "temporary cloud list" not in page


def test_an_in_place_migration_page_reports_it_and_offers_a_take_back(client, role_users):
    migration = Migration.objects.create(
        mail="sales@contoso.com", requested_by=role_users["Helpdesk"], status=MigrationStatus.MIGRATED,
        method=MigrationMethod.IN_PLACE, report={
            "method": "in_place", "group_id": "0f0e", "is_cloud_managed": True, "on_premises_sync_enabled": None,
            "exchange_dir_synced": False, "audit_event": "Change Source of Authority from AD DS to cloud",
            "members": {"before": 3, "now": 3, "missing": []}, "original": {"dn": "CN=Sales", "kept": True}})
    MigrationBackup.objects.create(migration=migration, kind=BackupKind.ONPREM_GROUP, data={"dn": "CN=Sales"})
    client.force_login(role_users["Administrator"])
    page = client.get(f"/dl/migrations/{migration.pk}/").content.decode()
    assert 'id="migration-method">In place<' in page
    assert "isCloudManaged true" in page and "not directory-synced (manageable)" in page
    assert "Take back 1 list" in page and "Restore 1 list on-premises" not in page
    assert "Change address" not in page  # the recreate method's aftercare does not apply
    with pytest.raises(MigrationRefused, match="converted in place"):
        svc.do_start_enable_hybrid_mail_flow(migration=migration, user=role_users["Administrator"], enqueue=False)


def _converted(role_users, method=MigrationMethod.IN_PLACE) -> Migration:
    migration = Migration.objects.create(mail="sales@contoso.com", requested_by=role_users["Helpdesk"],
                                         status=MigrationStatus.MIGRATED, method=method)
    MigrationBackup.objects.create(migration=migration, kind=BackupKind.ONPREM_GROUP, data={"dn": "CN=Sales"})
    return migration


def test_the_take_back_preview_is_a_read_job_started_from_the_migration_page(client, role_users, no_enqueue):
    migration = _converted(role_users)
    client.force_login(role_users["Administrator"])
    page = client.get(f"/dl/migrations/{migration.pk}/").content.decode()
    assert "Show what the take-back overwrites" in page
    client.post(f"/dl/migrations/{migration.pk}/take-back-preview/")
    job = Job.objects.get(kind=svc.KIND_TAKE_BACK_PREVIEW)
    assert job.params == {"migration_id": migration.pk} and job.user == role_users["Administrator"]

    client.force_login(role_users["Helpdesk"])  # reads the cloud and AD for Administrators only
    assert client.post(f"/dl/migrations/{migration.pk}/take-back-preview/").status_code == 403
    recreated = _converted(role_users, method=MigrationMethod.RECREATE)
    with pytest.raises(MigrationRefused, match="only a list converted in place"):
        svc.do_start_take_back_preview(migration=recreated, user=role_users["Administrator"], enqueue=False)
    assert Job.objects.filter(kind=svc.KIND_TAKE_BACK_PREVIEW).count() == 1


def test_the_page_shows_the_latest_take_back_preview_per_attribute_and_membership(client, role_users):
    migration = _converted(role_users)
    row = {"attribute": "displayName / DisplayName", "at_conversion": "Sales", "cloud_now": "Sales <cloud>",
           "ad_value": "Sales", "changed_in_cloud": True, "overwritten": True}
    addresses = {"attribute": "proxyAddresses / EmailAddresses", "at_conversion": ["SMTP:sales@contoso.com"],
                 "cloud_now": ["SMTP:sales@contoso.com", "smtp:extra@contoso.com"],
                 "ad_value": ["SMTP:sales@contoso.com"], "changed_in_cloud": True, "overwritten": True}
    Job.objects.create(kind=svc.KIND_TAKE_BACK_PREVIEW, user=role_users["Administrator"],
                       status=JobStatus.WARNINGS, params={"migration_id": migration.pk},
                       result={"preview": {"attributes": [row, addresses], "lines": [],
                                           "members": {"added": ["new@contoso.com"], "removed": []}}})
    client.force_login(role_users["Administrator"])
    page = client.get(f"/dl/migrations/{migration.pk}/").content.decode()
    assert 'id="take-back-preview"' in page and "Read again" in page
    assert "<td>displayName / DisplayName</td>" in page and "<td>Sales &lt;cloud&gt;</td>" in page
    assert "<td>SMTP:sales@contoso.com, smtp:extra@contoso.com</td>" in page
    assert "changed in the cloud since the conversion" in page and "AD's value will overwrite it</span>" in page
    assert "1 added (new@contoso.com), 0 removed" in page
