"""The ActiveDirectory connector against the lab's real Samba AD DC.

The module starts its own lab (``$DIROPS_VAR_DIR/lab/ad-test``, default ``var/lab/ad-test``, on an address of
its own from tests/support/labs.py; DIROPS_TEST_AD_DIR / DIROPS_TEST_AD_HOST override), reset at the start so
every run sees an empty directory with the Exchange schema, and stopped at the end. The connector itself needs
no Django; the shared tests/conftest.py does, so run these tests with pytest-django enabled.
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from portal.connectors import ad
from portal.lab import samba
from tests.support import labs

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
VAR_DIR = Path(os.environ.get("DIROPS_VAR_DIR", REPO / "var"))
LAB_DIR = Path(os.environ.get("DIROPS_TEST_AD_DIR", VAR_DIR / "lab" / "ad-test"))
LAB_HOST = os.environ.get("DIROPS_TEST_AD_HOST") or labs.own_host(labs.AD_CONNECTOR)

INJECTION_NAMES = ("*", "star*", "paren(x)", "back\\slash", "*)(objectClass=*", "x)(|(cn=*", "a,b+c;d<e>f\"g=h")


@dataclass(frozen=True)
class Lab:
    status: samba.LabStatus
    settings: ad.AdSettings
    password: str


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    # A fresh random password per run; it must satisfy Samba's complexity rules.
    password = "Lab-" + secrets.token_urlsafe(16) + "-9a"
    started = time.monotonic()
    status = samba.reset(base_dir=LAB_DIR, admin_password=password, host=LAB_HOST)
    status = samba.ensure_up(base_dir=LAB_DIR, admin_password=password, host=LAB_HOST)  # a no-op now
    print(f"\nlab reset + Exchange schema in {time.monotonic() - started:.1f} s at {status.ldap_url}")
    settings = ad.AdSettings(
        host=status.host, port=status.ldap_port, base_dn=status.base_dn or "", bind_dn=status.admin_dn,
        password=password, retries=2, retry_backoff=0.2,
    )
    yield Lab(status, settings, password)
    samba.stop(base_dir=LAB_DIR)


@pytest.fixture(scope="module")
def conn(lab: Lab) -> Iterator[ad.ActiveDirectory]:
    with ad.ActiveDirectory(lab.settings) as directory:
        yield directory


@pytest.fixture
def ou(conn: ad.ActiveDirectory, lab: Lab, request: pytest.FixtureRequest) -> str:
    """An OU of its own for each test, so tests never see each other's objects."""
    name = f"t-{request.node.name[:40]}-{uuid.uuid4().hex[:6]}"
    return conn.create_ou(parent=lab.settings.base_dn, name=name)


@pytest.fixture(scope="module")
def bulk(conn: ad.ActiveDirectory, lab: Lab) -> dict:
    """10,000 contacts created with pipelined adds; shared by the paging and range tests."""
    parent = conn.create_ou(parent=lab.settings.base_dn, name="bulk")
    started = time.monotonic()
    created = conn.add_many(
        (
            ad.NewEntry(ad.child_dn(parent, "CN", f"bulk-{i:05d}"), "contact", {"displayName": f"Bulk {i}"})
            for i in range(10_000)
        ),
        window=64,
    )
    elapsed = time.monotonic() - started
    print(f"\ncreated {created} contacts in {elapsed:.1f} s ({created / elapsed:.0f}/s)")
    return {"ou": parent, "count": created, "seconds": elapsed}


# ---------------------------------------------------------------------------------------------
# connectivity check


def test_check_reports_bind_naming_context_schema_and_ous(conn: ad.ActiveDirectory, lab: Lab, ou: str) -> None:
    missing_ou = f"OU=does-not-exist,{lab.settings.base_dn}"
    report = conn.check(required_ous=[ou, missing_ou])
    by_name = {item.name: item for item in report.items}
    assert by_name["bind"].ok and lab.settings.bind_dn in by_name["bind"].detail
    assert by_name["naming context"].ok
    assert by_name["exchange schema"].ok, by_name["exchange schema"].detail
    assert by_name[f"OU {ou}"].ok
    assert not by_name[f"OU {missing_ou}"].ok and "no object" in by_name[f"OU {missing_ou}"].detail
    assert report.naming_context == lab.settings.base_dn
    assert not report.ok and [i.name for i in report.failures()] == [f"OU {missing_ou}"]


