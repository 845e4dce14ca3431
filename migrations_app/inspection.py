"""Everything the preflight and the migration need to know about one list, read once from both
directories. The preflight judges these facts; the migration's backup step stores them and its
later steps act on them, so the two can never disagree about what a list is."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from portal.connectors import ad as adc
from portal.connectors import exchange as exo
from portal.connectors import graph as graphc
from portal.connectors.ad import ActiveDirectory, DirectoryObject, recipients
from portal.connectors.exchange import DistributionGroup, ExchangeOnline, Recipient

Graph = Callable[[], graphc.EntraGraph]
# What tells the cloud list a migration made from anything else answering to its address (_migrated_list).
MIGRATED_LIST_SELECT = ("id", "displayName", "mail", "mailEnabled", "groupTypes", "proxyAddresses",
                        "onPremisesSyncEnabled")

SECURITY_ENABLED = 0x80000000
ROOM_LIST_TYPE = 268435456  # msExchRecipientTypeDetails of a room list


def smtp_of(values: list[Any]) -> list[str]:
    """The SMTP addresses among proxyAddresses values, without prefix, lower case."""
    out = []
    for value in values:
        text = str(value)
        if text[:5].lower() == "smtp:":
            out.append(text[5:].lower())
    return out


def group_type_of(obj: DirectoryObject) -> int:
    try:
        return int(obj.first("groupType", 0)) & 0xFFFFFFFF
    except (TypeError, ValueError):
        return 0


@dataclass
class ObjectFacts:
    """One recipient a list names (member, manager, sender restriction ...), on-premises and in the cloud."""

    dn: str
    kind: str
    name: str
    mail: str | None
    addresses: tuple[str, ...]
    upn: str | None
    security_enabled: bool
    cloud_identity: str | None = None  # what cmdlets are given: the cloud recipient's primary SMTP or id
    cloud_type: str | None = None
    cloud_dir_synced: bool | None = None
    cloud_object_id: str | None = None  # the cloud recipient's Entra object id (ExternalDirectoryObjectId)
    # The DN of the list migrated earlier this object stands in for (its kept original or its routing
    # contact): plans name that list as they did before it moved, so its migration changes no plan.
    stands_for: str | None = None

    @property
    def plan_key(self) -> str:
        return (self.stands_for or self.dn).lower()

    @property
    def mail_enabled(self) -> bool:
        return bool(self.mail)

    @property
    def is_group(self) -> bool:
        return self.kind == "group"

    def as_dict(self) -> dict[str, Any]:
        return {"dn": self.dn, "kind": self.kind, "name": self.name, "mail": self.mail,
                "cloud_identity": self.cloud_identity, "cloud_type": self.cloud_type}

    @classmethod
    def from_object(cls, obj: DirectoryObject) -> ObjectFacts:
        return cls(dn=obj.dn, kind=obj.kind, name=str(obj.first("cn") or obj.first("name") or obj.dn),
                   mail=obj.first("mail"), addresses=tuple(smtp_of(obj.get("proxyAddresses"))),
                   upn=obj.first("userPrincipalName"),
                   security_enabled=obj.kind == "group" and bool(group_type_of(obj) & SECURITY_ENABLED))


@dataclass
class ListFacts:
    mail: str
    matches: list[DirectoryObject] = field(default_factory=list)
    group: DirectoryObject | None = None
    members: list[ObjectFacts] = field(default_factory=list)
    links: dict[str, list[ObjectFacts]] = field(default_factory=dict)  # link attribute → objects it names
    dependencies: dict[str, list[str]] = field(default_factory=dict)  # forward link on others → their DNs
    twin: DistributionGroup | None = None
    twin_error: str | None = None
    twin_matches: list[str] = field(default_factory=list)  # several cloud lists answered to the address
    cloud_members: list[Recipient] = field(default_factory=list)
    # Where the twin's membership was read: "graph", or "exchange" (Graph unavailable: graph_error says why).
    cloud_members_from: str = ""
    graph_error: str | None = None
    accepted_domains: list[exo.AcceptedDomain] = field(default_factory=list)
    outbound_connectors: list[exo.OutboundConnector] = field(default_factory=list)
    calls: Counter = field(default_factory=Counter)

    @property
    def found_once(self) -> bool:
        return len(self.matches) == 1 and self.group is not None

    @property
    def addresses(self) -> list[str]:
        return list(self.group.get("proxyAddresses")) if self.group else []

    @property
    def child_lists(self) -> list[ObjectFacts]:
        return [m for m in self.members if m.is_group and m.mail_enabled]

    @property
    def routing_domain(self) -> str | None:
        return next((d.domain_name for d in self.accepted_domains
                     if (d.domain_name or "").lower().endswith(".mail.onmicrosoft.com")), None)

    @property
    def tenant_domain(self) -> str | None:
        return next((d.domain_name for d in self.accepted_domains if d.initial), None) or next(
            (d.domain_name for d in self.accepted_domains
             if (d.domain_name or "").lower().endswith(".onmicrosoft.com")
             and not (d.domain_name or "").lower().endswith(".mail.onmicrosoft.com")), None)


@dataclass(frozen=True)
class StandIn:
    """An on-premises object left behind by a completed migration, and the cloud list it stands for."""

    mail: str  # the migrated list's address: the cloud list a member or link resolves to
    original_dn: str  # the DN the list had before its migration
    cloud_object_id: str = ""  # the cloud list the migration made (its Entra object id, or Exchange's GUID)


def inspect_list(*, mail: str, directory: ActiveDirectory, exchange: ExchangeOnline, graph: Graph | None = None,
                 group_dn: str | None = None, stand_ins: Mapping[str, StandIn] | None = None) -> ListFacts:
    """Read the list ``mail`` names (or the group at ``group_dn`` once it has lost its address).

    ``stand_ins`` (objectGUID or lower-case DN → :class:`StandIn`; the portal's completed migrations when
    not given): a kept original (``!Child``, no longer mail-enabled) or routing contact of a list migrated
    earlier resolves to that list in the cloud, so a parent migrates after its children.

    ``graph`` (opens the Graph connector): the synced twin's membership and the cloud lists of earlier
    migrations are read there instead of through Exchange Online; without it, or when Graph fails, Exchange
    answers as before."""
    if stand_ins is None:
        from .selectors import migrated_stand_ins

        stand_ins = migrated_stand_ins()
    facts = ListFacts(mail=mail)
    if group_dn:
        facts.matches = [directory.read(group_dn, attributes=list(recipients.GROUP_ATTRIBUTES))]
    else:
        facts.matches = recipients.find_by_address(directory, mail)
    facts.calls["ldap"] += 1
    if len(facts.matches) != 1 or facts.matches[0].kind != "group":
        return facts
    facts.group = facts.matches[0]
    facts.dependencies = {
        recipients.DEPENDENCY_BACKLINKS[back]: sorted(facts.group.get(back), key=str.lower)
        for back in recipients.DEPENDENCY_BACKLINKS if facts.group.get(back)
    }
    try:
        facts.twin = exchange.get_distribution_group(mail)
    except exo.AmbiguousObject as exc:
        facts.twin_error = str(exc)
        # Exchange's own ManagementObjectAmbiguousException names no matches: its message stands for them.
        facts.twin_matches = list(getattr(exc, "matches", ())) or [str(exc)]
    except exo.ObjectNotFound as exc:
        facts.twin_error = str(exc)
    facts.calls["cmdlet"] += 1
    if facts.twin is not None:
        _read_twin_members(facts, exchange=exchange, graph=graph)
    resolver = _CloudResolver(exchange, facts.cloud_members, facts.calls, graph=graph)
    for obj in recipients.direct_members(directory, facts.group.dn):
        member = ObjectFacts.from_object(obj)
        resolver.resolve(member, stand_in=_stand_in(obj, stand_ins))
        facts.members.append(member)
    facts.calls["ldap"] += 1
    for attribute in recipients.LIST_LINKS:
        if attribute == "member":
            continue
        named = []
        for dn in facts.group.get(attribute):
            try:
                obj = directory.read(dn, attributes=list(recipients.MEMBER_ATTRIBUTES))
            except adc.NotFound:
                named.append(ObjectFacts(dn=dn, kind="missing", name=dn, mail=None, addresses=(), upn=None,
                                         security_enabled=False))
                continue
            facts.calls["ldap"] += 1
            target = ObjectFacts.from_object(obj)
            resolver.resolve(target, stand_in=_stand_in(obj, stand_ins))
            named.append(target)
        if named:
            facts.links[attribute] = named
    facts.accepted_domains = exchange.get_accepted_domains()
    facts.outbound_connectors = exchange.get_outbound_connectors()
    facts.calls["cmdlet"] += 2
    return facts


def _read_twin_members(facts: ListFacts, *, exchange: ExchangeOnline, graph: Graph | None) -> None:
    """The twin's members with their addresses. A synced group's membership, and its members' addresses, are
    Entra ID's, which Exchange Online shows (forward sync): Graph's paged ``/members`` answers what
    Get-DistributionGroupMember does without an Exchange call. A cloud-only list's membership is Exchange's
    own (not read here: the preflight refuses it). Graph unavailable, or failing part-way: Exchange reads it all."""
    twin = facts.twin
    assert twin is not None
    if graph is not None and twin.is_dir_synced and twin.external_directory_object_id:
        try:
            members = list(graph().iter_group_members(twin.external_directory_object_id,
                                                      select=graphc.MEMBER_ADDRESS_SELECT))
        except Exception as exc:  # noqa: BLE001 - Graph unconfigured, refused or down: Exchange answers too
            facts.graph_error = f"{type(exc).__name__}: {exc}"[:300]
        else:
            facts.calls["graph"] += 1
            facts.cloud_members = [_as_recipient(m) for m in members]
            facts.cloud_members_from = "graph"
            return
    facts.cloud_members = list(exchange.iter_distribution_group_members(twin.guid or facts.mail))
    facts.calls["cmdlet"] += 1
    facts.cloud_members_from = "exchange"


def _as_recipient(obj: graphc.GroupMember | graphc.EntraGroup) -> Recipient:
    """An Entra object as Exchange shows it among a group's members: the primary address is the ``SMTP:``
    proxy address (a member without one shows its mail, as Exchange shows a member that is no recipient).
    Graph does not say which kind of recipient it is, nor Exchange's GUID: those stay empty."""
    addresses = tuple(obj.proxy_addresses)
    primary = next((a[5:] for a in addresses if a[:5] == "SMTP:"), None) or obj.mail or ""
    return Recipient(identity=None, guid=None, name=obj.display_name, display_name=obj.display_name, alias=None,
                     primary_smtp_address=primary, email_addresses=addresses, recipient_type=None,
                     recipient_type_details=None, external_directory_object_id=obj.id, distinguished_name=None,
                     is_dir_synced=bool(obj.on_premises_sync_enabled), hidden_from_address_lists_enabled=None)


