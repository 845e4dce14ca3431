"""The preflight of a DL migration: judges the facts :mod:`.inspection` read. Changes nothing.

Each check ends as pass, warning or failure, names the objects involved and says what to do. One
failure blocks the migration; warnings are shown and the migration may go on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from portal.approvals import plan_hash
from portal.connectors import ad as adc

from .choices import CheckOutcome
from .inspection import ROOM_LIST_TYPE, SECURITY_ENABLED, ListFacts, group_type_of, smtp_of
from .options import EXCHANGE_NAME_LIMIT, MigrationOptions

CLOUD_LIST_TYPES = ("MailUniversalDistributionGroup", "MailUniversalSecurityGroup", "RoomList")
MAX_LISTED = 25


@dataclass
class Check:
    key: str
    title: str
    outcome: str
    detail: str
    objects: list[str] = field(default_factory=list)
    remedy: str = ""

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["objects_total"] = len(self.objects)
        data["objects"] = self.objects[:MAX_LISTED]
        return data


@dataclass
class PreflightReport:
    mail: str
    checks: list[Check]
    group_dn: str | None = None
    group_guid: str | None = None
    group_name: str | None = None
    member_count: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    routing_domain: str = ""
    recommendation: dict[str, Any] = field(default_factory=dict)  # the method that suits the list, and why
    method: str = ""  # the method it was judged (and planned) for

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.outcome == CheckOutcome.FAILURE]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.outcome == CheckOutcome.WARNING]

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        if self.failures:
            return (f"{len(self.failures)} check(s) failed: "
                    + "; ".join(c.title for c in self.failures[:3]) + ". Nothing was changed.")
        if self.warnings:
            return f"Ready to migrate, with {len(self.warnings)} warning(s) to read first."
        return f"Ready to migrate: all {len(self.checks)} checks passed."

    def as_dict(self) -> dict[str, Any]:
        return {"mail": self.mail, "ok": self.ok, "summary": self.summary(), "group_dn": self.group_dn,
                "group_guid": self.group_guid, "group_name": self.group_name, "member_count": self.member_count,
                "failures": len(self.failures), "warnings": len(self.warnings), "calls": self.calls,
                "checks": [c.as_dict() for c in self.checks], "plan": self.plan, "routing_domain": self.routing_domain,
                "recommendation": self.recommendation, "method": self.method,
                "plan_hash": plan_hash(self.plan) if self.plan else ""}


# -- the plan an approval pins -------------------------------------------------------------------


def plan_of(facts: ListFacts, options: MigrationOptions) -> dict[str, Any]:
    """What a migration of this list will do, in the terms that decide it: which object, which members,
    who it names, who names it, with which options. Its hash is what an approval signs."""
    group = facts.group
    if group is None:
        return {}
    return {
        "group_guid": str(group.guid) if group.guid else None,
        "group_dn": group.dn,
        "mail": facts.mail.lower(),
        "addresses": sorted(a.lower() for a in facts.addresses),
        # A migrated child's kept original and routing contact count as the child under its old DN: a
        # parent's plan does not change when its children are migrated first.
        "members": sorted({m.plan_key for m in facts.members}),
        "links": {attr: sorted({o.plan_key for o in objs}) for attr, objs in sorted(facts.links.items()) if objs},
        "dependencies": {attr: sorted(d.lower() for d in dns) for attr, dns in sorted(facts.dependencies.items())
                         if dns},
        "cloud_twin": (facts.twin.external_directory_object_id or facts.twin.guid) if facts.twin else None,
        "options": options.to_dict(),
    }


def plan_differences(approved: dict[str, Any], now: dict[str, Any], *, limit: int = 10) -> list[str]:
    """Sentences naming what changed between the approved plan and today's, for the refusal."""
    out: list[str] = []

    def compare(path: str, old: Any, new: Any) -> None:
        if old == new:
            return
        if isinstance(old, dict) and isinstance(new, dict):
            for key in sorted(set(old) | set(new)):
                compare(f"{path}.{key}" if path else key, old.get(key), new.get(key))
        elif isinstance(old, list) and isinstance(new, list):
            added, removed = sorted(set(new) - set(old)), sorted(set(old) - set(new))
            if added:
                out.append(f"{path}: {len(added)} added ({', '.join(map(str, added[:limit]))})")
            if removed:
                out.append(f"{path}: {len(removed)} removed ({', '.join(map(str, removed[:limit]))})")
        else:
            out.append(f"{path}: {old!r} → {new!r}")

    compare("", approved, now)
    return out


def _pass(key: str, title: str, detail: str) -> Check:
    return Check(key, title, CheckOutcome.PASS, detail)