def test_check_reports_a_wrong_password_without_raising(lab: Lab) -> None:
    wrong = ad.AdSettings(host=lab.settings.host, base_dn=lab.settings.base_dn, bind_dn=lab.settings.bind_dn,
                          password="not-the-password")
    report = ad.ActiveDirectory(wrong).check()
    assert not report.ok
    assert "invalidCredentials" in report.items[0].detail
    assert "not-the-password" not in repr(wrong) and "not-the-password" not in report.items[0].detail


# ---------------------------------------------------------------------------------------------
# reads


def test_read_by_dn_guid_and_sid_return_the_same_object(conn: ad.ActiveDirectory, ou: str) -> None:
    group_dn = conn.create_group(parent=ou, name="Readers", mail="readers@lab.example", alias="readers")
    by_dn = conn.read(group_dn)
    assert isinstance(by_dn.guid, uuid.UUID) and by_dn.sid and by_dn.sid.startswith("S-1-5-21-")
    assert by_dn.has_class("group") and by_dn.kind == "group"
    by_guid = conn.read_by_guid(by_dn.guid)
    by_sid = conn.read_by_sid(by_dn.sid)
    assert ad.same_dn(by_guid.dn, group_dn) and ad.same_dn(by_sid.dn, group_dn)
    assert by_guid.first("mailNickname") == "readers" and by_sid.first("mail") == "readers@lab.example"
    selected = conn.read(group_dn, attributes=["mail"])
    assert selected.first("mail") == "readers@lab.example" and selected.first("description") is None
    assert selected.guid == by_dn.guid  # the GUID is always fetched


def test_read_all_includes_operational_attributes_and_memberof(conn: ad.ActiveDirectory, ou: str) -> None:
    group_dn = conn.create_group(parent=ou, name="Parents")
    contact_dn = conn.create_contact(parent=ou, name="Child", mail="child@lab.example", alias="child")
    conn.modify(group_dn, add={"member": [contact_dn]})
    everything = conn.read_all(contact_dn)
    for name in ("objectGUID", "whenCreated", "whenChanged", "uSNChanged", "memberOf", "targetAddress",
                 "proxyAddresses", "objectCategory"):
        assert everything.get(name), f"{name} missing from read_all"
    assert isinstance(everything.first("objectGUID"), bytes)
    assert uuid.UUID(bytes_le=everything.first("objectGUID")) == everything.guid
    assert everything.usn_changed and everything.usn_changed > 0
    assert [ad.validate_dn(v) for v in everything.get("memberOf")] == [ad.validate_dn(group_dn)]


def test_unknown_dn_guid_and_sid_raise_not_found(conn: ad.ActiveDirectory, ou: str, lab: Lab) -> None:
    with pytest.raises(ad.NotFound) as err:
        conn.read(f"CN=nobody,{ou}")
    assert err.value.result_code == 32 and "nobody" in str(err.value)
    with pytest.raises(ad.NotFound):
        conn.read_by_guid(uuid.uuid4())
    with pytest.raises(ad.NotFound):
        conn.read_by_sid("S-1-5-21-1-2-3-999999")
    with pytest.raises(ad.NotFound):
        list(conn.search(filter=ad.MATCH_ALL, base=f"OU=missing,{lab.settings.base_dn}"))
    assert not conn.exists(f"CN=nobody,{ou}") and conn.exists(ou)


# ---------------------------------------------------------------------------------------------
# writes