def _stand_in(obj: DirectoryObject, stand_ins: Mapping[str, StandIn]) -> StandIn | None:
    if not stand_ins:
        return None
    return (stand_ins.get(str(obj.guid)) if obj.guid else None) or stand_ins.get(obj.dn.lower())


class _CloudResolver:
    """Finds the cloud recipient of an on-premises object: first among the cloud twin's members (one
    call answered them all), then a list migrated earlier where the portal's record of it says (Graph), then
    one Get-Recipient for what is left."""

    def __init__(self, exchange: ExchangeOnline, known: list[Recipient], calls: Counter, *,
                 graph: Graph | None = None) -> None:
        self.exchange = exchange
        self.graph = graph
        self.calls = calls
        self.by_address: dict[str, Recipient] = {}
        for recipient in known:
            self._remember(recipient)

    def _remember(self, recipient: Recipient) -> None:
        for address in smtp_of(list(recipient.email_addresses)):
            self.by_address[address] = recipient
        if recipient.primary_smtp_address:
            self.by_address[recipient.primary_smtp_address.lower()] = recipient

    def resolve(self, target: ObjectFacts, *, stand_in: StandIn | None = None) -> None:
        candidates = [a for a in (target.mail, *target.addresses) if a]
        if stand_in is not None:
            # Not the object's own (cleared, or contact) address: the migrated list it stands for.
            target.stands_for, candidates = stand_in.original_dn, [stand_in.mail]
        recipient = next((self.by_address[a.lower()] for a in candidates if a.lower() in self.by_address), None)
        if recipient is None and stand_in is not None and (recipient := self._migrated_list(stand_in)):
            self._remember(recipient)
        if recipient is None:
            lookup = candidates[0] if stand_in is not None else (
                target.mail or (target.upn if target.kind == "user" else None))
            if not lookup:
                return
            try:
                recipient = self.exchange.get_recipient(lookup)
            except (exo.ObjectNotFound, exo.AmbiguousObject, exo.InvalidParameter):
                return  # unresolved: the preflight fails on it rather than guess which recipient is meant
            finally:
                self.calls["cmdlet"] += 1
            self._remember(recipient)
        target.cloud_identity = recipient.primary_smtp_address or recipient.external_directory_object_id \
            or recipient.guid
        target.cloud_type = recipient.recipient_type_details
        target.cloud_dir_synced = recipient.is_dir_synced
        target.cloud_object_id = recipient.external_directory_object_id

    def _migrated_list(self, stand_in: StandIn) -> Recipient | None:
        """The cloud list a completed migration made, read by the object id it recorded: accepted only as
        Get-Recipient would find it (a cloud-only mail-enabled group that still answers to the list's address);
        anything else (not found, synced, another address, Graph unavailable, an Exchange GUID) asks Exchange."""
        if self.graph is None or not stand_in.cloud_object_id:
            return None
        try:
            group = self.graph().get_group(stand_in.cloud_object_id, select=MIGRATED_LIST_SELECT)
        except Exception:  # noqa: BLE001 - Exchange decides, as without Graph
            return None
        finally:
            self.calls["graph"] += 1
        if group.on_premises_sync_enabled or not group.mail_enabled or group.is_microsoft_365_group \
                or stand_in.mail.lower() not in smtp_of(list(group.proxy_addresses)):
            return None
        return _as_recipient(group)