def check_preflight(*, facts: ListFacts, options: MigrationOptions, non_sync_ou: str,
                    non_sync_ou_exists: bool, non_sync_ou_in_scope: bool | None, already_migrated: bool,
                    protected: bool | None) -> PreflightReport:
    """Judge one list. ``non_sync_ou_in_scope`` is the sync server's answer (None: it could not say)."""
    report = PreflightReport(mail=facts.mail, checks=[], calls=dict(facts.calls))
    checks = report.checks

    # -- found exactly once, a mail-enabled group
    if not facts.matches:
        checks.append(Check("found_once", "Found exactly once by address", CheckOutcome.FAILURE,
                            f"No object in Active Directory has the address {facts.mail}.",
                            remedy="Check the spelling, or search the Directory page by name."))
        return report
    if len(facts.matches) > 1:
        checks.append(Check("found_once", "Found exactly once by address", CheckOutcome.FAILURE,
                            f"{len(facts.matches)} objects carry the address {facts.mail}.",
                            [m.dn for m in facts.matches],
                            "Remove the duplicate address (IdFix reports it as 'duplicate') and run again."))
        return report
    found = facts.matches[0]
    if found.kind == "dynamic-dl" or already_migrated:
        checks.append(Check("not_migrated", "Not migrated already", CheckOutcome.FAILURE,
                            f"{facts.mail} already belongs to a migrated list"
                            + (" (the on-premises dynamic list that routes mail to it)." if found.kind == "dynamic-dl"
                               else "."), [found.dn],
                            "Manage it in Exchange Online; change its address with 'Change address'."))
        return report
    if found.kind != "group" or facts.group is None:
        checks.append(Check("mail_enabled_group", "A mail-enabled group", CheckOutcome.FAILURE,
                            f"{facts.mail} belongs to a {found.kind}, not a group.", [found.dn],
                            "Only distribution lists and mail-enabled security groups can be migrated."))
        return report
    group = facts.group
    report.group_dn, report.group_name = group.dn, str(group.first("cn") or group.dn)
    report.group_guid = str(group.guid) if group.guid else None
    report.member_count = len(facts.members)
    report.plan = plan_of(facts, options)
    checks.append(_pass("found_once", "Found exactly once by address", f"{facts.mail} is {group.dn}."))
    checks.append(_pass("mail_enabled_group", "A mail-enabled group",
                        "Security-enabled" if group_type_of(group) & SECURITY_ENABLED else "Distribution group"))

    # -- protected from accidental deletion
    if protected:
        checks.append(Check("not_protected", "Not protected from accidental deletion", CheckOutcome.FAILURE,
                            "The group denies Everyone Delete: the migration could not remove or rename it.",
                            [group.dn], "Clear 'Protect object from accidental deletion' on the group (ADUC, "
                                        "Object tab), or run without it if the group is to be kept."))
    elif protected is None:
        checks.append(Check("not_protected", "Not protected from accidental deletion", CheckOutcome.WARNING,
                            "The group's security descriptor could not be read.", [group.dn],
                            "Give the portal's account read access to nTSecurityDescriptor."))
    else:
        checks.append(_pass("not_protected", "Not protected from accidental deletion", "No deny-delete entry."))

    # -- synced, and of a type Exchange Online can hold as a cloud list
    twin = facts.twin
    if twin is None and facts.twin_matches:
        checks.append(Check("synced", "Synced to Exchange Online", CheckOutcome.FAILURE,
                            f"Several Exchange Online recipients answer to {facts.mail}: the portal will not guess "
                            "which one is the list's twin.", facts.twin_matches,
                            "Remove the duplicate address from all but one of them in Exchange Online (or on the "
                            "on-premises object that syncs it), then run the preflight again."))
    elif twin is None:
        checks.append(Check("synced", "Synced to Exchange Online", CheckOutcome.FAILURE,
                            f"Exchange Online has no list {facts.mail}: it is not synced (yet).", [group.dn],
                            "Check that the group is in a synced OU and that the last sync had no export error."))
    elif not twin.is_dir_synced:
        checks.append(Check("synced", "Synced to Exchange Online", CheckOutcome.FAILURE,
                            f"{facts.mail} in Exchange Online is cloud-only already: it was migrated.", [group.dn],
                            "Nothing to migrate; manage the list in Exchange Online."))
    else:
        checks.append(_pass("synced", "Synced to Exchange Online",
                            f"Cloud twin {twin.primary_smtp_address} (dir-synced, {twin.recipient_type_details})."))
        if twin.recipient_type_details not in CLOUD_LIST_TYPES:
            checks.append(Check("cloud_type", "Cloud type can be recreated", CheckOutcome.FAILURE,
                                f"The cloud twin is a {twin.recipient_type_details}.", [group.dn],
                                "Only distribution lists, mail-enabled security groups and room lists migrate."))
        else:
            checks.append(_pass("cloud_type", "Cloud type can be recreated", twin.recipient_type_details or ""))

    # -- every linked recipient is known in the cloud
    unresolved = [m for m in facts.members if not m.cloud_identity and not (m.is_group and m.mail_enabled
                                                                            and options.skip_nested_group_check)]
    for named in facts.links.values():
        unresolved += [n for n in named if not n.cloud_identity]
    if unresolved:
        checks.append(Check("recipients_resolve", "Every member and linked recipient is in the cloud",
                            CheckOutcome.FAILURE,
                            f"{len(unresolved)} object(s) named by the list have no cloud recipient "
                            "(not mail-enabled, not synced, deleted, or matched by several cloud recipients).",
                            [f"{u.dn} ({u.kind}{', no mail' if not u.mail else ''})" for u in unresolved],
                            "Mail-enable and sync them, or remove them from the list, then run the preflight again."))
    else:
        total = len(facts.members) + sum(len(v) for v in facts.links.values())
        checks.append(_pass("recipients_resolve", "Every member and linked recipient is in the cloud",
                            f"All {total} found in Exchange Online."))

    # -- nested lists
    children = facts.child_lists
    if children and not options.skip_nested_group_check:
        checks.append(Check("nested_groups", "Child lists migrated first", CheckOutcome.FAILURE,
                            f"{len(children)} mail-enabled child group(s) are still on-premises.",
                            [c.dn for c in children],
                            "Migrate the child lists first, or choose 'skip nested group check' to keep them "
                            "on-premises and add them to the cloud list at the end."))
    elif children:
        checks.append(Check("nested_groups", "Child lists migrated first", CheckOutcome.WARNING,
                            f"{len(children)} child list(s) stay on-premises and are added to the cloud list "
                            "at the end (skip nested group check).", [c.dn for c in children],
                            "Use hybrid mail flow so on-premises senders still reach the children."))
    else:
        checks.append(_pass("nested_groups", "Child lists migrated first", "No mail-enabled child group."))

    # -- managers that are groups must be security-enabled
    bad_managers = [m for attr in ("managedBy", "msExchCoManagedByLink") for m in facts.links.get(attr, [])
                    if m.is_group and not m.security_enabled]
    if bad_managers:
        checks.append(Check("group_managers", "Group managers are security groups", CheckOutcome.FAILURE,
                            "Exchange Online accepts a group as manager only when it is security-enabled.",
                            [m.dn for m in bad_managers], "Make the group a mail-enabled security group, or name "
                                                          "its members as managers instead."))
    else:
        checks.append(_pass("group_managers", "Group managers are security groups",
                            "No distribution group manages it."))

    # -- every SMTP domain accepted
    accepted = {(d.domain_name or "").lower() for d in facts.accepted_domains}
    foreign = sorted({a.split("@", 1)[1] for a in smtp_of(facts.addresses) if a.split("@", 1)[1] not in accepted})
    if foreign:
        checks.append(Check("accepted_domains", "Every address domain accepted in Exchange Online",
                            CheckOutcome.FAILURE, f"Not accepted: {', '.join(foreign)}.",
                            [a for a in smtp_of(facts.addresses) if a.split("@", 1)[1] in foreign],
                            "Add the domain to Exchange Online, or remove those addresses on-premises first."))
    else:
        checks.append(_pass("accepted_domains", "Every address domain accepted in Exchange Online",
                            f"{len(smtp_of(facts.addresses))} address(es), all in accepted domains."))

    checks.append(_routing_domain_check(facts, options))
    report.routing_domain = routing_domain_of(facts, options)

    # -- centralized mail flow
    central = [c for c in facts.outbound_connectors if c.enabled and (c.connector_type or "").lower() == "onpremises"
               and "*" in c.recipient_domains and not c.is_transport_rule_scoped]
    if central:
        outcome = CheckOutcome.WARNING if options.allow_centralized_mail_flow else CheckOutcome.FAILURE
        checks.append(Check("outbound_connector", "No outbound connector sends all mail on-premises", outcome,
                            "Outbound connector(s) route every recipient domain through on-premises: mail the "
                            "cloud list expands would loop back.", [c.name or "" for c in central],
                            "Scope the connector, or confirm the override if on-premises relays back correctly."))
    else:
        checks.append(_pass("outbound_connector", "No outbound connector sends all mail on-premises",
                            f"{len(facts.outbound_connectors)} connector(s) checked."))

    # -- name length
    name = str(group.first("cn") or "")
    cloud_name = options.cloud_name(name)
    if len(cloud_name) > EXCHANGE_NAME_LIMIT:
        checks.append(Check("name_length", "Name with prefix and suffix fits 64 characters", CheckOutcome.FAILURE,
                            f"'{cloud_name}' has {len(cloud_name)} characters.", [group.dn],
                            "Shorten the prefix or suffix."))
    else:
        checks.append(_pass("name_length", "Name with prefix and suffix fits 64 characters",
                            f"'{cloud_name}' ({len(cloud_name)} characters)."))

    # -- the non-sync OU
    if not non_sync_ou_exists:
        checks.append(Check("non_sync_ou", "The non-sync OU exists and is out of the sync scope",
                            CheckOutcome.FAILURE, f"The OU {non_sync_ou or '(none configured)'} does not exist.",
                            [non_sync_ou] if non_sync_ou else [], "Create it, or set AD_NON_SYNC_OU."))
    elif non_sync_ou_in_scope:
        checks.append(Check("non_sync_ou", "The non-sync OU exists and is out of the sync scope",
                            CheckOutcome.FAILURE, "Entra Connect synchronises this OU: moving the group there would "
                                                  "not remove its cloud twin.", [non_sync_ou],
                            "Exclude the OU in Entra Connect's OU filtering, or choose another OU."))
    elif non_sync_ou_in_scope is None:
        checks.append(Check("non_sync_ou", "The non-sync OU exists and is out of the sync scope",
                            CheckOutcome.WARNING, "The sync server reports no OU filtering; the configured sync OUs "
                                                  "were used instead.", [non_sync_ou],
                            "Check Entra Connect's OU filtering by hand."))
    else:
        checks.append(_pass("non_sync_ou", "The non-sync OU exists and is out of the sync scope",
                            f"{non_sync_ou} (the sync server's OU filtering excludes it)."))

    if group_type_of(group) & SECURITY_ENABLED and not options.group_type:
        checks.append(Check("security_group", "Security group permissions", CheckOutcome.WARNING,
                            "A mail-enabled security group may grant access to on-premises resources; the kept "
                            "original keeps its SID and membership, the cloud list grants nothing on-premises.",
                            [group.dn], "Check where the group is used for permissions before migrating."))
    if str(group.first("msExchRecipientTypeDetails") or "") == str(ROOM_LIST_TYPE):
        checks.append(_pass("room_list", "Room list", "It is recreated as a room list."))
    return report