def test_add_and_modify_add_replace_delete_values(conn: ad.ActiveDirectory, ou: str) -> None:
    dn = conn.create_contact(parent=ou, name="Mod Target", mail="mod@lab.example", alias="mod")
    conn.modify(dn, replace={"mail": "mod2@lab.example", "extensionAttribute1": "sales"},
                add={"proxyAddresses": ["smtp:alias1@lab.example", "smtp:alias2@lab.example"]})
    obj = conn.read(dn, attributes=["mail", "proxyAddresses", "extensionAttribute1"])
    assert obj.first("mail") == "mod2@lab.example" and obj.first("extensionAttribute1") == "sales"
    assert sorted(obj.get("proxyAddresses")) == sorted(
        ["SMTP:mod@lab.example", "smtp:alias1@lab.example", "smtp:alias2@lab.example"])
    conn.modify(dn, delete={"proxyAddresses": ["smtp:alias1@lab.example"], "extensionAttribute1": None})
    obj = conn.read(dn, attributes=["proxyAddresses", "extensionAttribute1"])
    assert "smtp:alias1@lab.example" not in obj.get("proxyAddresses") and obj.get("extensionAttribute1") == []
    with pytest.raises(ad.ValueExists) as exists:
        conn.modify(dn, add={"proxyAddresses": ["smtp:alias2@lab.example"]})
    assert exists.value.result_code == 20 and isinstance(exists.value, ad.ConstraintViolation)
    with pytest.raises(ad.NoSuchValue):
        conn.modify(dn, delete={"proxyAddresses": ["smtp:never@lab.example"]})
    with pytest.raises(ad.ConstraintViolation):
        conn.modify(dn, replace={"noSuchAttributeAnywhere": "x"})
    with pytest.raises(ad.AlreadyExists) as dup:
        conn.create_contact(parent=ou, name="Mod Target")
    assert dup.value.result_code == 68


def test_move_then_read_back_by_guid_keeps_links(conn: ad.ActiveDirectory, ou: str) -> None:
    source = conn.create_ou(parent=ou, name="from")
    target = conn.create_ou(parent=ou, name="to")
    contact = conn.create_contact(parent=source, name="Mover", mail="mover@lab.example")
    group = conn.create_group(parent=ou, name="Movers DL", attributes={"authOrig": [contact]})
    conn.modify(group, add={"member": [contact]})
    guid = conn.read(contact, attributes=["cn"]).guid
    new_dn = conn.move(contact, target)
    assert ad.same_dn(new_dn, f"CN=Mover,{target}")
    moved = conn.read_by_guid(guid, attributes=["memberOf", "authOrigBL"])
    assert ad.same_dn(moved.dn, new_dn)
    assert [ad.validate_dn(v) for v in moved.get("authOrigBL")] == [ad.validate_dn(group)]
    group_obj = conn.read(group, attributes=["member", "authOrig"])
    assert [ad.validate_dn(v) for v in group_obj.get("member")] == [ad.validate_dn(new_dn)]
    assert [ad.validate_dn(v) for v in group_obj.get("authOrig")] == [ad.validate_dn(new_dn)]
    with pytest.raises(ad.NotFound):
        conn.read(contact)


def test_rename_escapes_the_new_name(conn: ad.ActiveDirectory, ou: str) -> None:
    dn = conn.create_contact(parent=ou, name="Before")
    guid = conn.read(dn).guid
    new_dn = conn.rename(dn, "Smith, John + Co <x>")
    assert new_dn == f"CN=Smith\\, John \\+ Co \\<x\\>,{ou}"
    renamed = conn.read_by_guid(guid, attributes=["cn", "name"])
    assert renamed.first("cn") == "Smith, John + Co <x>"
    assert ad.same_dn(renamed.dn, new_dn)
    assert ad.parse_dn(renamed.dn).rdn_value == "Smith, John + Co <x>"


def test_delete_and_recursive_delete(conn: ad.ActiveDirectory, ou: str) -> None:
    leaf = conn.create_contact(parent=ou, name="Leaf")
    conn.delete(leaf)
    assert not conn.exists(leaf)
    sub = conn.create_ou(parent=ou, name="tree")
    conn.create_contact(parent=sub, name="inner")
    with pytest.raises(ad.ConstraintViolation) as non_leaf:
        conn.delete(sub)
    assert non_leaf.value.result_code == 66
    conn.delete(sub, recursive=True)
    assert not conn.exists(sub)
    with pytest.raises(ad.NotFound):
        conn.delete(leaf)


