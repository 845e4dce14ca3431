"""The distribution lists and groups: flat, nested, cyclic, large, restricted, moderated, managed, rooms."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from portal.connectors import ad
from portal.connectors.ad import NewEntry, child_dn
from portal.connectors.ad.security import (
    PROTECT_OBJECT_SDDL,
    PROTECT_PARENT_SDDL,
)
from portal.lab import layout

from .common import _LINK_ATTRIBUTES, DEPARTMENTS, LIST_TOPICS, LONG_LIST_NAME, SITES, _as_list, _pick
from .descriptions import _DESCRIPTIONS
from .manifest import ScenarioObject
from .values import (
    GROUP_CLASSES,
    GROUP_GLOBAL_SECURITY,
    GROUP_UNIVERSAL_DISTRIBUTION,
    GROUP_UNIVERSAL_SECURITY,
    RDT_SECURITY_DISTRIBUTION_GROUP,
    RTD_MAIL_UNIVERSAL_SECURITY_GROUP,
    RTD_REMOTE_USER_MAILBOX,
    RTD_ROOM_LIST,
    SAMPLE_SIZE,
    SeedError,
)


class GroupCases:
    """Mixed into the plan's builder (plan.py), whose naming and recipient helpers it uses."""

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
