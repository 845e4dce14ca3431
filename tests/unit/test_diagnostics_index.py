"""/diagnostics/ lists the diagnostics areas a role may open, and only those; a role with none is refused."""

import re

import pytest

from portal.accounts.roles import ROLE_PERMISSIONS

pytestmark = pytest.mark.django_db

AREA_PERMISSIONS = {
    "address_repair": ("Address repair", "accounts.view_address_repair", "/diagnostics/address-repair/"),
    "mfa": ("MFA registration", "accounts.view_mfa_report", "/diagnostics/mfa/"),
    "writeback": ("Writeback rename", "accounts.view_writeback_plan", "/diagnostics/writeback/"),
}


def _listed_areas(html: str) -> set[str]:
    return set(re.findall(r'<section class="card" id="area-(\w+)">', html))


@pytest.mark.parametrize("role", sorted(ROLE_PERMISSIONS))
def test_the_index_lists_exactly_the_areas_of_the_role(client, role_users, role):
    client.force_login(role_users[role])
    expected = {area for area, (_, perm, _) in AREA_PERMISSIONS.items() if perm in ROLE_PERMISSIONS[role]}
    response = client.get("/diagnostics/")
    if not expected:
        assert response.status_code == 403
        assert "You cannot open this page" in response.content.decode()
        return
    assert response.status_code == 200
    html = response.content.decode()
    assert _listed_areas(html) == expected
    for area in expected:
        label, _, url = AREA_PERMISSIONS[area]
        assert f'<a href="{url}">{label}</a>' in html
        # Every link the index offers opens for this role.
        assert client.get(url).status_code == 200, (role, url)


def test_the_index_says_what_the_role_may_do_in_each_area(client, role_users):
    client.force_login(role_users["Auditor"])
    auditor = client.get("/diagnostics/").content.decode()
    client.force_login(role_users["Approver"])
    approver = client.get("/diagnostics/").content.decode()
    assert "run a scan" not in auditor and "approve or reject someone else&#x27;s fix" not in auditor
    assert "approve or reject someone else&#x27;s fix" in approver


def test_every_role_with_a_diagnostics_area_may_open_the_index_and_no_other():
    area_perms = {perm for _, perm, _ in AREA_PERMISSIONS.values()}
    for role, perms in ROLE_PERMISSIONS.items():
        assert ("accounts.view_diagnostics" in perms) == bool(perms & area_perms), role


def test_anonymous_is_sent_to_login(client):
    response = client.get("/diagnostics/")
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=/diagnostics/")