def test_exchange_links_maintain_their_back_links(conn: ad.ActiveDirectory, ou: str) -> None:
    person = conn.create_contact(parent=ou, name="Moderator", mail="moderator@lab.example")
    other = conn.create_group(parent=ou, name="Allowed DL")
    dl = conn.create_group(parent=ou, name="Restricted DL", attributes={
        "authOrig": [person], "unauthOrig": [person], "dLMemSubmitPerms": [other], "dLMemRejectPerms": [other],
        "msExchCoManagedByLink": [person], "msExchModeratedByLink": [person],
        "msExchBypassModerationLink": [person], "msExchEnableModeration": True, "msExchModerationFlags": 6,
        "msExchGroupJoinRestriction": 1, "msExchRequireAuthToSendTo": True, "msExchHideFromAddressLists": False,
        "msExchRecipientDisplayType": 1, "msExchRecipientTypeDetails": 262144, "extensionAttribute15": "x",
    })
    back = conn.read(person, attributes=["authOrigBL", "unauthOrigBL", "msExchCoManagedObjectsBL",
                                         "msExchModeratedObjectsBL", "msExchBypassModerationBL"])
    for name in ("authOrigBL", "unauthOrigBL", "msExchCoManagedObjectsBL", "msExchModeratedObjectsBL",
                 "msExchBypassModerationBL"):
        assert [ad.validate_dn(v) for v in back.get(name)] == [ad.validate_dn(dl)], name
    other_back = conn.read(other, attributes=["dLMemSubmitPermsBL", "dLMemRejectPermsBL"])
    assert other_back.get("dLMemSubmitPermsBL") and other_back.get("dLMemRejectPermsBL")
    user = conn.add(ad.child_dn(ou, "CN", "Mailbox User"), object_class="user",
                    attributes={"sAMAccountName": "mbxuser1", "publicDelegates": [person], "altRecipient": person,
                                "msExchMailboxGuid": uuid.uuid4(), "msDS-ExternalDirectoryObjectId": "User_1"})
    delegate = conn.read(person, attributes=["publicDelegatesBL", "altRecipientBL"])
    assert [ad.validate_dn(v) for v in delegate.get("publicDelegatesBL")] == [ad.validate_dn(user)]
    assert [ad.validate_dn(v) for v in delegate.get("altRecipientBL")] == [ad.validate_dn(user)]


def test_create_contact_and_dynamic_distribution_list(conn: ad.ActiveDirectory, ou: str) -> None:
    staff = conn.create_ou(parent=ou, name="staff")
    for i, dept in enumerate(["sales", "sales", "it"]):
        conn.create_contact(parent=staff, name=f"Person {i}", mail=f"p{i}@lab.example",
                            attributes={"extensionAttribute1": dept})
    contact = conn.read(ad.child_dn(staff, "CN", "Person 0"))
    assert contact.first("targetAddress") == "SMTP:p0@lab.example" and contact.kind == "contact"
    ddl = conn.create_dynamic_distribution_list(
        parent=ou, name="All Sales", alias="allsales", mail="allsales@lab.example",
        recipient_filter=ad.object_class("contact") & ad.eq("extensionAttribute1", "sales"), search_base=staff,
    )
    obj = conn.read(ddl)
    assert obj.kind == "dynamic-dl"
    assert obj.first("msExchRecipientDisplayType") == "3" and obj.first("msExchRecipientTypeDetails") == "2048"
    assert ad.same_dn(obj.first("msExchDynamicDLBaseDN"), staff)
    members = sorted(o.first("cn") for o in conn.dynamic_members(ddl, attributes=["cn"]))
    assert members == ["Person 0", "Person 1"]
    found = list(conn.find(name_or_mail_or_alias="allsales", kinds={"dynamic-dl"}))
    assert [o.dn for o in found] == [obj.dn]
    assert list(conn.find(name_or_mail_or_alias="allsales", kinds={"group", "contact"})) == []
    by_proxy = list(conn.find(name_or_mail_or_alias="ALLSALES@lab.example"))  # case-insensitive proxy match
    assert [o.dn for o in by_proxy] == [obj.dn]


# ---------------------------------------------------------------------------------------------
# filters and DNs: untrusted input


