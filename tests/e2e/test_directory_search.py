"""A helpdesk tech searches the Directory as people do: by part of a surname, and by the address of a list
that was migrated, which leads to its migration."""

import uuid

import pytest

from migrations_app.choices import MigrationStatus
from migrations_app.models import Migration
from portal.connectors import ad
from portal.connectors.registry import active_directory
from portal.lab import config
from tests.e2e.conftest import login, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_search_by_part_of_a_surname_and_by_a_migrated_address(page, make_user, lab_ad):
    tag = uuid.uuid4().hex[:6]
    with active_directory() as directory:
        ou = directory.create_ou(parent=config.base_dn(), name=f"dirsearch-{tag}")
        directory.add(ad.child_dn(ou, "CN", f"Sancho {tag}"), object_class="contact",
                      attributes={"sn": f"Panza{tag}", "givenName": "Sancho", "displayName": f"Sancho Panza {tag}",
                                  "mail": f"sancho.{tag}@contoso.com"})
    tech = make_user("tech", "Helpdesk")
    migration = Migration.objects.create(mail=f"squires-{tag}@contoso.com", requested_by=tech,
                                         status=MigrationStatus.MIGRATED)
    login(page, "tech")
    page.goto("/directory/")
    search = page.get_by_label("Name, surname, mail, alias or any address (or part of it)")
    search.fill(f"anza{tag}")
    page.get_by_role("button", name="Search").click()
    page.wait_for_selector(f"text=Sancho Panza {tag}")
    screenshot(page, "e2e-directory-search-surname")

    search = page.get_by_label("Name, surname, mail, alias or any address (or part of it)")
    search.fill(f"squires-{tag}@contoso.com")
    page.get_by_role("button", name="Search").click()
    page.locator("#migrated-address").get_by_role("link", name=f"migration #{migration.pk}").click()
    page.wait_for_url(f"**/dl/migrations/{migration.pk}/")
