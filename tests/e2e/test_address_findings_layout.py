"""The findings table fits a 1400 px wide window: long DNs, addresses and proposed values wrap inside their
cells instead of pushing the last columns (History, the proposed fix) out of sight behind a scroll bar."""

import pytest

from tests.e2e.conftest import login, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def long_findings():
    # The findings a scan stores (the scan itself is exercised end to end in test_address_scan_button.py): the
    # layout is what is tested here, with the longest values real directories hold.
    from diagnostics_app.addresses.rules import ScanConfig, entry, evaluate
    from diagnostics_app.addresses.services import do_begin_scan, do_finish_scan, do_store_findings

    entries = []
    for n in range(12):
        alias = f"very.long.mailbox.alias.of.a.shared.department.mailbox.number{n:02d}"
        entries.append(entry(
            dn=f"CN=Shared mailbox of the regional accounts payable department {n},OU=Shared Mailboxes,"
               "OU=Finance,OU=Sync,DC=emea,DC=corp,DC=contoso,DC=com",
            object_class=["user"],
            attributes={"cn": f"Shared {n}", "displayName": f"Shared {n}", "mailNickname": f"shared{n}",
                        "userPrincipalName": f"{alias}@emea.corp.contoso.com",
                        "mail": f"{alias}.new@emea.corp.contoso.com",
                        "proxyAddresses": ["X500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/"
                                           f"cn=Recipients/cn=0123456789abcdef0123456789abcdef-{alias}",
                                           f"smtp:{alias} x@emea.corp.contoso.com"]}))
    found, skipped = evaluate(entries, config=ScanConfig())
    scan = do_begin_scan(job=None, user=None, scope=["OU=Sync,DC=emea,DC=corp,DC=contoso,DC=com"])
    do_store_findings(scan=scan, findings=found)
    return do_finish_scan(scan=scan, objects_read=len(entries), cloud_objects_read=0, skipped=skipped)


def test_findings_table_fits_1400_pixels(page, make_user, long_findings):
    make_user("layout-admin", "Administrator")
    page.set_viewport_size({"width": 1400, "height": 1000})
    login(page, "layout-admin")
    page.goto("/diagnostics/address-repair/")
    page.locator("#table-container table").wait_for()
    path = screenshot(page, "address-findings-1400")
    widths = page.evaluate("""() => {
        const box = document.querySelector('#table-container');
        const table = box.querySelector('table');
        return {box: box.clientWidth, table: table.scrollWidth, page: document.documentElement.scrollWidth,
                window: window.innerWidth};
    }""")
    assert widths["table"] <= widths["box"], (widths, path)
    assert widths["page"] <= widths["window"], (widths, path)
    # Every column, History last, is on screen.
    box = page.locator("#table-container table thead th").last.bounding_box()
    assert box["x"] + box["width"] <= 1400, (box, path)