def test_injection_strings_in_names_and_searches_match_only_literally(conn: ad.ActiveDirectory, ou: str) -> None:
    dns = {name: conn.create_contact(parent=ou, name=name, alias=f"inj{i}") for i, name in
           enumerate(INJECTION_NAMES)}
    for plain in ("plain one", "plain two", "starry"):
        conn.create_contact(parent=ou, name=plain)
    for name, dn in dns.items():
        found = [o.dn for o in conn.find(name_or_mail_or_alias=name, base=ou)]
        assert [ad.validate_dn(d) for d in found] == [ad.validate_dn(dn)], name
        assert conn.read(dn, attributes=["cn"]).first("cn") == name
        via_search = list(conn.search(filter=ad.eq("cn", name), base=ou, attributes=["cn"]))
        assert [o.first("cn") for o in via_search] == [name]
    # A prefix search for "star" finds the literal "star*" and "starry", nothing else.
    assert sorted(o.first("cn") for o in conn.find(name_or_mail_or_alias="star", base=ou, prefix=True,
                                                     attributes=["cn"])) == ["star*", "starry"]
    # NUL and a bare backslash find nothing and break nothing.
    for probe in ("a\x00b", "\x00", "\\", "\\2a", "(", ")"):
        assert list(conn.find(name_or_mail_or_alias=probe, base=ou)) == [], probe
    assert str(ad.eq("cn", "*)(objectClass=*")) == "(cn=\\2a\\29\\28objectClass=\\2a)"
    assert str(ad.eq("cn", "a\x00b\\")) == "(cn=a\\00b\\5c)"
    with pytest.raises(TypeError, match="build filters with the helper functions"):
        ad.Filter("(objectClass=*)", object())
    with pytest.raises(ad.InvalidFilter):
        conn.search(filter="(objectClass=*)")  # type: ignore[arg-type]
    with pytest.raises(ad.InvalidFilter):
        ad.eq("cn)(objectClass=*", "x")


def test_find_one_distinguishes_none_one_and_many(conn: ad.ActiveDirectory, ou: str) -> None:
    conn.create_contact(parent=ou, name="Twin A", display_name="Twin")
    conn.create_contact(parent=ou, name="Twin B", display_name="Twin")
    conn.create_contact(parent=ou, name="Single", mail="single@lab.example")
    assert conn.find_one(name_or_mail_or_alias="single@lab.example", base=ou).first("cn") == "Single"
    with pytest.raises(ad.Ambiguous) as many:
        conn.find_one(name_or_mail_or_alias="Twin", base=ou)
    assert len(many.value.candidates) == 2
    with pytest.raises(ad.NotFound):
        conn.find_one(name_or_mail_or_alias="nobody at all", base=ou)


def test_dn_parsing_rejects_malformed_input_and_escapes_rdns() -> None:
    parsed = ad.parse_dn("CN=Smith\\, John,OU=Sales Team,DC=lab,DC=example")
    assert parsed.rdn_value == "Smith, John" and str(parsed.parent) == "OU=Sales Team,DC=lab,DC=example"
    assert ad.validate_dn(" cn = x , dc=lab ") == "cn=x,dc=lab"
    assert ad.parse_dn("CN=\\c3\\a9t\\c3\\a9,DC=x").rdn_value == "été"
    assert ad.parse_dn("CN=a+SN=b,DC=x").rdns[0] == (("CN", "a"), ("SN", "b"))
    assert str(ad.parse_dn("1.2.840.113556.1.4.1=#04024869,DC=x")) == "1.2.840.113556.1.4.1=#04024869,DC=x"
    for bad, why in [
        ("", "empty"), ("   ", "empty"), ("just a name", "'='"), ("CN=a,b", "'='"), ("CN=a\\", "backslash"),
        ("CN=,DC=x", "empty value"), ("CN=a,,DC=x", "attribute name"), ("CN=a,", "ends with"),
        ("CN=a;DC=x", "must be escaped"), ("CN=a\\zz,DC=x", "escape"), ("CN=\\ff,DC=x", "UTF-8"),
        ("=a,DC=x", "attribute name"), ("C N=a", "'='"), ("CN=a\x00b", "must be escaped"), ("CN=#zz", "hex"),
    ]:
        with pytest.raises(ad.InvalidDn) as err:
            ad.parse_dn(bad)
        assert why in str(err.value), (bad, str(err.value))
    assert ad.rdn("CN", "a,b") == "CN=a\\,b"
    assert ad.rdn("CN", "#lead") == "CN=\\#lead"
    assert ad.rdn("CN", " both ") == "CN=\\ both\\ "
    assert ad.rdn("CN", "nul\x00") == "CN=nul\\00"
    assert ad.rdn("CN", 'q"<>;+\\') == 'CN=q\\"\\<\\>\\;\\+\\\\'
    with pytest.raises(ad.InvalidDn):
        ad.rdn("CN", "")
    with pytest.raises(ad.InvalidDn):
        ad.rdn("C N", "x")
    assert ad.same_dn("cn=A,dc=LAB", "CN=a,DC=lab") and not ad.same_dn("CN=a,DC=lab", "CN=b,DC=lab")
    assert ad.parse_dn("CN=a,OU=b,DC=lab").is_within("dc=LAB")


