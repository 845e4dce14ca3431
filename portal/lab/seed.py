"""The scenario seeder, directory side: builds the lab organisation in AD through the connector.

:func:`seed` creates, under ``OU=Contoso,<base>`` (``portal/lab/layout.py``), an organisation of
``users`` user objects holding every case of the field notes (``docs/seed-field-notes.txt``), with
the attributes Exchange on-premises and Entra Connect would have written. The :class:`Manifest` it
returns names, per scenario, the objects embodying it and the facts that make them that case, so
tests and features find "the list with a nesting cycle" without searching by name.

Deterministic: everything (names, addresses, object ids, memberships) comes from
``random.Random`` streams seeded by ``seed``; the same ``(base_dn, users, seed)`` always gives the
same objects and the same manifest. Only what the directory assigns itself (objectGUID, objectSid,
USNs, times) differs between two labs.

Idempotent: a finished seed leaves a marker (JSON in the ``description`` of ``OU=Contoso``) with
the parameters, the seeder version and the manifest's digest. Seeding again with the same
parameters reads the marker, recomputes the manifest (a pure function of the parameters) and
returns it without writing. Other parameters, an older version or an unfinished seed are refused
unless ``reset=True``, which deletes ``OU=Contoso`` with its subtree first.

Cost: objects are created with the connector's pipelined ``add_many`` (one pipeline per dependency
level: users and contacts before the lists naming them, child lists before their parents) and the
5,200-member list is filled with batched ``add_values``. Measured against the lab's Samba 4.17
(mdb, nosync, two vCPUs): the default seed (5,320 objects, most of them the big list's filler
contacts) in about 5 s; ``users=100000`` (107,141 objects) in 29 minutes, because Samba's cost per
added user grows with the number of users already there (about 330 users/s at the start, 40/s
near 100,000), the client being idle most of the time. ``reset=True`` deletes object by object
(about 20 s for the default seed); for a large seed a fresh lab (``samba.reset``) is faster.

No Django here: callers (a management command, the tests) pass a connector.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from portal.connectors import ad
from portal.connectors.ad import ActiveDirectory, NewEntry, child_dn
from portal.connectors.ad.security import (
    PROTECT_OBJECT_SDDL,
    PROTECT_PARENT_SDDL,
    protect_from_deletion,
    unprotect_from_deletion,
)
from portal.lab import layout

SEED_VERSION = 1
MARKER_TAG = "dirops-lab-seed"
# Above 5,000 whatever ``users`` is, and not a multiple of 1,500 (Windows' range size), so that
# ranged reads end on a partial range.
BIG_LIST_MEMBERS = 5_200
MIN_USERS = 80
MAX_USERS = 1_000_000
SAMPLE_SIZE = 25  # objects listed per bulk scenario; Scenario.total gives the full count

Progress = Callable[[str, int, int], None]

# --- Exchange values (as Exchange 2013+ on-premises writes them) ------------------------------

RTD_MAIL_CONTACT = 64
RTD_MAIL_UNIVERSAL_DISTRIBUTION_GROUP = 256
RTD_MAIL_UNIVERSAL_SECURITY_GROUP = 1024  # its display type is 1073741833 (SecurityDistributionGroup)
RTD_ROOM_LIST = 268435456
RTD_REMOTE_USER_MAILBOX = 2147483648
RTD_REMOTE_ROOM_MAILBOX = 8589934592

RDT_DISTRIBUTION_GROUP = 1
RDT_REMOTE_MAIL_USER = 6  # mail users and mail contacts
RDT_SECURITY_DISTRIBUTION_GROUP = 1073741833
RDT_SYNCED_MAILBOX_USER = -2147483642
RDT_SYNCED_CONFERENCE_ROOM = -2147481850

REMOTE_MIGRATED = 4  # msExchRemoteRecipientType: mailbox moved to Exchange Online
REMOTE_ROOM_MIGRATED = 36  # Migrated (4) | RoomMailbox (32)

GROUP_UNIVERSAL_DISTRIBUTION = 8
GROUP_UNIVERSAL_SECURITY = -2147483640
GROUP_GLOBAL_SECURITY = -2147483646

UAC_ENABLED_NO_PASSWORD = 544  # NORMAL_ACCOUNT | PASSWD_NOTREQD: enabled without a password
UAC_DISABLED = 546  # ... | ACCOUNTDISABLE: resource (room) accounts are disabled

USER_CLASSES = ("top", "person", "organizationalPerson", "user")
CONTACT_CLASSES = ("top", "person", "organizationalPerson", "contact")
GROUP_CLASSES = ("top", "group")

# Where the certificate-user-id cases keep their values: AD has no certificateUserIds attribute;
# the Entra Connect rule of the field notes computes it, so the lab stores the rule's output here.
CERTIFICATE_USER_IDS_ATTRIBUTE = "altSecurityIdentities"




class SeedError(RuntimeError):
    """The lab cannot be seeded as asked (another seed is there, bad parameters, ...)."""


# --------------------------------------------------------------------------------------------
# manifest


@dataclass(frozen=True)
class ScenarioObject:
    """One object embodying a scenario.

    ``facts["attributes"]`` maps attribute names to the exact values the object carries for the
    case (``[]``: the attribute must be absent); DN values are compared as DNs. Other facts are
    context (the IdFix class, the previous mail address, the planned writeback CN, ...).
    """

    dn: str
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    description: str
    objects: list[ScenarioObject]
    total: int  # objects embodying the case in AD; ``objects`` is a sample when the case is bulk


@dataclass
class Manifest:
    version: int
    base_dn: str
    users: int
    seed: int
    ous: dict[str, str]
    domains: dict[str, Any]
    counts: dict[str, int]
    scenarios: dict[str, Scenario]
    # What this call did; not part of the seed's identity (two equal seeds compare equal).
    created: int = field(default=0, compare=False)
    seconds: float = field(default=0.0, compare=False)

    def to_json(self, *, indent: int | None = None) -> str:
        data = asdict(self)
        data.pop("created")
        data.pop("seconds")
        return json.dumps(data, sort_keys=True, indent=indent, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        scenarios = {
            name: Scenario(
                description=s["description"],
                objects=[ScenarioObject(dn=o["dn"], facts=o["facts"]) for o in s["objects"]],
                total=s["total"],
            )
            for name, s in data.pop("scenarios").items()
        }
        return cls(scenarios=scenarios, **data)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def scenario(self, name: str) -> Scenario:
        try:
            return self.scenarios[name]
        except KeyError:
            raise KeyError(f"no scenario {name!r}; the manifest has {sorted(self.scenarios)}") from None

    def dns(self, name: str) -> list[str]:
        return [o.dn for o in self.scenario(name).objects]

    def first(self, name: str) -> ScenarioObject:
        return self.scenario(name).objects[0]


# --------------------------------------------------------------------------------------------
# the seed


def seed(
    directory: ActiveDirectory,
    *,
    base_dn: str,
    users: int = 200,
    seed: int = 1,
    reset: bool = False,
    progress: Progress | None = None,
) -> Manifest:
    """Build the lab organisation under ``OU=Contoso,<base_dn>``; return its manifest.

    Returns at once, writing nothing, when the lab already holds this seed. Raises SeedError when
    it holds another one (or an unfinished one) and ``reset`` is false. ``progress`` is called with
    ``(phase, done, total)`` while objects are sent.
    """
    started = time.monotonic()
    plan = build_plan(base_dn=base_dn, users=users, seed=seed)
    org = layout.org_ou(base_dn)
    report = progress or (lambda phase, done, total: None)

    marker = read_marker(directory, base_dn=base_dn)
    if reset and directory.exists(org):
        _delete_org(directory, org, report)
        marker = None
    if marker is not None:
        return _reuse(plan.manifest, marker, started)
    if directory.exists(org):
        raise SeedError(f"{org} exists but holds no seed marker; pass reset=True to delete and rebuild it")

    created = 0
    building = _marker_text(plan.manifest, state="building")
    directory.create_ou(parent=base_dn, name=layout.ORG_OU, description=building)
    created += 1
    for phase, entries in plan.stages:
        created += directory.add_many(_reporting(entries, phase, report))
    for dn, attribute, values in plan.values:
        report("members", 0, len(values))
        directory.add_values(dn, attribute, values, batch_size=1000)
        report("members", len(values), len(values))
    for index, ddl in enumerate(plan.dynamic_lists, start=1):
        directory.create_dynamic_distribution_list(**ddl)
        created += 1
        report("dynamic lists", index, len(plan.dynamic_lists))
    for index, dn in enumerate(plan.protected, start=1):
        protect_from_deletion(directory, dn)
        report("protection", index, len(plan.protected))
    directory.modify(org, replace={"description": _marker_text(plan.manifest, state="complete")})
    report("done", created, created)
    manifest = plan.manifest
    manifest.created = created
    manifest.seconds = round(time.monotonic() - started, 3)
    return manifest


def manifest_for(*, base_dn: str, users: int = 200, seed: int = 1) -> Manifest:
    """The manifest :func:`seed` returns for these parameters, computed without a directory."""
    return build_plan(base_dn=base_dn, users=users, seed=seed).manifest


@dataclass(frozen=True)
class SeedMarker:
    version: int
    users: int
    seed: int
    digest: str
    state: str


def read_marker(directory: ActiveDirectory, *, base_dn: str) -> SeedMarker | None:
    """The seed marker on ``OU=Contoso``; None when the OU or the marker is absent."""
    try:
        org = directory.read(layout.org_ou(base_dn), attributes=["description"])
    except ad.NotFound:
        return None
    for text in org.get("description"):
        try:
            data = json.loads(text)
        except (TypeError, ValueError):
            continue
        if isinstance(data, dict) and data.get("seeder") == MARKER_TAG:
            return SeedMarker(
                version=int(data.get("version", 0)), users=int(data.get("users", 0)), seed=int(data.get("seed", 0)),
                digest=str(data.get("digest", "")), state=str(data.get("state", "")),
            )
    return None


def _marker_text(manifest: Manifest, *, state: str) -> str:
    return json.dumps({
        "seeder": MARKER_TAG, "version": manifest.version, "users": manifest.users, "seed": manifest.seed,
        "digest": manifest.digest, "state": state,
    }, sort_keys=True)


def _reuse(manifest: Manifest, marker: SeedMarker, started: float) -> Manifest:
    held = f"users={marker.users}, seed={marker.seed}, version {marker.version}"
    if marker.state != "complete":
        raise SeedError(f"the lab holds an unfinished seed ({held}); pass reset=True to rebuild it")
    if (marker.users, marker.seed, marker.version) != (manifest.users, manifest.seed, manifest.version):
        raise SeedError(
            f"the lab holds another seed ({held}), not users={manifest.users}, seed={manifest.seed}, "
            f"version {manifest.version}; pass reset=True to replace it"
        )
    if marker.digest != manifest.digest:
        # Same parameters, different content: the seeder changed without a version bump.
        raise SeedError(f"the lab's seed ({held}) was built by a different seeder; pass reset=True to rebuild it")
    manifest.created = 0
    manifest.seconds = round(time.monotonic() - started, 3)
    return manifest


# Delivery restrictions have syntax Object(OR-Name) in the Exchange schema; Samba 4.17 then fails to
# delete an object such a link points at ("Failed to remove backlink of authOrigBL").
OR_NAME_LINKS = ("authOrig", "unauthOrig", "dLMemSubmitPerms", "dLMemRejectPerms")


def _delete_org(directory: ActiveDirectory, org: str, report: Progress) -> None:
    """Delete ``OU=Contoso`` and everything below it, one object at a time.

    Not one tree delete: Samba runs it as a single operation that takes minutes for a few
    thousand objects (longer than the connector's timeout), and it fails on OR-Name links. Here
    the delivery restrictions are cleared first, then lists go before their members (so no member
    delete rewrites a 5,000-value member attribute), then leaves, then OUs from the deepest up.
    """
    holders = directory.search(filter=ad.any_of(*(ad.present(a) for a in OR_NAME_LINKS)), base=org,
                               attributes=list(OR_NAME_LINKS))
    for holder in list(holders):
        directory.modify(holder.dn, replace={a: None for a in OR_NAME_LINKS if holder.get(a)})
    found = [(o.dn, o.kind) for o in directory.search(filter=ad.MATCH_ALL, base=org, attributes=["objectClass"])]
    order = {"group": 0, "dynamic-dl": 0, "ou": 2}
    found.sort(key=lambda item: (order.get(item[1], 1), -len(ad.parse_dn(item[0]).rdns)))
    report("reset", 0, len(found))
    for index, (dn, _kind) in enumerate(found, start=1):
        try:
            directory.delete(dn)
        except ad.AccessDenied:
            unprotect_from_deletion(directory, dn)  # protected from accidental deletion by the seed
            directory.delete(dn)
        if index % 500 == 0 or index == len(found):
            report("reset", index, len(found))


def _reporting(entries: Sequence[NewEntry], phase: str, report: Progress) -> Iterator[NewEntry]:
    total = len(entries)
    step = max(1, min(500, total // 20 or 1))
    report(phase, 0, total)
    for index, entry in enumerate(entries, start=1):
        yield entry
        if index % step == 0 or index == total:
            report(phase, index, total)



# --------------------------------------------------------------------------------------------
# the plan: every object, link and manifest entry, computed from the parameters alone


@dataclass
class Plan:
    stages: list[tuple[str, list[NewEntry]]]  # each stage is one add_many, in this order
    values: list[tuple[str, str, list[str]]]  # (dn, attribute, values) added after the stages
    dynamic_lists: list[dict[str, Any]]  # keyword arguments of create_dynamic_distribution_list
    protected: list[str]  # DNs protected from accidental deletion
    manifest: Manifest

    @property
    def object_count(self) -> int:
        return 1 + sum(len(entries) for _, entries in self.stages) + len(self.dynamic_lists)


def build_plan(*, base_dn: str, users: int = 200, seed: int = 1) -> Plan:
    """Everything :func:`seed` writes, as data. Pure: the same arguments give an equal plan."""
    if not isinstance(users, int) or isinstance(users, bool) or not MIN_USERS <= users <= MAX_USERS:
        raise SeedError(f"users must be an integer from {MIN_USERS} to {MAX_USERS}, not {users!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise SeedError(f"seed must be an integer, not {seed!r}")
    return _Builder(str(ad.parse_dn(base_dn)), users, seed).build()


FIRST_NAMES = (
    "Anna", "Ben", "Carla", "David", "Eva", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Karin", "Lars", "Maria",
    "Nils", "Olga", "Pieter", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera", "Willem", "Xenia", "Yusuf", "Zoe",
    "Amir", "Bianca", "Chen", "Daan", "Elif", "Finn", "Hana", "Ivan", "Julia", "Kofi", "Lena", "Marco", "Nadia",
    "Oscar", "Priya", "Rafael", "Sofia", "Tomas", "Ulla", "Victor", "Wen", "Yara", "Aiko", "Bruno",
)
LAST_NAMES = (
    "Berg", "Jansen", "Novak", "Rossi", "Schmidt", "Dubois", "Kowalski", "Larsen", "Moreau", "Nielsen", "Okafor",
    "Petrov", "Quispe", "Romano", "Silva", "Tanaka", "Ueda", "Visser", "Weber", "Yilmaz", "Zhang", "Andersson",
    "Bakker", "Costa", "De Vries", "Eriksen", "Fischer", "Garcia", "Haddad", "Ibrahim", "Johansson", "Kim",
    "Lopez", "Meyer", "Nakamura", "Olsen", "Peeters", "Ramos", "Smit", "Torres", "Van Dijk", "Wagner", "Young",
    "Ali", "Brown", "Chopra", "Diaz", "Evans", "Fontaine", "Gruber",
)
DEPARTMENTS = (
    "Sales", "Finance", "Engineering", "Marketing", "Operations", "Legal", "Support", "Research", "Logistics",
    "Procurement", "Human Resources", "Facilities",
)
SITES = ("Amsterdam", "Berlin", "Lisbon", "Oslo", "Prague", "Vienna", "Madrid", "Dublin")
# Exactly 64 characters: the limit of cn and of Exchange object names.
LONG_LIST_NAME = "Global Procurement and Vendor Management Steering Committee EMEA"
LIST_TOPICS = (
    "Team", "Announcements", "Leads", "Project Board", "Newsletter", "Social Club", "On-Call", "Managers",
    "Community", "Updates",
)


@dataclass
class _Person:
    first: str
    last: str
    display: str
    alias: str
    sam: str


class _Builder:
    def __init__(self, base_dn: str, users: int, seed_value: int) -> None:
        self.base = base_dn
        self.users = users
        self.seed = seed_value
        self.names_rng = self._rng("names")
        self.addr_rng = self._rng("addresses")
        self.member_rng = self._rng("members")
        self.id_rng = self._rng("object-ids")
        self.used_aliases: dict[str, int] = {}
        self.used_sams: set[str] = set()
        self.sam_counters: dict[str, int] = {}
        self.used_cns: set[tuple[str, str]] = set()
        self.scenarios: dict[str, Scenario] = {}
        self.stages: list[tuple[str, list[NewEntry]]] = []
        self.values: list[tuple[str, str, list[str]]] = []
        self.dynamic_lists: list[dict[str, Any]] = []
        self.protected: list[str] = []
        self.counts: dict[str, int] = {}

    def _rng(self, purpose: str) -> random.Random:
        # One stream per purpose (str seeds hash with SHA-512: stable across runs and machines).
        return random.Random(f"{MARKER_TAG}:{self.seed}:{purpose}")

    # ---- naming

    def object_id(self) -> str:
        return str(uuid.UUID(int=self.id_rng.getrandbits(128), version=4))

    def hex32(self) -> str:
        return f"{self.id_rng.getrandbits(128):032x}"

    def unique_alias(self, wanted: str) -> str:
        base = _alias_text(wanted) or "recipient"
        count = self.used_aliases.get(base, 0)
        self.used_aliases[base] = count + 1
        if count == 0:
            return base
        candidate = f"{base}{count + 1}"
        while candidate in self.used_aliases:
            count += 1
            candidate = f"{base}{count + 1}"
        self.used_aliases[candidate] = 1
        return candidate

    def unique_sam(self, wanted: str) -> str:
        base = (_alias_text(wanted).replace(".", "") or "acct")[:16]
        n = self.sam_counters.get(base, 0)
        candidate = base
        while candidate.lower() in self.used_sams:
            n += 1
            candidate = f"{base[: 20 - len(str(n + 1))]}{n + 1}"
        self.sam_counters[base] = n
        self.used_sams.add(candidate.lower())
        return candidate

    def unique_cn(self, parent: str, wanted: str, fallback: str) -> str:
        """A DN under ``parent`` (already canonical, from layout) that no other planned object has."""
        name = wanted if (parent, wanted.lower()) not in self.used_cns else f"{wanted} ({fallback})"
        self.used_cns.add((parent, name.lower()))
        return f"{ad.rdn('CN', name)},{parent}"

    def person(self, first: str | None = None, last: str | None = None) -> _Person:
        first = first or self.names_rng.choice(FIRST_NAMES)
        last = last or self.names_rng.choice(LAST_NAMES)
        alias = self.unique_alias(f"{first}.{last}")
        return _Person(first, last, f"{first} {last}", alias, self.unique_sam(f"{first[0]}{last}"))

    # ---- addresses

    def cloud_x500(self, alias: str, *, prefix: str = "X500") -> str:
        return f"{prefix}:/o=ExchangeLabs/ou={layout.ADMIN_GROUP}/cn=Recipients/cn={self.hex32()}-{alias[:11]}"

    def legacy_dn(self, alias: str) -> str:
        return f"/o={layout.EXCHANGE_ORG}/ou={layout.ADMIN_GROUP}/cn=Recipients/cn={self.hex32()}-{alias[:11]}"

    # ---- recipients

    def remote_mailbox(
        self,
        parent: str,
        p: _Person,
        *,
        domain: str = layout.PRIMARY_DOMAIN,
        upn: str | None = None,
        department: str | None = None,
        secondary: Sequence[str] = (),
        overrides: dict[str, Any] | None = None,
    ) -> NewEntry:
        primary = f"{p.alias}@{domain}"
        proxies = [f"SMTP:{primary}", *(f"smtp:{a}" for a in secondary),
                   f"smtp:{p.alias}@{layout.ROUTING_DOMAIN}", self.cloud_x500(p.alias)]
        attrs: dict[str, Any] = {
            "sAMAccountName": p.sam,
            "userPrincipalName": upn or primary,
            "givenName": p.first,
            "sn": p.last,
            "displayName": p.display,
            "userAccountControl": UAC_ENABLED_NO_PASSWORD,
            "mail": primary,
            "mailNickname": p.alias,
            "proxyAddresses": proxies,
            "targetAddress": f"SMTP:{p.alias}@{layout.ROUTING_DOMAIN}",
            "legacyExchangeDN": self.legacy_dn(p.alias),
            "msExchRecipientTypeDetails": RTD_REMOTE_USER_MAILBOX,
            "msExchRecipientDisplayType": RDT_SYNCED_MAILBOX_USER,
            "msExchRemoteRecipientType": REMOTE_MIGRATED,
            "company": layout.EXCHANGE_ORG,
        }
        if department:
            attrs["department"] = department
            attrs["extensionAttribute1"] = department
        for key, value in (overrides or {}).items():
            if value is None:
                attrs.pop(key, None)
            else:
                attrs[key] = value
        return NewEntry(self.unique_cn(parent, p.display, p.alias), USER_CLASSES, attrs)

    def mail_contact(self, parent: str, display: str, external: str, alias: str, *, target: bool = True) -> NewEntry:
        first, _, last = display.partition(" ")
        attrs: dict[str, Any] = {
            "displayName": display,
            "givenName": first,
            "sn": last or first,
            "mail": external,
            "mailNickname": alias,
            "proxyAddresses": [f"SMTP:{external}"],
            "legacyExchangeDN": self.legacy_dn(alias),
            "msExchRecipientTypeDetails": RTD_MAIL_CONTACT,
            "msExchRecipientDisplayType": RDT_REMOTE_MAIL_USER,
        }
        if target:
            attrs["targetAddress"] = f"SMTP:{external}"
        return NewEntry(self.unique_cn(parent, display, alias), CONTACT_CLASSES, attrs)

    def mail_group(
        self,
        name: str,
        *,
        parent: str | None = None,
        group_type: int = GROUP_UNIVERSAL_DISTRIBUTION,
        details: int = RTD_MAIL_UNIVERSAL_DISTRIBUTION_GROUP,
        display_type: int = RDT_DISTRIBUTION_GROUP,
        members: Sequence[str] = (),
        domain: str = layout.PRIMARY_DOMAIN,
        secondary: Sequence[str] = (),
        extra: dict[str, Any] | None = None,
        alias: str | None = None,
    ) -> NewEntry:
        parent = parent or layout.groups_ou(self.base)
        alias = self.unique_alias(alias or name)
        mail = f"{alias}@{domain}"
        attrs: dict[str, Any] = {
            "sAMAccountName": self.unique_sam(alias),
            "groupType": group_type,
            "displayName": name,
            "mail": mail,
            "mailNickname": alias,
            "proxyAddresses": [f"SMTP:{mail}", *(f"smtp:{a}" for a in secondary),
                               f"smtp:{alias}@{layout.ROUTING_DOMAIN}", self.cloud_x500(alias)],
            "legacyExchangeDN": self.legacy_dn(alias),
            "msExchRecipientTypeDetails": details,
            "msExchRecipientDisplayType": display_type,
            "reportToOriginator": True,
            "msExchRequireAuthToSendTo": True,
        }
        if members:
            attrs["member"] = list(members)
        for key, value in (extra or {}).items():
            if value is None:
                attrs.pop(key, None)
            else:
                attrs[key] = value
        return NewEntry(self.unique_cn(parent, name, alias), GROUP_CLASSES, attrs)

    def add_scenario(self, key: str, description: str, objects: Iterable[ScenarioObject],
                     total: int | None = None) -> None:
        items = list(objects)
        self.scenarios[key] = Scenario(description=description, objects=items,
                                       total=len(items) if total is None else total)

    # ---- the organisation

    def build(self) -> Plan:
        base = self.base
        users_ou, groups_ou = layout.users_ou(base), layout.groups_ou(base)
        contacts_ou, rooms_ou = layout.contacts_ou(base), layout.rooms_ou(base)

        special_users: list[NewEntry] = []
        special_facts: dict[str, list[ScenarioObject]] = {}

        def special(key: str, entry: NewEntry, **facts: Any) -> NewEntry:
            special_users.append(entry)
            special_facts.setdefault(key, []).append(ScenarioObject(entry.dn, facts))
            return entry

        # -- mail-only users: a `mail` value and no Exchange recipient type (the field notes' case of
        # accounts provisioned without Exchange and licensed in the cloud)
        for _ in range(3):
            p = self.person()
            mail = f"{p.alias}@{layout.PRIMARY_DOMAIN}"
            attrs = {"sAMAccountName": p.sam, "userPrincipalName": mail, "givenName": p.first, "sn": p.last,
                     "displayName": p.display, "userAccountControl": UAC_ENABLED_NO_PASSWORD, "mail": mail,
                     "mailNickname": p.alias, "targetAddress": f"SMTP:{p.alias}@{layout.ROUTING_DOMAIN}"}
            special("mail_only_users_without_proxy_addresses",
                    NewEntry(self.unique_cn(users_ou, p.display, p.alias), USER_CLASSES, attrs),
                    attributes={"mail": [mail], "mailNickname": [p.alias], "targetAddress": [attrs["targetAddress"]],
                                "proxyAddresses": [], "msExchRecipientTypeDetails": []},
                    cloud_primary_smtp=mail)
        for _ in range(3):
            p = self.person()
            previous = f"{p.alias}@{layout.SECONDARY_DOMAIN}"
            mail = f"{p.alias}.new@{layout.PRIMARY_DOMAIN}"
            cloud_id = self.object_id()
            x500 = (f"x500:/o=ExchangeLabs/ou={layout.ADMIN_GROUP}/cn=Recipients/cn={self.hex32()}-"
                    f"{cloud_id[:11]}")
            attrs = {"sAMAccountName": p.sam, "userPrincipalName": f"{p.alias}@{layout.PRIMARY_DOMAIN}",
                     "givenName": p.first, "sn": p.last, "displayName": p.display,
                     "userAccountControl": UAC_ENABLED_NO_PASSWORD, "mail": mail, "proxyAddresses": [x500]}
            special("mail_only_users_with_only_x500_proxy",
                    NewEntry(self.unique_cn(users_ou, p.display, p.alias), USER_CLASSES, attrs),
                    attributes={"mail": [mail], "proxyAddresses": [x500], "mailNickname": [], "targetAddress": []},
                    previous_mail=previous, cloud_primary_smtp=previous, cloud_object_id=cloud_id,
                    note="mail was changed on-premises; ProxyCalc keeps the cloud address because "
                         "proxyAddresses (only the X500 written back by Exchange hybrid) is not empty")

        # -- UPN differs from the primary SMTP address (and is not among the proxy addresses)
        for index in range(3):
            p = self.person()
            upn = f"{p.alias}@{layout.SECONDARY_DOMAIN}" if index < 2 else f"{p.sam}@{layout.PRIMARY_DOMAIN}"
            entry = self.remote_mailbox(users_ou, p, upn=upn)
            special("upn_differs_from_primary_smtp", entry,
                    attributes={"userPrincipalName": [upn], "mail": [entry.attributes["mail"]]},
                    primary_smtp=entry.attributes["mail"])

        # -- IdFix classes (one defect per object, named by IdFix's error class)
        self._idfix_cases(users_ou, contacts_ou, groups_ou, special)

        # -- certificate user ids as the field notes' sync rule computed them
        for index in range(5):
            p = self.person()
            upn = f"{p.alias}@{layout.PRIMARY_DOMAIN}"
            prefix = "x509" if index < 3 else "X509"
            value = f"{prefix}:<PN>{upn}"
            key = "certificate_user_ids_lowercase_x509" if index < 3 else "certificate_user_ids_uppercase_x509"
            special(key, self.remote_mailbox(users_ou, p, overrides={CERTIFICATE_USER_IDS_ATTRIBUTE: [value]}),
                    attributes={CERTIFICATE_USER_IDS_ATTRIBUTE: [value]}, attribute=CERTIFICATE_USER_IDS_ATTRIBUTE,
                    valid=prefix == "X509")

        # ``users`` counts the user objects of OU=Users and its departments: the special cases
        # (and the forwarding user added below) included, rooms not.
        specials = sum(1 for e in special_users if e.object_class == USER_CLASSES) + 1
        if self.users - specials < 40:
            raise SeedError(f"users must leave room for bulk users beside the {specials} special cases")

        # -- remote mailboxes (the bulk), spread over department OUs of at most ~2,500 users
        bulk_count = self.users - specials
        departments = _departments(math.ceil(bulk_count / 2_500))
        dept_ous = [layout.department_ou(base, d) for d in departments]
        bulk_users: list[NewEntry] = []
        for index in range(bulk_count):
            p = self.person()
            dept_index = index % len(departments)
            domain = layout.SECONDARY_DOMAIN if self.addr_rng.random() < 0.15 else layout.PRIMARY_DOMAIN
            secondary = [f"{p.alias}@{layout.SECONDARY_DOMAIN}"] if (
                domain == layout.PRIMARY_DOMAIN and self.addr_rng.random() < 0.3) else []
            bulk_users.append(self.remote_mailbox(dept_ous[dept_index], p, domain=domain, secondary=secondary,
                                                  department=departments[dept_index]))
        bulk_dns = [e.dn for e in bulk_users]
        user_dns = bulk_dns  # members and owners are drawn from well-formed users only

        # -- rooms (remote room mailboxes) for the room list
        rooms: list[NewEntry] = []
        site = "Amsterdam"
        for index in range(4):
            name = f"Room {site} {index + 1}.0{index + 2}"
            alias = self.unique_alias(f"room.{site}.{index + 1}")
            mail = f"{alias}@{layout.PRIMARY_DOMAIN}"
            rooms.append(NewEntry(self.unique_cn(rooms_ou, name, alias), USER_CLASSES, {
                "sAMAccountName": self.unique_sam(alias), "userPrincipalName": mail, "displayName": name,
                "userAccountControl": UAC_DISABLED, "mail": mail, "mailNickname": alias,
                "proxyAddresses": [f"SMTP:{mail}", f"smtp:{alias}@{layout.ROUTING_DOMAIN}", self.cloud_x500(alias)],
                "targetAddress": f"SMTP:{alias}@{layout.ROUTING_DOMAIN}", "legacyExchangeDN": self.legacy_dn(alias),
                "msExchRecipientTypeDetails": RTD_REMOTE_ROOM_MAILBOX,
                "msExchRecipientDisplayType": RDT_SYNCED_CONFERENCE_ROOM,
                "msExchRemoteRecipientType": REMOTE_ROOM_MIGRATED, "physicalDeliveryOfficeName": site,
            }))

        # -- mail contacts, and the fillers that take the big list above 5,000 members
        contacts: list[NewEntry] = []
        for _ in range(max(10, self.users // 20)):
            first, last = self.names_rng.choice(FIRST_NAMES), self.names_rng.choice(LAST_NAMES)
            alias = self.unique_alias(f"ext.{first}.{last}")
            domain = self.addr_rng.choice(layout.EXTERNAL_DOMAINS)
            external = f"{_alias_text(f'{first}.{last}')}@{domain}"
            contacts.append(self.mail_contact(contacts_ou, f"{first} {last} ({domain.split('.')[0]})", external,
                                              alias))
        contact_dns = [c.dn for c in contacts]
        big_from_users = min(len(bulk_dns), BIG_LIST_MEMBERS)
        fillers: list[NewEntry] = []
        bulk_ou = layout.bulk_contacts_ou(base)
        for index in range(BIG_LIST_MEMBERS - big_from_users):
            alias = self.unique_alias(f"member{index + 1:05d}")
            fillers.append(self.mail_contact(bulk_ou, f"List Member {index + 1:05d}",
                                             f"member{index + 1:05d}@{layout.EXTERNAL_DOMAINS[0]}", alias))

        # -- groups
        groups = self._groups(groups_ou, user_dns, contact_dns, rooms, bulk_dns[:big_from_users],
                              [f.dn for f in fillers])
        writeback = self._writeback_groups(user_dns)

        # -- a user case that names a group: forwarding to a list (created after the groups)
        forward_target = groups["forward_target"]
        forwarding = self.remote_mailbox(users_ou, self.person(), overrides={"altRecipient": forward_target})
        self.add_scenario("forwarding_to_list", _DESCRIPTIONS["forwarding_to_list"], [ScenarioObject(
            forwarding.dn, {"target": forward_target, "attributes": {"altRecipient": [forward_target]}})])

        # -- stages, in dependency order
        ous = [NewEntry(dn, "organizationalUnit", {}) for dn in layout.all_ous(base)[1:]]
        ous += [NewEntry(dn, "organizationalUnit", {"description": f"{d} department"})
                for dn, d in zip(dept_ous, departments, strict=True)]
        self.stages.append(("ous", ous))
        self.stages.append(("users", special_users + bulk_users + rooms))
        self.stages.append(("contacts", contacts + fillers))
        for level, entries in enumerate(groups["levels"]):
            self.stages.append((f"groups (level {level})", entries))
        self.stages.append(("linked users", [forwarding]))
        self.stages.append(("group writeback", writeback))

        for key, objects in special_facts.items():
            self.add_scenario(key, _DESCRIPTIONS[key], objects)
        sample = bulk_users[:SAMPLE_SIZE]
        self.add_scenario("remote_mailbox_users", _DESCRIPTIONS["remote_mailbox_users"], (
            ScenarioObject(e.dn, {"attributes": _pick(e, "mail", "targetAddress", "msExchRecipientTypeDetails",
                                                      "msExchRecipientDisplayType", "msExchRemoteRecipientType",
                                                      "proxyAddresses", "mailNickname")})
            for e in sample), total=1 + sum(
                1 for _, entries in self.stages for e in entries
                if e.attributes.get("msExchRecipientTypeDetails") == RTD_REMOTE_USER_MAILBOX))
        self.add_scenario("remote_room_mailboxes", _DESCRIPTIONS["remote_room_mailboxes"], (
            ScenarioObject(e.dn, {"attributes": _pick(e, "msExchRecipientTypeDetails", "msExchRecipientDisplayType",
                                                      "msExchRemoteRecipientType", "targetAddress")})
            for e in rooms))
        self.add_scenario("mail_contacts", _DESCRIPTIONS["mail_contacts"], (
            ScenarioObject(e.dn, {"attributes": _pick(e, "mail", "targetAddress", "proxyAddresses",
                                                      "msExchRecipientTypeDetails")})
            for e in contacts[:SAMPLE_SIZE]), total=len(contacts))
        self.add_scenario("big_list_filler_contacts", _DESCRIPTIONS["big_list_filler_contacts"], (
            ScenarioObject(e.dn, {"attributes": _pick(e, "mail", "targetAddress", "msExchRecipientTypeDetails")})
            for e in fillers[:SAMPLE_SIZE]), total=len(fillers))

        self.counts = {
            "users": self.users, "remote_mailbox_users": self.scenarios["remote_mailbox_users"].total,
            "special_users": specials, "rooms": len(rooms), "contacts": len(contacts), "filler_contacts": len(fillers),
            "groups": sum(len(e) for e in groups["levels"]), "writeback_groups": len(writeback),
            "dynamic_lists": len(self.dynamic_lists), "departments": len(departments),
        }
        manifest = Manifest(
            version=SEED_VERSION, base_dn=base, users=self.users, seed=self.seed,
            ous={
                "org": layout.org_ou(base), "synced": layout.synced_ou(base), "users": users_ou,
                "groups": groups_ou, "contacts": contacts_ou, "bulk_contacts": bulk_ou, "rooms": rooms_ou,
                "not_synced": layout.non_sync_ou(base), "group_writeback": layout.writeback_ou(base),
                **{f"department:{d}": dn for d, dn in zip(departments, dept_ous, strict=True)},
            },
            domains={
                "primary": layout.PRIMARY_DOMAIN, "secondary": layout.SECONDARY_DOMAIN,
                "tenant": layout.TENANT_DOMAIN, "routing": layout.ROUTING_DOMAIN,
                "accepted": list(layout.ACCEPTED_DOMAINS), "non_accepted": layout.NON_ACCEPTED_DOMAIN,
                "external": list(layout.EXTERNAL_DOMAINS),
            },
            counts=self.counts,
            scenarios=dict(sorted(self.scenarios.items())),
        )
        manifest.counts["objects"] = 1 + sum(len(e) for _, e in self.stages) + len(self.dynamic_lists)
        return Plan(self.stages, self.values, self.dynamic_lists, self.protected, manifest)

    # ---- IdFix

    def _idfix_cases(self, users_ou: str, contacts_ou: str, groups_ou: str,
                     special: Callable[..., NewEntry]) -> None:
        def user(key: str, idfix: str, attribute: str, value: Any, *, overrides: dict[str, Any] | None = None,
                 first: str | None = None, last: str | None = None, note: str = "") -> NewEntry:
            p = self.person(first, last)
            changes = {attribute: value, **(overrides or {})}
            entry = self.remote_mailbox(users_ou, p, overrides=changes)
            expected = {attribute: [] if value is None else (value if isinstance(value, list) else [value])}
            facts: dict[str, Any] = {"idfix_class": idfix, "attribute": attribute, "attributes": expected}
            if note:
                facts["note"] = note
            return special(key, entry, **facts)

        def proxies_with(p_alias: str, bad: str) -> list[str]:
            return [f"SMTP:{p_alias}@{layout.PRIMARY_DOMAIN}", bad, f"smtp:{p_alias}@{layout.ROUTING_DOMAIN}"]

        # character
        user("idfix_character", "character", "mailNickname", "anna?^|berg", first="Anna", last="Berg",
             note="mailNickname holds ? ^ |")
        p_alias = self._peek_alias("Carla", "Costa")
        user("idfix_character", "character", "proxyAddresses",
             proxies_with(p_alias, f"smtp:{p_alias}(old)@{layout.PRIMARY_DOMAIN}"), first="Carla", last="Costa",
             note="a proxy address holds ( )")
        user("idfix_character", "character", "userPrincipalName", f"tom&jerry.{self.seed}@{layout.PRIMARY_DOMAIN}",
             note="userPrincipalName holds &")
        user("idfix_character", "character", "userPrincipalName", f"zoë.müller.{self.seed}@{layout.PRIMARY_DOMAIN}",
             first="Zoe", last="Muller", note="userPrincipalName holds umlauts")
        # format
        user("idfix_format", "format", "mail", f"bob.smith.{self.seed}@@{layout.PRIMARY_DOMAIN}",
             note="mail has two @")
        p_alias = self._peek_alias("Greta", "Gruber")
        user("idfix_format", "format", "proxyAddresses",
             proxies_with(p_alias, f"smtp:{p_alias}.{layout.PRIMARY_DOMAIN}"), first="Greta", last="Gruber",
             note="an smtp proxy address without @")
        user("idfix_format", "format", "mailNickname", ".leading.period", note="mailNickname begins with a period")
        # topleveldomain
        user("idfix_topleveldomain", "topleveldomain", "userPrincipalName",
             f"kim.lee.{self.seed}@{layout.NON_ACCEPTED_DOMAIN}", note="UPN suffix .local is not routable")
        p_alias = self._peek_alias("Hugo", "Haddad")
        user("idfix_topleveldomain", "topleveldomain", "proxyAddresses",
             proxies_with(p_alias, f"smtp:{p_alias}@{layout.NON_ACCEPTED_DOMAIN}"), first="Hugo", last="Haddad",
             note="a proxy address in .local")
        # domainpart
        p_alias = self._peek_alias("Ivan", "Ibrahim")
        user("idfix_domainpart", "domainpart", "proxyAddresses",
             proxies_with(p_alias, f"smtp:{p_alias}@contoso..com"), first="Ivan", last="Ibrahim",
             note="empty label in the domain")
        user("idfix_domainpart", "domainpart", "mail", f"lee.{self.seed}@contoso_corp.com",
             note="underscore in the domain")
        # localpart
        p_alias = self._peek_alias("Julia", "Jansen")
        user("idfix_localpart", "localpart", "proxyAddresses",
             proxies_with(p_alias, f"smtp:.{p_alias}@{layout.PRIMARY_DOMAIN}"), first="Julia", last="Jansen",
             note="local part begins with a period")
        user("idfix_localpart", "localpart", "mail", f"karin..kim.{self.seed}@{layout.PRIMARY_DOMAIN}",
             note="two periods in a row in the local part")
        # duplicate: the same proxy address, mail and mailNickname on two objects each
        shared_proxy = f"smtp:helpdesk@{layout.PRIMARY_DOMAIN}"
        for first in ("Lars", "Lena"):
            p_alias = self._peek_alias(first, "Larsen")
            user("idfix_duplicate", "duplicate", "proxyAddresses", proxies_with(p_alias, shared_proxy),
                 first=first, last="Larsen", note=f"{shared_proxy} is on two users")
        shared_mail = f"info@{layout.PRIMARY_DOMAIN}"
        for first in ("Marco", "Maria"):
            user("idfix_duplicate", "duplicate", "mail", shared_mail, first=first, last="Meyer",
                 note=f"mail {shared_mail} is on two users")
        for first in ("Nils", "Nadia"):
            user("idfix_duplicate", "duplicate", "mailNickname", "nielsen", first=first, last="Nielsen",
                 note="mailNickname nielsen is on two users")
        # blank: required values missing (an empty LDAP value cannot exist)
        user("idfix_blank", "blank", "mailNickname", None, note="mail-enabled user without mailNickname")
        user("idfix_blank", "blank", "mail", None, note="remote mailbox without mail")
        p = self.person()
        contact = self.mail_contact(contacts_ou, f"{p.display} (blank target)",
                                    f"{p.alias}@{layout.EXTERNAL_DOMAINS[1]}", p.alias, target=False)
        special("idfix_blank", contact, idfix_class="blank", attribute="targetAddress",
                attributes={"targetAddress": []}, note="mail contact without targetAddress")
        alias = self.unique_alias("no-display-name-list")
        group = NewEntry(self.unique_cn(groups_ou, "No Display Name List", alias), GROUP_CLASSES, {
            "sAMAccountName": self.unique_sam(alias), "groupType": GROUP_UNIVERSAL_DISTRIBUTION,
            "mail": f"{alias}@{layout.PRIMARY_DOMAIN}", "mailNickname": alias,
            "proxyAddresses": [f"SMTP:{alias}@{layout.PRIMARY_DOMAIN}"],
            "msExchRecipientTypeDetails": RTD_MAIL_UNIVERSAL_DISTRIBUTION_GROUP,
            "msExchRecipientDisplayType": RDT_DISTRIBUTION_GROUP,
        })
        special("idfix_blank", group, idfix_class="blank", attribute="displayName", attributes={"displayName": []},
                note="mail-enabled group without displayName")
        # length (mailNickname over 64 cannot be stored: the schema's rangeUpper refuses it)
        long_local = "a" * 70
        user("idfix_length", "length", "userPrincipalName", f"{long_local}.{self.seed}@{layout.PRIMARY_DOMAIN}",
             note="UPN local part longer than 64")
        p_alias = self._peek_alias("Olga", "Olsen")
        long_x500 = f"X500:/o=ExchangeLabs/ou={layout.ADMIN_GROUP}/cn=Recipients/cn={'f' * 240}-{p_alias}"
        user("idfix_length", "length", "proxyAddresses", proxies_with(p_alias, long_x500), first="Olga", last="Olsen",
             note=f"a proxy address of {len(long_x500)} characters (over 256)")
        user("idfix_length", "length", "sAMAccountName", f"averyverylongaccount{self.seed}x",
             overrides={"userPrincipalName": None}, note="sAMAccountName over 20 characters and no UPN")
        # whitespace (IdFix reports it as a character error)
        user("idfix_whitespace", "character", "displayName", " Pieter Peeters", first="Pieter", last="Peeters",
             note="leading space in displayName")
        user("idfix_whitespace", "character", "displayName", "Rosa Romano ", first="Rosa", last="Romano",
             note="trailing space in displayName")
        p_alias = self._peek_alias("Sven", "Smit")
        user("idfix_whitespace", "character", "proxyAddresses",
             proxies_with(p_alias, f"smtp: {p_alias}@{layout.SECONDARY_DOMAIN}"), first="Sven", last="Smit",
             note="a space after smtp:")
        user("idfix_whitespace", "character", "userPrincipalName",
             f"tara torres.{self.seed}@{layout.PRIMARY_DOMAIN}", first="Tara", last="Torres",
             note="space inside the UPN")

    def _peek_alias(self, first: str, last: str) -> str:
        """The alias person(first, last) will get next (to build values that include it)."""
        base = _alias_text(f"{first}.{last}")
        count = self.used_aliases.get(base, 0)
        if count == 0:
            return base
        candidate = f"{base}{count + 1}"
        while candidate in self.used_aliases:
            count += 1
            candidate = f"{base}{count + 1}"
        return candidate

    # ---- groups

    def _groups(self, groups_ou: str, user_dns: list[str], contact_dns: list[str], rooms: list[NewEntry],
                big_users: list[str], big_fillers: list[str]) -> dict[str, Any]:
        rng = self.member_rng
        entries: dict[str, NewEntry] = {}  # by DN
        deps: dict[str, set[str]] = {}

        def pick(pool: Sequence[str], count: int) -> list[str]:
            return rng.sample(pool, min(count, len(pool)))

        def keep(entry: NewEntry) -> str:
            entries[entry.dn] = entry
            return entry.dn

        scen: dict[str, list[ScenarioObject]] = {}

        def record(key: str, dn: str, **facts: Any) -> None:
            scen.setdefault(key, []).append(ScenarioObject(dn, facts))

        # flat lists, scaled with N
        flat_count = max(12, self.users // 50)
        flat: list[str] = []
        for index in range(flat_count):
            dept = DEPARTMENTS[index % len(DEPARTMENTS)]
            topic = LIST_TOPICS[(index // len(DEPARTMENTS)) % len(LIST_TOPICS)]
            site = SITES[(index // (len(DEPARTMENTS) * len(LIST_TOPICS))) % len(SITES)]
            cycle = index // (len(DEPARTMENTS) * len(LIST_TOPICS) * len(SITES))
            name = f"{dept} {topic}" + (f" {site}" if index >= len(DEPARTMENTS) * len(LIST_TOPICS) else "")
            name += f" {cycle + 1}" if cycle else ""
            members = pick(user_dns, rng.randint(3, 25)) + pick(contact_dns, rng.randint(0, 2))
            extra: dict[str, Any] = {"managedBy": rng.choice(user_dns)}
            if index % 4 == 0:
                extra["extensionAttribute1"] = dept
            if index % 5 == 0:
                extra["msExchRequireAuthToSendTo"] = False  # accepts mail from outside
            flat.append(keep(self.mail_group(name, members=members, extra=extra)))
        for dn in flat[:SAMPLE_SIZE]:
            e = entries[dn]
            record("distribution_lists_flat", dn, attributes=_pick(e, "groupType", "mail", "msExchRecipientTypeDetails",
                                                                   "msExchRecipientDisplayType", "member"))

        def group_facts(dn: str, *names: str) -> dict[str, Any]:
            return _pick(entries[dn], *names)

        # nesting depth 4: A > B > C > D
        chain_names = ("All Staff EMEA", "Staff Benelux", "Staff Netherlands", "Staff Amsterdam")
        chain: list[str] = []
        child: str | None = None
        for name in reversed(chain_names):
            members = pick(user_dns, 3) + ([child] if child else [])
            child = keep(self.mail_group(name, members=members))
            chain.insert(0, child)
        for depth, dn in enumerate(chain, start=1):
            record("nested_lists_depth_4", dn, depth=depth, child=chain[depth] if depth < 4 else None,
                   attributes=group_facts(dn, "member"))

        # nesting cycle: X > Y > X (Y's link to X is added after both exist)
        cycle_y = keep(self.mail_group("Project Falcon Extended", members=pick(user_dns, 3)))
        cycle_x = keep(self.mail_group("Project Falcon Core", members=[*pick(user_dns, 3), cycle_y]))
        self.values.append((cycle_y, "member", [cycle_x]))
        record("nesting_cycle", cycle_x, contains=cycle_y)
        record("nesting_cycle", cycle_y, contains=cycle_x)

        # the big list: members added in batches after creation
        big = keep(self.mail_group("All Company Announcements", extra={"managedBy": user_dns[0]}))
        big_members = big_users + big_fillers
        self.values.append((big, "member", big_members))
        record("large_list", big, member_count=len(big_members), users=len(big_users), contacts=len(big_fillers))

        # groups referenced by others (security-enabled and not)
        sec_approvers = keep(self.mail_group(
            "SG Finance Approvers", group_type=GROUP_UNIVERSAL_SECURITY, details=RTD_MAIL_UNIVERSAL_SECURITY_GROUP,
            display_type=RDT_SECURITY_DISTRIBUTION_GROUP, members=pick(user_dns, 4)))
        sec_it = keep(self.mail_group(
            "SG IT Administrators", group_type=GROUP_UNIVERSAL_SECURITY, details=RTD_MAIL_UNIVERSAL_SECURITY_GROUP,
            display_type=RDT_SECURITY_DISTRIBUTION_GROUP, members=pick(user_dns, 4)))
        for dn in (sec_approvers, sec_it):
            record("mail_enabled_security_groups", dn, attributes=group_facts(
                dn, "groupType", "msExchRecipientTypeDetails", "msExchRecipientDisplayType"))
        facilities_team = keep(self.mail_group("Facilities Team", members=pick(user_dns, 4)))

        # delivery restrictions (users and contacts in authOrig/unauthOrig, lists in the DL fields)
        accept_senders = [*pick(user_dns, 2), contact_dns[0]]
        restricted_accept = keep(self.mail_group("Executive Announcements", members=pick(user_dns, 6), extra={
            "authOrig": accept_senders, "dLMemSubmitPerms": [sec_approvers]}))
        restricted_reject = keep(self.mail_group("Customer Feedback", members=pick(user_dns, 6), extra={
            "unauthOrig": [user_dns[1], contact_dns[1]], "dLMemRejectPerms": [facilities_team]}))
        record("delivery_restrictions", restricted_accept, attributes=group_facts(
            restricted_accept, "authOrig", "dLMemSubmitPerms"))
        record("delivery_restrictions", restricted_reject, attributes=group_facts(
            restricted_reject, "unauthOrig", "dLMemRejectPerms"))

        # moderation
        moderated = keep(self.mail_group("Press Releases", members=pick(user_dns, 5), extra={
            "msExchEnableModeration": True, "msExchModerationFlags": 6,
            "msExchModeratedByLink": [user_dns[2]], "msExchBypassModerationLink": [user_dns[3], contact_dns[2]]}))
        record("moderated_list", moderated, attributes=group_facts(
            moderated, "msExchEnableModeration", "msExchModeratedByLink", "msExchBypassModerationLink"))

        # owners
        co_managed = keep(self.mail_group("Marketing Events", members=pick(user_dns, 5), extra={
            "managedBy": user_dns[4], "msExchCoManagedByLink": [user_dns[5], user_dns[6]]}))
        record("co_managed_list", co_managed, attributes=group_facts(co_managed, "managedBy", "msExchCoManagedByLink"))
        bad_owner = keep(self.mail_group("Facilities Requests", members=pick(user_dns, 5),
                                         extra={"managedBy": facilities_team}))
        record("managed_by_non_security_group", bad_owner, manager=facilities_team,
               manager_group_type=GROUP_UNIVERSAL_DISTRIBUTION, attributes=group_facts(bad_owner, "managedBy"))
        good_owner = keep(self.mail_group("IT Change Notices", members=pick(user_dns, 5),
                                          extra={"managedBy": sec_it, "msExchCoManagedByLink": [user_dns[7]]}))
        record("managed_by_security_group", good_owner, manager=sec_it, attributes=group_facts(good_owner, "managedBy"))

        # send on behalf (publicDelegates on a list)
        on_behalf = keep(self.mail_group("Office of the CEO", members=pick(user_dns, 3),
                                         extra={"publicDelegates": [user_dns[8]]}))
        record("send_on_behalf_list", on_behalf, attributes=group_facts(on_behalf, "publicDelegates"))

        # the room list and its rooms
        room_list = keep(self.mail_group("Amsterdam Meeting Rooms", details=RTD_ROOM_LIST,
                                         members=[r.dn for r in rooms]))
        record("room_list", room_list, rooms=[r.dn for r in rooms], attributes=group_facts(
            room_list, "msExchRecipientTypeDetails", "member"))

        # protected from accidental deletion
        protected = keep(self.mail_group("Board of Directors", members=pick(user_dns, 5)))
        self.protected.append(protected)
        record("protected_from_deletion", protected, object_ace=PROTECT_OBJECT_SDDL, parent_ace=PROTECT_PARENT_SDDL,
               parent=groups_ou)

        # a child group that is not mail-enabled
        plain_alias = self.unique_alias("gs-finance-share")
        plain = keep(NewEntry(self.unique_cn(groups_ou, "GS Finance Share", plain_alias), GROUP_CLASSES, {
            "sAMAccountName": self.unique_sam(plain_alias), "groupType": GROUP_GLOBAL_SECURITY,
            "displayName": "GS Finance Share", "member": pick(user_dns, 4)}))
        with_plain = keep(self.mail_group("Finance Department", members=[*pick(user_dns, 4), plain]))
        record("list_with_non_mail_enabled_child", with_plain, child=plain,
               attributes=group_facts(with_plain, "member"))

        # contacts as members and in restrictions
        partner = keep(self.mail_group("Partner Network", members=[*contact_dns[3:8], *pick(user_dns, 2)],
                                       extra={"msExchRequireAuthToSendTo": False}))
        record("lists_with_contacts", partner, contacts=contact_dns[3:8], attributes=group_facts(partner, "member"))
        record("lists_with_contacts", restricted_accept, contacts=[contact_dns[0]],
               attributes=group_facts(restricted_accept, "authOrig"))

        # addresses in the non-accepted domain
        legacy_secondary = keep(self.mail_group("Legacy Helpdesk", members=pick(user_dns, 3),
                                                secondary=[f"helpdesk-old@{layout.NON_ACCEPTED_DOMAIN}"]))
        legacy_primary = keep(self.mail_group("Old Sales Desk", members=pick(user_dns, 3),
                                              domain=layout.NON_ACCEPTED_DOMAIN))
        for dn, where in ((legacy_secondary, "secondary"), (legacy_primary, "primary")):
            record("non_accepted_domain_lists", dn, where=where, domain=layout.NON_ACCEPTED_DOMAIN,
                   attributes=group_facts(dn, "mail", "proxyAddresses"))

        # a name at the 64-character limit of cn and of Exchange names
        long_list = keep(self.mail_group(LONG_LIST_NAME, members=pick(user_dns, 3), alias="gpvm-steering-emea"))
        record("long_name_list", long_list, length=len(LONG_LIST_NAME),
               attributes=group_facts(long_list, "displayName"))

        # hidden from address lists
        hidden = keep(self.mail_group("Escalations Hidden", members=pick(user_dns, 3),
                                      extra={"msExchHideFromAddressLists": True}))
        record("hidden_list", hidden, attributes=group_facts(hidden, "msExchHideFromAddressLists"))

        # the list a user forwards to (altRecipient)
        forward_target = keep(self.mail_group("Accounts Payable Inbox", members=pick(user_dns, 3)))

        # dynamic distribution lists (hybrid mail flow creates one per migrated list later)
        self.dynamic_lists = [
            {"parent": groups_ou, "name": "All Remote Mailboxes", "alias": "all-remote-mailboxes",
             "recipient_filter": ad.all_of(ad.object_class("user"),
                                           ad.eq("msExchRecipientTypeDetails", RTD_REMOTE_USER_MAILBOX)),
             "search_base": layout.users_ou(self.base), "mail": f"all-remote-mailboxes@{layout.PRIMARY_DOMAIN}"},
            {"parent": groups_ou, "name": "All Partner Contacts", "alias": "all-partner-contacts",
             "recipient_filter": ad.all_of(ad.object_class("contact"),
                                           ad.ends_with("mail", f"@{layout.EXTERNAL_DOMAINS[0]}")),
             "search_base": layout.contacts_ou(self.base), "mail": f"all-partner-contacts@{layout.PRIMARY_DOMAIN}"},
        ]
        for ddl in self.dynamic_lists:
            self.unique_alias(ddl["alias"])
            record("dynamic_distribution_lists", child_dn(ddl["parent"], "CN", ddl["name"]),
                   filter=str(ddl["recipient_filter"]), search_base=ddl["search_base"],
                   attributes={"msExchRecipientTypeDetails": [2048], "mail": [ddl["mail"]]})

        for key, objects in scen.items():
            total = flat_count if key == "distribution_lists_flat" else None
            self.add_scenario(key, _DESCRIPTIONS[key], objects, total)

        # dependency levels: a group is created after every group its links name
        for dn, entry in entries.items():
            deps[dn] = {v for name, values in entry.attributes.items() if name.lower() in _LINK_ATTRIBUTES
                        for v in _as_list(values) if v in entries and v != dn}
        levels: list[list[NewEntry]] = []
        placed: set[str] = set()
        while len(placed) < len(entries):
            ready = [dn for dn in entries if dn not in placed and deps[dn] <= placed]
            if not ready:
                raise SeedError("the seed's group links form a cycle outside the deferred links")
            levels.append([entries[dn] for dn in ready])
            placed.update(ready)
        return {"levels": levels, "forward_target": forward_target}

    # ---- group writeback v2

    def _writeback_groups(self, user_dns: list[str]) -> list[NewEntry]:
        parent = layout.writeback_ou(self.base)
        rng = self.member_rng
        shared_tail = self.object_id()[-12:]
        specs: list[tuple[str, str, str, str | None]] = [
            # (displayName, kind, case, forced last 12 characters of the object id)
            ("Project Phoenix", "m365", "ordinary", None),
            ("Cloud Security Reviewers", "security", "ordinary", None),
            # its cloud group was deleted: the cloud seed leaves it without a twin (a plan lists it apart)
            ("Sales Enablement", "m365", "no_cloud_twin", None),
            ('#1 Sales, EMEA + Partners <Core>; "Q1" \\ R&D=Go', "m365", "dn_escaping", None),
            ("Finance Team", "security", "case_collision", shared_tail),
            ("FINANCE TEAM", "security", "case_collision", shared_tail),
            ("Cloud Only Security Group for the Extended Global Leadership Team and Advisors", "security",
             "long_display_name", None),
        ]
        specs += [(f"Cloud Project {n:03d}", "m365" if n % 2 else "security", "ordinary", None)
                  for n in range(1, self.users // 2_000 + 1)]
        entries: list[NewEntry] = []
        objects: list[ScenarioObject] = []
        for display, kind, case, tail in specs:
            object_id = self.object_id()
            if tail:
                object_id = object_id[:-12] + tail
            cn = f"Group_{object_id}"
            attrs: dict[str, Any] = {
                "sAMAccountName": cn,
                "groupType": GROUP_UNIVERSAL_DISTRIBUTION if kind == "m365" else GROUP_UNIVERSAL_SECURITY,
                "displayName": display,
                "msDS-ExternalDirectoryObjectId": cn,
                "member": rng.sample(user_dns, 3),
            }
            if kind == "m365":
                alias = self.unique_alias(_alias_text(display)[:40] or "group")
                mail = f"{alias}@{layout.PRIMARY_DOMAIN}"
                attrs.update({"mail": mail, "mailNickname": alias,
                              "proxyAddresses": [f"SMTP:{mail}", f"smtp:{alias}@{layout.TENANT_DOMAIN}"]})
            entry = NewEntry(child_dn(parent, "CN", cn), GROUP_CLASSES, attrs)
            entries.append(entry)
            facts = {
                "object_id": object_id, "display_name": display, "kind": kind, "case": case,
                "current_cn": cn, "cloud_display_name_cn": f"{display}_{object_id[-12:]}", "mail": attrs.get("mail"),
                "attributes": {"msDS-ExternalDirectoryObjectId": [cn], "displayName": [display],
                               "groupType": [attrs["groupType"]]},
            }
            objects.append(ScenarioObject(entry.dn, facts))
        self.add_scenario("written_back_groups", _DESCRIPTIONS["written_back_groups"], objects)
        for case, key in (("dn_escaping", "writeback_name_needs_dn_escaping"),
                          ("case_collision", "writeback_names_collide_in_case"),
                          ("long_display_name", "writeback_display_name_over_64")):
            self.add_scenario(key, _DESCRIPTIONS[key], (o for o in objects if o.facts["case"] == case))
        return entries


# Attributes whose values are DNs of other objects (creation order depends on them).
_LINK_ATTRIBUTES = frozenset(a.lower() for a in (
    "member", "managedBy", "authOrig", "unauthOrig", "dLMemSubmitPerms", "dLMemRejectPerms",
    "msExchModeratedByLink", "msExchBypassModerationLink", "msExchCoManagedByLink", "publicDelegates",
    "altRecipient",
))

_DESCRIPTIONS: dict[str, str] = {
    "remote_mailbox_users": "remote mailboxes (RemoteUserMailbox 2147483648, display -2147483642, remote type 4), "
                            "targetAddress @contoso.mail.onmicrosoft.com, SMTP primary, smtp secondaries, X500; "
                            "the sample is well-formed bulk users, the total counts every remote mailbox",
    "mail_only_users_without_proxy_addresses": "users with mail, mailNickname and targetAddress but no "
                                               "proxyAddresses: ProxyCalc derives the cloud addresses from mail",
    "mail_only_users_with_only_x500_proxy": "users whose proxyAddresses holds only the X500 Exchange hybrid "
                                            "wrote back: a change of mail never reaches the cloud",
    "upn_differs_from_primary_smtp": "remote mailboxes whose userPrincipalName is not their primary SMTP address "
                                     "and is not among their proxyAddresses",
    "idfix_character": "IdFix 'character': invalid characters in mailNickname, proxyAddresses, userPrincipalName",
    "idfix_format": "IdFix 'format': malformed mail / smtp proxy address, mailNickname beginning with a period",
    "idfix_topleveldomain": "IdFix 'topleveldomain': non-routable .local UPN suffix and proxy address",
    "idfix_domainpart": "IdFix 'domainpart': invalid domain (empty label, underscore)",
    "idfix_localpart": "IdFix 'localpart': local part beginning with or holding consecutive periods",
    "idfix_duplicate": "IdFix 'duplicate': the same proxy address, mail or mailNickname on two objects",
    "idfix_blank": "IdFix 'blank': required values missing (mailNickname, mail, a contact's targetAddress, a "
                   "mail-enabled group's displayName)",
    "idfix_length": "IdFix 'length': UPN local part over 64, proxy address over 256, sAMAccountName over 20 "
                    "without UPN",
    "idfix_whitespace": "leading/trailing/inner whitespace (IdFix reports it as 'character')",
    "certificate_user_ids_lowercase_x509": "certificate user ids with the lower-case 'x509:' prefix the field notes' "
                                           "sync rule produced (DataValidationFailed in the cloud)",
    "certificate_user_ids_uppercase_x509": "certificate user ids with the correct 'X509:<PN>' prefix",
    "forwarding_to_list": "a remote mailbox whose altRecipient (forwarding) points at a distribution list",
    "remote_room_mailboxes": "remote room mailboxes (RemoteRoomMailbox 8589934592, display -2147481850, "
                             "remote type 36), disabled accounts",
    "mail_contacts": "mail contacts (MailContact 64, display 6) with targetAddress SMTP:<external address>",
    "big_list_filler_contacts": "mail contacts created only to take the big list above 5,000 members",
    "distribution_lists_flat": "universal distribution groups (groupType 8, MailUniversalDistributionGroup 256), "
                               "owner in managedBy, members users and contacts",
    "nested_lists_depth_4": "A contains B contains C contains D (depth 4 through member links)",
    "nesting_cycle": "X contains Y and Y contains X",
    "large_list": f"one list with {BIG_LIST_MEMBERS} members (read it in ranges)",
    "mail_enabled_security_groups": "universal security groups (-2147483640) mail-enabled "
                                    "(MailUniversalSecurityGroup 1024, display 1073741833)",
    "delivery_restrictions": "lists restricted with authOrig/dLMemSubmitPerms (accept) or unauthOrig/"
                             "dLMemRejectPerms (reject), naming users, contacts and groups",
    "moderated_list": "moderation on (msExchEnableModeration), moderators and bypass senders linked",
    "co_managed_list": "managedBy plus co-managers in msExchCoManagedByLink",
    "managed_by_non_security_group": "managedBy names a distribution group that is not security-enabled "
                                     "(not a valid owner in Exchange Online)",
    "managed_by_security_group": "managedBy names a mail-enabled security group (a valid owner)",
    "send_on_behalf_list": "publicDelegates (GrantSendOnBehalfTo) on a list",
    "room_list": "a room list (RoomList 268435456) holding remote room mailboxes",
    "protected_from_deletion": "Deny Everyone Delete+Delete Subtree on the list and Deny Delete Child on its OU",
    "list_with_non_mail_enabled_child": "a list containing a security group that is not mail-enabled",
    "lists_with_contacts": "lists whose members or accepted senders include mail contacts",
    "non_accepted_domain_lists": "lists with a secondary or primary address in legacy.local (not accepted)",
    "long_name_list": "a list whose name (cn, displayName) is 64 characters, the limit",
    "hidden_list": "a list hidden from address lists (msExchHideFromAddressLists)",
    "dynamic_distribution_lists": "msExchDynamicDistributionList objects with an LDAP recipient filter",
    "written_back_groups": "group writeback v2: CN=Group_<objectId> in the writeback OU, "
                           "msDS-ExternalDirectoryObjectId Group_<objectId>, cloud displayName",
    "writeback_name_needs_dn_escaping": "a written-back group whose displayName needs DN escaping "
                                        "(leading #, comma, plus, quotes, <>, ;, backslash, =)",
    "writeback_names_collide_in_case": "two written-back groups whose <displayName>_<last 12 of objectId> differ "
                                       "only in case",
    "writeback_display_name_over_64": "a written-back group whose displayName alone is over 64 characters",
}


def _departments(count: int) -> list[str]:
    count = max(4, count)
    names = []
    for index in range(count):
        name = DEPARTMENTS[index % len(DEPARTMENTS)]
        if index >= len(DEPARTMENTS):
            name += f" {SITES[(index // len(DEPARTMENTS) - 1) % len(SITES)]}"
            if index >= len(DEPARTMENTS) * (len(SITES) + 1):
                name += f" {index}"
        names.append(name)
    return names


def _alias_text(text: str) -> str:
    """An Exchange-style alias: ASCII letters, digits, . - _; accents folded; lower case."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    out = []
    for ch in folded.replace(" ", "-"):
        if ch.isalnum() or ch in ".-_":
            out.append(ch)
    return "".join(out).strip(".-")[:64]


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _pick(entry: NewEntry, *names: str) -> dict[str, list[Any]]:
    return {name: _as_list(entry.attributes[name]) if name in entry.attributes else [] for name in names}
