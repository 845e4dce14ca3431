"""The plan: every object, link and manifest entry the seed writes, computed from the parameters alone."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from portal.connectors import ad
from portal.connectors.ad import NewEntry
from portal.lab import layout

from .common import FIRST_NAMES, LAST_NAMES, _alias_text, _departments, _Person, _pick
from .descriptions import _DESCRIPTIONS
from .groups import GroupCases
from .idfix import IdFixCases
from .manifest import Manifest, Scenario, ScenarioObject
from .values import (
    BIG_LIST_MEMBERS,
    CERTIFICATE_USER_IDS_ATTRIBUTE,
    CONTACT_CLASSES,
    GROUP_CLASSES,
    GROUP_UNIVERSAL_DISTRIBUTION,
    MARKER_TAG,
    MAX_USERS,
    MIN_USERS,
    RDT_DISTRIBUTION_GROUP,
    RDT_REMOTE_MAIL_USER,
    RDT_SYNCED_CONFERENCE_ROOM,
    RDT_SYNCED_MAILBOX_USER,
    REMOTE_MIGRATED,
    REMOTE_ROOM_MIGRATED,
    RTD_MAIL_CONTACT,
    RTD_MAIL_UNIVERSAL_DISTRIBUTION_GROUP,
    RTD_REMOTE_ROOM_MAILBOX,
    RTD_REMOTE_USER_MAILBOX,
    SAMPLE_SIZE,
    SEED_VERSION,
    UAC_DISABLED,
    UAC_ENABLED_NO_PASSWORD,
    USER_CLASSES,
    SeedError,
)
from .writeback import WritebackGroupCases

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



class _Builder(IdFixCases, GroupCases, WritebackGroupCases):
    """Computes the plan: every object, link and manifest entry, from the parameters alone."""

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
        alias = self._free_alias(base)
        self.used_aliases[base] = self.used_aliases.get(base, 0) + 1
        if alias != base:
            self.used_aliases[alias] = 1
        return alias

    def _free_alias(self, base: str) -> str:
        """The alias unique_alias gives next for ``base``: itself the first time, then base2, base3, ..."""
        count = self.used_aliases.get(base, 0)
        if count == 0:
            return base
        candidate = f"{base}{count + 1}"
        while candidate in self.used_aliases:
            count += 1
            candidate = f"{base}{count + 1}"
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

    def _peek_alias(self, first: str, last: str) -> str:
        """The alias person(first, last) will get next (to build values that include it)."""
        return self._free_alias(_alias_text(f"{first}.{last}"))