def test_objects_named_with_dn_specials_round_trip(conn: ad.ActiveDirectory, ou: str) -> None:
    for name in ("#hash", " lead and trail ", "semi;colon", "quote\"d", "plus+sign", "back\\slash\\"):
        dn = conn.create_contact(parent=ou, name=name)
        obj = conn.read(dn, attributes=["cn"])
        assert obj.first("cn") == name
        assert ad.parse_dn(obj.dn).rdn_value == name  # the server's spelling parses to the same value


# ---------------------------------------------------------------------------------------------
# scale: paging and ranges


def test_paged_search_over_10000_objects(conn: ad.ActiveDirectory, bulk: dict, monkeypatch) -> None:
    assert bulk["count"] == 10_000
    pages = []
    original = conn._page_same_connection

    def counting(*args, **kwargs):
        pages.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(conn, "_page_same_connection", counting)
    started = time.monotonic()
    seen: set[str] = set()
    for obj in conn.search(filter=ad.object_class("contact"), base=bulk["ou"], attributes=["cn"], page_size=500):
        seen.add(obj.first("cn"))
    elapsed = time.monotonic() - started
    print(f"\npaged search: {len(seen)} objects in {elapsed:.1f} s, {len(pages) + 1} pages")
    assert seen == {f"bulk-{i:05d}" for i in range(10_000)}
    # 10,000 / 500, one page at a time (Samba may end with one extra, empty page).
    assert len(pages) + 1 in (20, 21)
    # Stopping early releases the server's paging state and leaves the connection usable.
    assert len(list(conn.search(filter=ad.object_class("contact"), base=bulk["ou"], limit=3))) == 3
    assert conn.read(bulk["ou"]).kind == "ou"


def test_ranged_retrieval_returns_every_member_exactly_once(conn: ad.ActiveDirectory, bulk: dict, ou: str,
                                                           monkeypatch) -> None:
    group = conn.create_group(parent=ou, name="Huge DL")
    members = [ad.child_dn(bulk["ou"], "CN", f"bulk-{i:05d}") for i in range(6_200)]
    started = time.monotonic()
    assert conn.add_values(group, "member", members, batch_size=500) == 6_200
    added = time.monotonic() - started
    requests: list[str] = []
    original = conn._call

    def spy(action, fn, **kwargs):
        requests.append(action)
        return original(action, fn, **kwargs)

    monkeypatch.setattr(conn, "_call", spy)
    started = time.monotonic()
    values = list(conn.iter_values(group, "member"))
    print(f"\nadded 6200 members in {added:.1f} s; ranged read in {time.monotonic() - started:.2f} s "
          f"({len(requests)} requests)")
    assert len(values) == 6_200 and len(set(values)) == 6_200
    assert {ad.validate_dn(v).lower() for v in values} == {m.lower() for m in members}
    assert len(requests) == 5  # 0-1499, 1500-2999, 3000-4499, 4500-5999, 6000-*
    small_steps = list(conn.iter_values(group, "member", step=1000))
    assert sorted(small_steps) == sorted(values)
    assert len(conn.read_all(group).get("member")) == 6_200


# ---------------------------------------------------------------------------------------------
# failures


