"""The writeback rename plan fits a 1280 px laptop: the risks table and the groups table wrap long risk
sentences, group names, object ids and DNs inside their cells instead of running off the side of their card."""

import uuid

import pytest

from tests.e2e.conftest import login, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

OU = "OU=Group Writeback,OU=Identity Management,OU=Europe,DC=emea,DC=corp,DC=contoso,DC=com"


@pytest.fixture
def long_plan():
    # A stored plan (the plan job is exercised against the lab in test_writeback_rename_pages.py): the layout
    # is what is tested here, with long names real tenants have.
    from diagnostics_app.writeback.plan import CloudGroup, build_plan
    from diagnostics_app.writeback.services import do_store_plan
    from portal.connectors.ad import DirectoryObject

    in_ou, cloud = [DirectoryObject(OU, None, None, ("organizationalUnit",), {})], {}
    for n in range(8):
        oid = str(uuid.UUID(int=n + 1))
        in_ou.append(DirectoryObject(
            f"CN=Group_{oid},{OU}", uuid.uuid5(uuid.NAMESPACE_URL, oid), None, ("top", "group"),
            {"displayName": [f"g{n}"], "msDS-ExternalDirectoryObjectId": [f"Group_{oid}"],
             "memberOf": [f"CN=All Staff of the Regional Finance Department,{OU}"]}))
        cloud[oid] = CloudGroup(id=oid, display_name=f"Regional accounts payable and receivable team number {n}",
                                mail_enabled=n % 2 == 0, security_enabled=True, group_types=(),
                                writeback_enabled=True, on_premises_group_type=None)
    built = build_plan(container=OU, in_ou=in_ou, outside=[], cloud=cloud, acl_index={}, acl_note="ACLs read")
    return do_store_plan(built, container=OU)


def test_the_plan_fits_1280_pixels(page, make_user, long_plan):
    make_user("wb-layout", "Administrator")
    page.set_viewport_size({"width": 1280, "height": 800})
    login(page, "wb-layout")
    page.goto(f"/diagnostics/writeback/plans/{long_plan.pk}/")
    page.locator("#table-container table").wait_for()
    path = screenshot(page, "writeback-plan-1280")
    widths = page.evaluate("""() => {
        const fit = (table, box) => ({table: table.scrollWidth, box: box.clientWidth});
        const risks = document.querySelector('#risks-title').closest('section');
        const groups = document.querySelector('#table-container');
        return {risks: fit(risks.querySelector('table'), risks), groups: fit(groups.querySelector('table'), groups),
                page: document.documentElement.scrollWidth, window: window.innerWidth};
    }""")
    assert widths["risks"]["table"] <= widths["risks"]["box"], (widths, path)
    assert widths["groups"]["table"] <= widths["groups"]["box"], (widths, path)
    assert widths["page"] <= widths["window"], (widths, path)
    # every column of the groups table, Cloud Sync last, is on screen
    last = page.locator("#table-container table thead th").last.bounding_box()
    assert last["x"] + last["width"] <= 1280, (last, path)
