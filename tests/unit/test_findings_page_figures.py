"""The findings page of a complete address scan reads its filter choices (OUs, attributes) and the number of findings
each filter keeps once per scan: a complete scan's findings never change, and over a 25,000-finding scan these were
three full passes per page view (bench/load). A running scan's page reads them every time, so what it shows is
never behind; another scan never meets the first one's figures."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from diagnostics_app.addresses.choices import ScanStatus
from diagnostics_app.models import AddressFinding, AddressScan

from .test_address_pages import URL, first_scan

pytestmark = pytest.mark.django_db


def _finding(scan: AddressScan, n: int, *, ou: str = "OU=Users,DC=contoso,DC=com", attribute: str = "mail",
             severity: str = "error") -> AddressFinding:
    return AddressFinding.objects.create(scan=scan, key=f"{scan.pk}-{n}", first_seen=timezone.now(),
                                         dn=f"CN=User {n},{ou}", ou=ou, attribute=attribute, value=f"v{n}",
                                         rule="idfix", severity=severity)


def _shown(page: str) -> tuple[int, list[str], list[str]]:
    count = int(re.search(r'<p class="count" aria-live="polite">(\d+) finding', page).group(1))
    ous = re.findall(r'<option value="([^"]*)"', page.split('name="ou"')[1].split("</select>")[0])
    attributes = re.findall(r'<option value="([^"]*)"', page.split('name="attribute"')[1].split("</select>")[0])
    return count, [o for o in ous if o], [a for a in attributes if a]


def test_a_complete_scans_page_counts_and_lists_its_choices_once(client, role_users, django_assert_max_num_queries):
    scan = first_scan()
    client.force_login(role_users["Auditor"])
    first = client.get(URL).content.decode()
    # session, user, permissions (2), scan, roles, notifications, the page of findings, fixes, scan history
    with django_assert_max_num_queries(10):
        again = client.get(URL).content.decode()
    assert _shown(again) == _shown(first) == (scan.findings.count(), ["OU=Users,OU=Sync,DC=contoso,DC=com"],
                                              _shown(first)[2])
    client.get(f"{URL}?severity=error")  # each filter's count is counted at its first view
    with django_assert_max_num_queries(10):
        filtered = client.get(f"{URL}?severity=error").content.decode()
    assert _shown(filtered)[0] == scan.findings.filter(severity="error").count() < scan.findings.count()


def test_a_running_scans_page_shows_each_finding_as_it_is_stored(client, role_users):
    scan = AddressScan.objects.create(scope=["DC=contoso,DC=com"])
    _finding(scan, 1)
    client.force_login(role_users["Auditor"])
    assert _shown(client.get(f"{URL}?scan={scan.pk}").content.decode())[:2] == (1, ["OU=Users,DC=contoso,DC=com"])
    _finding(scan, 2, ou="OU=Admins,DC=contoso,DC=com", attribute="weirdAttribute")
    count, ous, attributes = _shown(client.get(f"{URL}?scan={scan.pk}").content.decode())
    assert (count, ous) == (2, ["OU=Admins,DC=contoso,DC=com", "OU=Users,DC=contoso,DC=com"])
    assert "weirdAttribute" in attributes
    scan.status = ScanStatus.COMPLETE
    scan.save()
    assert _shown(client.get(f"{URL}?scan={scan.pk}").content.decode())[0] == 2


def test_another_scan_with_the_same_number_gets_its_own_figures(client, role_users):
    """A test database rolled back hands out a primary key again: the figures are keyed by the scan's creation too."""
    scan = AddressScan.objects.create(status=ScanStatus.COMPLETE, findings_total=1)
    _finding(scan, 1)
    client.force_login(role_users["Auditor"])
    assert _shown(client.get(f"{URL}?scan={scan.pk}").content.decode())[:2] == (1, ["OU=Users,DC=contoso,DC=com"])
    pk = scan.pk
    scan.delete()
    again = AddressScan.objects.create(pk=pk, status=ScanStatus.COMPLETE, findings_total=2,
                                       created_at=timezone.now())
    AddressScan.objects.filter(pk=pk).update(created_at=timezone.now() + timezone.timedelta(seconds=1))
    _finding(again, 1, ou="OU=Other,DC=contoso,DC=com")
    _finding(again, 2, ou="OU=Other,DC=contoso,DC=com")
    assert _shown(client.get(f"{URL}?scan={pk}").content.decode())[:2] == (2, ["OU=Other,DC=contoso,DC=com"])
