"""What Graph answers in a list's inspection instead of Exchange Online: the synced twin's membership (Entra ID's,
which Exchange shows) and the cloud list a completed migration recorded. Each answer is taken only where Exchange
would have given the same; anything else is asked of Exchange as before, so the preflight judges the same."""

from __future__ import annotations

import uuid

import pytest

from migrations_app import inspection
from migrations_app.inspection import StandIn
from portal.connectors import exchange as exo
from portal.connectors import graph as graphc
from portal.connectors.ad import DirectoryObject
from tests.unit.test_dl_preflight import OU, ParentExchange, facts_for, judge, recipient

TWIN_ID = str(uuid.uuid4())
CHILD_ID = str(uuid.uuid4())


def entry(kind: str, cn: str, mail: str | None, **attributes) -> DirectoryObject:
    return DirectoryObject(dn=f"CN={cn},{OU}", guid=uuid.uuid4(), sid=None, object_classes=("top", kind),
                           attributes={"cn": [cn], **({"mail": [mail]} if mail else {}), **attributes})


class SyncedTwinExchange(ParentExchange):
    """The parent's synced twin (with its Entra object id); reading its members through Exchange is counted."""

    def __init__(self, known: dict[str, exo.Recipient], members: list[exo.Recipient] = ()) -> None:
        super().__init__(known)
        self.members, self.member_reads = list(members), 0

    def get_distribution_group(self, identity):
        return exo.DistributionGroup.from_dict({**facts_for(accepted=[]).twin.raw,
                                                "ExternalDirectoryObjectId": TWIN_ID})

    def iter_distribution_group_members(self, identity):
        self.member_reads += 1
        return iter(self.members)


class Graph:
    """Entra ID as Graph shows it: the twin's members, and groups by object id. ``fail`` refuses every read."""

    def __init__(self, members: list[graphc.GroupMember] = (), groups: dict[str, graphc.EntraGroup] | None = None,
                 fail: Exception | None = None) -> None:
        self.members, self.groups, self.fail, self.asked = list(members), groups or {}, fail, []

    def iter_group_members(self, group_id, *, select):
        self.asked.append(("members", group_id))
        assert {"proxyAddresses", "onPremisesSyncEnabled"} <= set(select)
        if self.fail:
            raise self.fail
        return iter(self.members)

    def get_group(self, group_id, *, select):
        self.asked.append(("group", group_id))
        if self.fail:
            raise self.fail
        if group_id not in self.groups:
            raise graphc.NotFound(f"Resource '{group_id}' does not exist")
        return self.groups[group_id]


def inspect(monkeypatch, members: list[DirectoryObject], exchange, graph: Graph | None, stand_ins=None):
    group = facts_for(accepted=[]).group
    monkeypatch.setattr(inspection.recipients, "find_by_address", lambda directory, mail: [group])
    monkeypatch.setattr(inspection.recipients, "direct_members", lambda directory, dn: list(members))
    return inspection.inspect_list(mail="sales@contoso.com", directory=None, exchange=exchange,
                                   graph=(lambda: graph) if graph is not None else None, stand_ins=stand_ins or {})


ANN = entry("user", "Ann", "ann@contoso.com", proxyAddresses=["SMTP:ann@contoso.com"])
# Her on-premises mail is an alias of hers: Exchange (and Entra) name her by the primary address.
BOB = entry("user", "Bob", "bob.old@contoso.com")
PARTNER = entry("contact", "Partner", "partner@fabrikam.com")


def graph_members() -> list[graphc.GroupMember]:
    return [
        graphc.GroupMember(id=str(uuid.uuid4()), kind="user", display_name="Ann", mail="ann@contoso.com",
                           on_premises_sync_enabled=True, proxy_addresses=("SMTP:ann@contoso.com",
                                                                           "smtp:ann@contoso.mail.onmicrosoft.com")),
        graphc.GroupMember(id=str(uuid.uuid4()), kind="user", display_name="Bob", mail="bob.old@contoso.com",
                           on_premises_sync_enabled=True, proxy_addresses=("smtp:bob.old@contoso.com",
                                                                           "SMTP:bob@contoso.com")),
        graphc.GroupMember(id=str(uuid.uuid4()), kind="orgContact", display_name="Partner",
                           mail="partner@fabrikam.com", on_premises_sync_enabled=True),
    ]


def test_a_synced_twins_membership_is_read_from_graph_and_resolves_every_member_as_exchange_would(monkeypatch):
    exchange = SyncedTwinExchange({})
    graph = Graph(members=graph_members())
    facts = inspect(monkeypatch, [ANN, BOB, PARTNER], exchange, graph)
    assert graph.asked == [("members", TWIN_ID)]
    assert exchange.member_reads == 0 and exchange.asked == [], "no Exchange call for the membership or a member"
    assert facts.cloud_members_from == "graph" and facts.calls["graph"] == 1
    # The primary address is the SMTP: proxy address (Bob's mail is an alias); a member without proxy addresses
    # shows its mail, as Exchange shows one.
    assert {m.dn.split(",")[0]: m.cloud_identity for m in facts.members} == {
        "CN=Ann": "ann@contoso.com", "CN=Bob": "bob@contoso.com", "CN=Partner": "partner@fabrikam.com"}
    assert all(m.cloud_dir_synced for m in facts.members)
    assert judge(facts)["recipients_resolve"]["outcome"] == "pass"
    assert [r.primary_smtp_address for r in facts.cloud_members] == ["ann@contoso.com", "bob@contoso.com",
                                                                     "partner@fabrikam.com"]


