"""The Directory pages against the lab's Samba AD DC: search, object page, ranged members, bad input."""

import uuid

import pytest

from portal.connectors import ad
from portal.connectors.registry import active_directory
from portal.lab import config

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

MEMBERS = 1234  # more than one page of members and spread over ranged reads (step 500 below)


@pytest.fixture(scope="module")
def objects(lab_ad):
    """An OU of this module's own: users with awkward names, a mail group with many members."""
    tag = uuid.uuid4().hex[:6]
    with active_directory() as directory:
        ou = directory.create_ou(parent=config.base_dn(), name=f"dirpages-{tag}")
        names = {"plain": f"Zed Plain {tag}", "star": f"Zed Star* {tag}", "paren": f"Zed (paren) {tag}",
                 "slash": f"Zed back\\slash {tag}", "script": f"Zed <script>alert(1)</script> {tag}"}
        dns = {}
        for key, name in names.items():
            dns[key] = directory.add(ad.child_dn(ou, "CN", name), object_class="contact",
                                     attributes={"displayName": name, "mail": f"{key}.{tag}@contoso.com"}) \
                or ad.child_dn(ou, "CN", name)
        member_dns = [ad.child_dn(ou, "CN", f"member {tag} {i:04d}") for i in range(MEMBERS)]
        directory.add_many(ad.NewEntry(dn, "contact", {"displayName": f"member {i}"})
                           for i, dn in enumerate(member_dns))
        group = ad.child_dn(ou, "CN", f"Zed Sales {tag}")
        directory.add(group, object_class="group", attributes={
            "groupType": 8, "sAMAccountName": f"zedsales{tag}", "displayName": f"Zed Sales {tag}",
            "mail": f"sales.{tag}@contoso.com", "mailNickname": f"sales{tag}",
            "proxyAddresses": [f"smtp:sales.{tag}@fabrikam.com", f"SMTP:sales.{tag}@contoso.com",
                               f"X500:/o=Contoso/ou=Exchange/cn=Recipients/cn=sales{tag}"]})
        directory.add_values(group, "member", member_dns + [dns["plain"]])
        guid = directory.read(group, attributes=["objectGUID"]).guid
    return {"tag": tag, "ou": ou, "names": names, "group": group, "guid": guid}


@pytest.fixture
def helpdesk(client, make_user):
    client.force_login(make_user("hd", "Helpdesk"))
    return client


def test_search_finds_by_name_mail_and_alias(helpdesk, objects):
    tag = objects["tag"]
    for text in (f"Zed Sales {tag}", f"sales.{tag}@contoso.com", f"sales{tag}", f"sales.{tag}@fabrikam.com"):
        page = helpdesk.get("/directory/", {"q": text}).content.decode()
        assert f"Zed Sales {tag}" in page, text


@pytest.mark.parametrize("key", ["star", "paren", "slash"])
def test_special_characters_match_only_literally(helpdesk, objects, key):
    tag = objects["tag"]
    page = helpdesk.get("/directory/", {"q": objects["names"][key]}).content.decode()
    assert page.count("<tr>") == 2, "header and exactly the one literal match"
    # A wildcard typed by a person is a literal character, not "everything".
    page = helpdesk.get("/directory/", {"q": "Zed *"}).content.decode()
    assert "Nothing in the directory starts with" in page
    page = helpdesk.get("/directory/", {"q": "*)(objectClass=*"}).content.decode()
    assert "Nothing in the directory starts with" in page and tag not in page


def test_nul_in_search_is_refused_with_a_message(helpdesk, objects):
    page = helpdesk.get("/directory/", {"q": "Zed\x00"}).content.decode()
    assert "Null characters are not allowed." in page and "<tbody>" not in page


def test_display_name_with_script_is_escaped(helpdesk, objects):
    page = helpdesk.get("/directory/", {"q": "Zed <script>"}).content.decode()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_object_page_shows_proxies_with_primary_and_ranged_members(helpdesk, objects):
    tag = objects["tag"]
    page = helpdesk.get(f"/directory/objects/{objects['guid']}/").content.decode()
    assert f"Members <span class=\"muted\">({MEMBERS + 1})" in page
    proxies = page.split('id="proxy-addresses"')[1].split("</ul>")[0]
    assert proxies.index(f"SMTP:sales.{tag}@contoso.com") < proxies.index("smtp:sales."), "primary first"
    assert proxies.count("primary") == 1
    seen = set()
    for n in range(1, 8):
        body = helpdesk.get(f"/directory/objects/{objects['guid']}/", {"members_page": n}).content.decode()
        seen |= {line.split('title="')[1].split('"')[0] for line in body.split("<li>") if 'title="CN=member' in line}
        if "Next →" not in body.split('id="members"')[1]:
            break
    assert len(seen) == MEMBERS, "every member reachable across the pages, none twice"


def test_member_link_opens_the_member_and_shows_member_of(helpdesk, objects):
    tag = objects["tag"]
    dn = ad.child_dn(objects["ou"], "CN", objects["names"]["plain"])
    response = helpdesk.get("/directory/dn/", {"dn": dn}, follow=True)
    page = response.content.decode()
    assert objects["names"]["plain"] in page and f"Zed Sales {tag}" in page.split("Member of")[1]


def test_malformed_dn_is_rejected_clearly(helpdesk, objects):
    response = helpdesk.get("/directory/dn/", {"dn": "CN=a,,DC=lab"})
    assert response.status_code == 400
    assert "This is not a valid distinguished name" in response.content.decode()
    response = helpdesk.get("/directory/dn/", {"dn": f"CN=nobody,{objects['ou']}"})
    assert "No object has this distinguished name." in response.content.decode()


def test_unknown_guid_is_404(helpdesk, objects):
    assert helpdesk.get(f"/directory/objects/{uuid.uuid4()}/").status_code == 404


def test_directory_down_says_so(helpdesk, objects, settings):
    settings.LAB_AD_HOST = "127.0.0.99"  # nothing listens there
    response = helpdesk.get("/directory/", {"q": "Zed"})
    assert response.status_code == 503
    assert "Active Directory is unreachable right now" in response.content.decode()