def routing_domain_of(facts: ListFacts, options: MigrationOptions) -> str:
    """The domain the routing contact and the cloud list's routing address use: the chosen one, the tenant's
    mail.onmicrosoft.com domain, or (without the hybrid wizard's domain) the one it would have added."""
    expected = f"{facts.tenant_domain.split('.', 1)[0]}.mail.onmicrosoft.com" if facts.tenant_domain else ""
    return (options.routing_domain or facts.routing_domain or expected).lower()


def _routing_domain_check(facts: ListFacts, options: MigrationOptions) -> Check:
    """The routing domain gives the cloud list its alias@<tenant>.mail.onmicrosoft.com address and the routing
    contact (always created) its targetAddress: an address in a domain Exchange Online does not accept fails
    half-way through the migration, or leaves on-premises senders a contact that routes nowhere."""
    title = "Routing domain accepted in Exchange Online"
    accepted = sorted((d.domain_name or "").lower() for d in facts.accepted_domains if d.domain_name)
    routing = routing_domain_of(facts, options)
    if routing and routing in accepted:
        return _pass("routing_domain", title, f"{routing} is accepted: the cloud list and the routing contact use it.")
    routable = [d for d in accepted if d.endswith(".mail.onmicrosoft.com")]
    detail = (f"{routing} is not an accepted domain in Exchange Online" if routing
              else "No routing domain: Exchange Online reports no initial or mail.onmicrosoft.com domain")
    return Check("routing_domain", title, CheckOutcome.FAILURE,
                 f"{detail} (accepted: {', '.join(accepted) or 'none'}). The routing contact's target address "
                 "and the cloud list's routing address need one.", [routing] if routing else [],
                 f"Add {routing or '<tenant>.mail.onmicrosoft.com'} as an accepted domain in Exchange Online (the "
                 "Hybrid Configuration Wizard adds <tenant>.mail.onmicrosoft.com), or choose "
                 + (f"the routing domain {routable[0]}." if routable else "a routing domain the tenant accepts."))


def dn_exists(directory: adc.ActiveDirectory, dn: str) -> bool:
    try:
        return bool(dn) and directory.exists(dn)
    except adc.InvalidDn:
        return False
