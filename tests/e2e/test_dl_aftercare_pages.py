"""An Administrator migrates a lab list without hybrid mail flow, enables it afterwards, changes the
list's address and restores it, all from the migration page, which follows each job to its outcome
without a visit to Jobs."""

import re

import pytest

from migrations_app.choices import MigrationStatus
from migrations_app.models import Migration
from portal.jobs.models import Job
from tests.e2e.conftest import login, screenshot
from tests.integration.dl_lab import fresh_list

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def _settled(page, text: str, timeout: int = 180_000) -> None:
    page.wait_for_selector("#migration-live[data-state=settled]", timeout=timeout)
    page.wait_for_function("t => document.querySelector('#current-action')?.innerText.includes(t)", arg=text,
                           timeout=10_000)


def test_migrate_change_address_and_restore_from_the_migration_page(page, rq_workers, make_user, lab_tenant, lab):
    rq_workers(1)
    make_user("admin", "Administrator")
    mail, _ = fresh_list(lab, prefix="dlafter", members=3)
    login(page, "admin")

    page.goto(f"/dl/preflight/?mail={mail}")
    page.get_by_label("Hybrid mail flow").uncheck()
    page.get_by_role("button", name="Run preflight").click()
    page.wait_for_selector("#preflight-live[data-state=finished]", timeout=60_000)
    page.get_by_role("button", name="Migrate 1 list").click()
    page.wait_for_url(re.compile(r".*/dl/migrations/\d+/$"))
    page.wait_for_selector("#migration-live[data-state=settled]", timeout=180_000)
    assert page.locator("#migration-status").inner_text().startswith("Migrated")
    migration = Migration.objects.get(pk=int(page.url.rstrip("/").rsplit("/", 1)[1]))
    assert not migration.dynamic_list_dn
    # Beside the report "as migrated", the page reads what the directories hold now.
    now = page.locator("#now-facts")
    now.wait_for(timeout=30_000)
    assert "cloud-only" in now.inner_text() and "MigratedByScript" in now.inner_text()

    page.locator("#aftercare").get_by_role("button", name="Enable hybrid mail flow").click()
    _settled(page, "Succeeded")
    migration.refresh_from_db()
    assert migration.dynamic_list_dn and migration.options.get("hybrid_mail_flow") is False
    assert page.locator("#aftercare").get_by_role("button", name="Enable hybrid mail flow").count() == 0

    new_mail = mail.replace("@", "-renamed@")
    aftercare = page.locator("#aftercare")
    aftercare.get_by_label("New primary SMTP address").fill(new_mail)
    aftercare.get_by_role("button", name="Change address").click()  # not confirmed: the browser holds it back
    assert not Job.objects.filter(kind="dl_update_address").exists()
    aftercare.get_by_label("Change the address in both directories now").check()
    aftercare.get_by_role("button", name="Change address").click()
    _settled(page, "Succeeded")
    migration.refresh_from_db()
    assert migration.mail == new_mail
    screenshot(page, "e2e-dl-address-changed")

    restore = page.locator("#restore-form")
    restore.get_by_label(re.compile("Type the list's address to confirm")).fill(mail)  # the old one: refused
    restore.get_by_role("button", name="Restore 1 list on-premises").click()
    page.wait_for_selector("text=in the confirmation field")
    restore = page.locator("#restore-form")
    restore.get_by_label(re.compile("Type the list's address to confirm")).fill(new_mail)
    restore.get_by_role("button", name="Restore 1 list on-premises").click()
    _settled(page, "Restore a migrated list on-premises")
    migration.refresh_from_db()
    assert migration.status == MigrationStatus.RESTORED, page.locator("#current-action").inner_text()
    # The flash that announced the start does not outlive it: the page shows the outcome instead.
    assert "Restore started" not in page.locator("#messages").inner_text()
    activity = page.locator("#activity").inner_text()
    assert "Change address of a migrated list" in activity and "Restore a migrated list on-premises" in activity
    screenshot(page, "e2e-dl-restored")