def test_server_down_is_reported_clearly_then_recovers(conn: ad.ActiveDirectory, lab: Lab, ou: str) -> None:
    dn = conn.create_contact(parent=ou, name="Survivor")
    samba.stop(base_dir=LAB_DIR)
    try:
        assert not samba.status(base_dir=LAB_DIR).running
        with pytest.raises(ad.ServerDown) as down:
            conn.read(dn)
        assert isinstance(down.value, ad.Unreachable)
        assert lab.settings.url in str(down.value) and "unreachable" in str(down.value)
        with pytest.raises(ad.ServerDown):
            conn.modify(dn, replace={"description": "lost"})
        with pytest.raises(ad.ServerDown):
            list(conn.search(filter=ad.MATCH_ALL, base=ou))
        assert not conn.check().ok
    finally:
        samba.start(base_dir=LAB_DIR)
    conn.modify(dn, replace={"description": "back"})  # same instance: it reconnects by itself
    assert conn.read(dn, attributes=["description"]).first("description") == "back"
    # A restart while the connection sits idle: the next write notices the dead socket before
    # sending, reconnects, and succeeds (rather than reporting an unknown outcome).
    samba.stop(base_dir=LAB_DIR)
    samba.start(base_dir=LAB_DIR)
    conn.modify(dn, replace={"description": "after restart"})
    assert conn.read(dn, attributes=["description"]).first("description") == "after restart"


def test_bulk_add_stops_at_the_first_failure(conn: ad.ActiveDirectory, ou: str) -> None:
    existing = conn.create_contact(parent=ou, name="taken")
    entries = [ad.NewEntry(ad.child_dn(ou, "CN", f"new-{i}"), "contact") for i in range(3)]
    entries.insert(2, ad.NewEntry(existing, "contact"))
    with pytest.raises(ad.AlreadyExists) as dup:
        conn.add_many(entries, window=1)
    assert ad.same_dn(dup.value.dn, existing)
    assert [conn.exists(e.dn) for e in entries if e.dn != existing] == [True, True, False]


def _busy(c) -> bool:
    """What a 'busy' answer leaves on the connector's SYNC connection: the status, the result on it."""
    c.result, c.response = {"result": 51, "description": "busy", "message": "try later"}, None
    return False


def test_transient_busy_is_retried(conn: ad.ActiveDirectory) -> None:
    calls = []

    def flaky(c):
        calls.append(1)
        if len(calls) < 3:
            return _busy(c)
        return c.search("", "(objectClass=*)", search_scope="BASE", attributes=["defaultNamingContext"])

    status, result, response = conn._call("flaky read", flaky, write=False)
    assert status and len(calls) == 3
    calls.clear()

    def always_busy(c):
        calls.append(1)
        return _busy(c)

    with pytest.raises(ad.ServerDown) as busy:
        conn._call("busy read", always_busy, write=False)
    assert busy.value.result_code == 51 and len(calls) == conn.settings.retries + 1
    assert "still busy" in str(busy.value)


def test_anonymous_writes_are_access_denied(lab: Lab, ou: str) -> None:
    anonymous = ad.AdSettings(host=lab.settings.host, base_dn=lab.settings.base_dn)
    with ad.ActiveDirectory(anonymous) as directory, pytest.raises(ad.AccessDenied) as denied:
        directory.add(ad.child_dn(ou, "CN", "sneaky"), object_class="contact")
    assert denied.value.result_code in (1, 50)


def test_ldaps_with_the_lab_ca_and_a_clear_tls_error_without_it(lab: Lab) -> None:
    status = samba.status(base_dir=LAB_DIR)
    assert status.ca_file is not None
    realm = (status.realm or "").lower()
    secure = ad.AdSettings(host=lab.settings.host, base_dn=lab.settings.base_dn, bind_dn=lab.settings.bind_dn,
                           password=lab.password, use_ssl=True, ca_file=str(status.ca_file),
                           tls_server_name=f"DC1.{realm}")
    with ad.ActiveDirectory(secure) as directory:
        assert directory.root_dse()["defaultNamingContext"] == [lab.settings.base_dn]
    untrusted = ad.AdSettings(host=lab.settings.host, base_dn=lab.settings.base_dn, bind_dn=lab.settings.bind_dn,
                              password=lab.password, use_ssl=True)
    with ad.ActiveDirectory(untrusted) as directory, pytest.raises(ad.TlsError) as tls:
        directory.root_dse()
    assert "certificate" in str(tls.value).lower()
