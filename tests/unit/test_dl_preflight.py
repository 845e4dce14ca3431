"""The DL preflight's judgement over facts built in the test (no directory): the routing domain and ambiguous
cloud look-ups. The checks against the lab are in tests/integration/test_dl_migration.py."""

from __future__ import annotations

import uuid

import pytest

from migrations_app import inspection
from migrations_app.inspection import ListFacts
from migrations_app.options import MigrationOptions
from migrations_app.preflight import check_preflight
from portal.connectors import exchange as exo
from portal.connectors.ad import DirectoryObject

OU = "OU=Groups,OU=Synced,DC=contoso,DC=com"
NON_SYNC = "OU=NonSync,DC=contoso,DC=com"


def domains(*names: str) -> list[exo.AcceptedDomain]:
    return [exo.AcceptedDomain(name=n, domain_name=n, domain_type="Authoritative", default=n == "contoso.com",
                               initial=n == "contoso.onmicrosoft.com") for n in names]


def twin() -> exo.DistributionGroup:
    return exo.DistributionGroup.from_dict({
        "Name": "Sales", "PrimarySmtpAddress": "sales@contoso.com", "IsDirSynced": True,
        "RecipientTypeDetails": "MailUniversalDistributionGroup", "Guid": str(uuid.uuid4())})


def facts_for(*, accepted: list[exo.AcceptedDomain], twin_found: bool = True) -> ListFacts:
    group = DirectoryObject(dn=f"CN=Sales,{OU}", guid=uuid.uuid4(), sid=None, object_classes=("top", "group"),
                            attributes={"cn": ["Sales"], "groupType": [2], "mail": ["sales@contoso.com"],
                                        "proxyAddresses": ["SMTP:sales@contoso.com"]})
    return ListFacts(mail="sales@contoso.com", matches=[group], group=group, twin=twin() if twin_found else None,
                     accepted_domains=accepted)


def judge(facts: ListFacts, **options) -> dict[str, dict]:
    report = check_preflight(facts=facts, options=MigrationOptions(**options), non_sync_ou=NON_SYNC,
                             non_sync_ou_exists=True, non_sync_ou_in_scope=False, already_migrated=False,
                             protected=False)
    return {c.key: c.as_dict() for c in report.checks} | {"_ok": {"ok": report.ok}}


HYBRID_TENANT = ("contoso.com", "contoso.onmicrosoft.com", "contoso.mail.onmicrosoft.com")


def test_the_tenants_routing_domain_passes_when_accepted():
    checks = judge(facts_for(accepted=domains(*HYBRID_TENANT)))
    assert checks["routing_domain"]["outcome"] == "pass"
    assert "contoso.mail.onmicrosoft.com" in checks["routing_domain"]["detail"]
    assert checks["_ok"]["ok"]


def test_a_tenant_without_its_mail_onmicrosoft_domain_fails_with_the_remedy():
    checks = judge(facts_for(accepted=domains("contoso.com", "contoso.onmicrosoft.com")))
    check = checks["routing_domain"]
    assert check["outcome"] == "failure"
    assert "contoso.mail.onmicrosoft.com is not an accepted domain" in check["detail"]
    assert check["objects"] == ["contoso.mail.onmicrosoft.com"]
    assert "Hybrid Configuration Wizard" in check["remedy"] and "Add contoso.mail.onmicrosoft.com" in check["remedy"]
    assert not checks["_ok"]["ok"]


def test_a_custom_routing_domain_must_be_accepted_too():
    checks = judge(facts_for(accepted=domains(*HYBRID_TENANT)), routing_domain="routing.contoso.net")
    check = checks["routing_domain"]
    assert check["outcome"] == "failure" and "routing.contoso.net is not an accepted domain" in check["detail"]
    assert "choose the routing domain contoso.mail.onmicrosoft.com" in check["remedy"]
    accepted_custom = judge(facts_for(accepted=domains(*HYBRID_TENANT, "routing.contoso.net")),
                            routing_domain="Routing.Contoso.net")
    assert accepted_custom["routing_domain"]["outcome"] == "pass"


def test_no_domain_at_all_is_a_failure_not_a_crash():
    check = judge(facts_for(accepted=[]))["routing_domain"]
    assert check["outcome"] == "failure" and "No routing domain" in check["detail"] and check["remedy"]


class AmbiguousExchange:
    """Answers a look-up of the list's address as the connector does when two cloud lists carry it."""

    def get_distribution_group(self, identity):
        raise exo.AmbiguousIdentity("Get-DistributionGroup: sales@contoso.com matches 2 groups, not one",
                                    matches=["Sales <sales@contoso.com>", "Sales (old) <sales-old@contoso.com>"])

    def iter_distribution_group_members(self, identity):
        raise AssertionError("no members are read from a twin nobody identified")

    def get_accepted_domains(self):
        return domains(*HYBRID_TENANT)

    def get_outbound_connectors(self):
        return []


class OneGroupDirectory:
    def __init__(self, group: DirectoryObject) -> None:
        self.group = group


@pytest.fixture
def one_group(monkeypatch):
    group = facts_for(accepted=[]).group
    monkeypatch.setattr(inspection.recipients, "find_by_address", lambda directory, mail: [group])
    monkeypatch.setattr(inspection.recipients, "direct_members", lambda directory, dn: [])
    monkeypatch.setattr("migrations_app.selectors.migrated_stand_ins", dict)  # no migration done: no database
    return group