def test_a_member_graph_does_not_list_is_asked_of_exchange_and_fails_the_preflight_when_exchange_has_none_either(
        monkeypatch):
    exchange = SyncedTwinExchange({})
    stranger = entry("user", "Stranger", "stranger@contoso.com")
    facts = inspect(monkeypatch, [ANN, stranger], exchange, Graph(members=graph_members()))
    assert exchange.asked == ["stranger@contoso.com"]
    check = judge(facts)["recipients_resolve"]
    assert check["outcome"] == "failure" and check["objects"] == [f"{stranger.dn} (user)"]


@pytest.mark.parametrize("graph", [None, Graph(fail=graphc.Forbidden("Insufficient privileges"))],
                         ids=["no Graph", "Graph refuses"])
def test_without_graph_exchange_reads_the_twins_membership_as_before(monkeypatch, graph):
    ann = recipient("ann@contoso.com", "UserMailbox", True)
    exchange = SyncedTwinExchange({}, members=[ann])
    facts = inspect(monkeypatch, [ANN], exchange, graph)
    assert exchange.member_reads == 1 and facts.cloud_members == [ann]
    assert facts.cloud_members_from == "exchange"
    assert (facts.graph_error is None) == (graph is None)
    assert judge(facts)["recipients_resolve"]["outcome"] == "pass"


# -- a child list migrated earlier: the cloud list its migration recorded ---------------------------------
CHILD_GUID = uuid.uuid4()
KEPT = DirectoryObject(dn=f"CN=!Child,{OU}", guid=CHILD_GUID, sid=None, object_classes=("top", "group"),
                       attributes={"cn": ["!Child"], "groupType": [2], "extensionAttribute1": ["MigratedByScript"]})
STAND_INS = {str(CHILD_GUID): StandIn(mail="child@contoso.com", original_dn=f"CN=Child,{OU}",
                                      cloud_object_id=CHILD_ID)}


def cloud_child(**changes) -> graphc.EntraGroup:
    return graphc.EntraGroup(**{"id": CHILD_ID, "display_name": "Child", "mail": "child@contoso.com",
                                "mail_enabled": True, "security_enabled": False, "on_premises_sync_enabled": None,
                                "proxy_addresses": ("SMTP:child@contoso.com", "X500:/o=ExchangeLabs/cn=child"),
                                **changes})


def test_a_migrated_child_is_read_by_the_object_id_its_migration_recorded_without_exchange(monkeypatch):
    exchange = SyncedTwinExchange({})
    graph = Graph(members=graph_members()[:1], groups={CHILD_ID: cloud_child()})
    facts = inspect(monkeypatch, [ANN, KEPT], exchange, graph, stand_ins=STAND_INS)
    assert exchange.asked == [] and ("group", CHILD_ID) in graph.asked
    child = facts.members[1]
    assert (child.cloud_identity, child.cloud_object_id, child.cloud_dir_synced) == ("child@contoso.com", CHILD_ID,
                                                                                     False)
    assert judge(facts)["recipients_resolve"]["outcome"] == "pass"


@pytest.mark.parametrize("found", [
    None,  # deleted in the cloud
    cloud_child(on_premises_sync_enabled=True),  # synced again: not the cloud list the migration made
    cloud_child(proxy_addresses=("SMTP:child-new@contoso.com",), mail="child-new@contoso.com"),  # another address
    cloud_child(mail_enabled=False),
], ids=["gone", "synced", "other address", "not mail-enabled"])
def test_a_migrated_child_graph_does_not_confirm_is_asked_of_exchange_as_before(monkeypatch, found):
    groups = {CHILD_ID: found} if found is not None else {}
    # Exchange has no such list either: the preflight fails on it, as it did without Graph.
    exchange = SyncedTwinExchange({})
    facts = inspect(monkeypatch, [KEPT], exchange, Graph(groups=groups), stand_ins=STAND_INS)
    assert exchange.asked == ["child@contoso.com"]
    assert judge(facts)["recipients_resolve"]["outcome"] == "failure"
    # Exchange finds it: resolved by Exchange's answer.
    listed = recipient("child@contoso.com", "MailUniversalDistributionGroup", False)
    exchange = SyncedTwinExchange({"child@contoso.com": listed})
    facts = inspect(monkeypatch, [KEPT], exchange, Graph(groups=groups), stand_ins=STAND_INS)
    assert exchange.asked == ["child@contoso.com"] and facts.members[0].cloud_type == "MailUniversalDistributionGroup"