def test_an_ambiguous_cloud_twin_fails_the_preflight_naming_both(one_group):
    facts = inspection.inspect_list(mail="sales@contoso.com", directory=OneGroupDirectory(one_group),
                                    exchange=AmbiguousExchange())
    assert facts.twin is None
    check = judge(facts)["synced"]
    assert check["outcome"] == "failure" and "will not guess" in check["detail"]
    assert check["objects"] == ["Sales <sales@contoso.com>", "Sales (old) <sales-old@contoso.com>"]
    assert "duplicate address" in check["remedy"]


def test_exchanges_own_ambiguity_error_fails_the_same_way(one_group):
    class ExchangeSaysAmbiguous(AmbiguousExchange):
        def get_distribution_group(self, identity):
            raise exo.AmbiguousObject("Get-DistributionGroup failed: matches multiple entries",
                                      exception_type="ManagementObjectAmbiguousException")

    facts = inspection.inspect_list(mail="sales@contoso.com", directory=OneGroupDirectory(one_group),
                                    exchange=ExchangeSaysAmbiguous())
    check = judge(facts)["synced"]
    assert check["outcome"] == "failure" and "matches multiple entries" in check["objects"][0]


# -- a parent after its migrated child ------------------------------------------------------------
CHILD_DN = f"CN=Child,{OU}"
PARENT = facts_for(accepted=[])  # one parent group and twin, read before and after its child's migration


def recipient(mail: str, type_details: str, synced: bool) -> exo.Recipient:
    return exo.Recipient.from_dict({"PrimarySmtpAddress": mail, "EmailAddresses": [f"SMTP:{mail}"],
                                    "RecipientTypeDetails": type_details, "IsDirSynced": synced,
                                    "Guid": str(uuid.uuid4())})


class ParentExchange(AmbiguousExchange):
    """The parent's synced twin; its members are looked up one by one (Get-Recipient)."""

    def __init__(self, known: dict[str, exo.Recipient]) -> None:
        self.known, self.asked = known, []

    def get_distribution_group(self, identity):
        return PARENT.twin

    def iter_distribution_group_members(self, identity):
        return []

    def get_recipient(self, identity):
        self.asked.append(identity)
        if identity.lower() not in self.known:
            raise exo.ObjectNotFound(identity)
        return self.known[identity.lower()]


def parent_facts(monkeypatch, members: list[DirectoryObject], known: dict[str, exo.Recipient], stand_ins):
    group = PARENT.group
    monkeypatch.setattr(inspection.recipients, "find_by_address", lambda directory, mail: [group])
    monkeypatch.setattr(inspection.recipients, "direct_members", lambda directory, dn: list(members))
    exchange = ParentExchange(known)
    return inspection.inspect_list(mail="sales@contoso.com", directory=OneGroupDirectory(group),
                                   exchange=exchange, stand_ins=stand_ins), exchange


def test_a_migrated_childs_kept_original_and_contact_resolve_to_its_cloud_list_and_keep_the_parents_plan(
        monkeypatch):
    from migrations_app.preflight import plan_of

    child_guid = uuid.uuid4()
    user = DirectoryObject(dn=f"CN=Ann,{OU}", guid=uuid.uuid4(), sid=None, object_classes=("top", "user"),
                           attributes={"cn": ["Ann"], "mail": ["ann@contoso.com"]})
    child = DirectoryObject(dn=CHILD_DN, guid=child_guid, sid=None, object_classes=("top", "group"),
                            attributes={"cn": ["Child"], "mail": ["child@contoso.com"], "groupType": [2]})
    ann = recipient("ann@contoso.com", "RemoteUserMailbox", True)
    before, _ = parent_facts(monkeypatch, [user, child], {
        "ann@contoso.com": ann, "child@contoso.com": recipient("child@contoso.com",
                                                               "MailUniversalDistributionGroup", True)}, {})
    assert judge(before)["nested_groups"]["outcome"] == "failure"

    # Migrated, kept: the child is '!Child' without its address, and its routing contact joined the parent.
    kept = DirectoryObject(dn=f"CN=!Child,{OU}", guid=child_guid, sid=None, object_classes=("top", "group"),
                           attributes={"cn": ["!Child"], "groupType": [2], "extensionAttribute1": ["MigratedByScript"]})
    contact = DirectoryObject(dn=f"CN=child-MigratedByScript,{OU}", guid=uuid.uuid4(), sid=None,
                              object_classes=("top", "contact"),
                              attributes={"cn": ["child-MigratedByScript"],
                                          "mail": ["child-MigratedByScript@contoso.com"]})
    cloud_child = recipient("child@contoso.com", "MailUniversalDistributionGroup", False)
    stand_in = inspection.StandIn(mail="child@contoso.com", original_dn=CHILD_DN)
    after, exchange = parent_facts(monkeypatch, [user, kept, contact], {"ann@contoso.com": ann,
                                                                       "child@contoso.com": cloud_child},
                                   {str(child_guid): stand_in, contact.dn.lower(): stand_in})
    checks = judge(after)
    assert checks["recipients_resolve"]["outcome"] == "pass", checks["recipients_resolve"]
    assert checks["nested_groups"]["outcome"] == "pass"
    assert {m.cloud_identity for m in after.members} == {"ann@contoso.com", "child@contoso.com"}
    assert "child-MigratedByScript@contoso.com" not in exchange.asked, "the contact stands for the list"
    assert plan_of(after, MigrationOptions()) == plan_of(before, MigrationOptions())

    # Without the record of that migration the kept original is a group without an address: it fails.
    unknown, _ = parent_facts(monkeypatch, [user, kept], {"ann@contoso.com": ann}, {})
    assert judge(unknown)["recipients_resolve"]["outcome"] == "failure"
    assert plan_of(unknown, MigrationOptions()) != plan_of(before, MigrationOptions())
