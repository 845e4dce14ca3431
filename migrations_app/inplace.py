"""The in-place method: a synced list's source of authority handed to the cloud (``onPremisesSyncBehavior``).

Since 2025 ``PATCH /groups/{id}/onPremisesSyncBehavior {"isCloudManaged": true}`` (Graph v1.0 and beta,
``Group-OnPremisesSyncBehavior.ReadWrite.All``; Connect Sync 2.5.76.0+, Cloud Sync 1.1.1370.0+) makes the
sync client stop applying AD changes to the group: it keeps its objectId, addresses, members and every cloud
permission, and ``false`` hands it back at the next cycle. Its sharp edges decide what this module does:

* not recursive -- child lists are converted first (bottom-up) or stay on-premises with a warning;
* an older sync client undoes it at its next cycle -- the version is a preflight failure, and the verify step
  notices a revert and rolls back;
* AD keeps a stale copy that on-premises senders still expand -- its membership is replaced by a routing
  contact to the cloud list (the old membership is in the backup), and it is marked so nobody edits it there;
* Microsoft's own texts disagree on mail-enabled groups -- the preflight states it in the report.

Here: the recommendation of a method and its reasons (:func:`recommend_method`), the in-place preflight
checks (:func:`assess_preflight`, called by the shared preflight), and the conversion as checkpointed steps
with the recreate method's guarantees (:class:`InPlaceProcess`: backup first, rollback = ``false`` + restore).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from portal.connectors import ad as adc
from portal.connectors import exchange as exo
from portal.connectors import graph as graphc
from portal.connectors import sync as syncc

from . import engine, takeback
from .choices import BackupKind, CheckOutcome, ListState, MigrationMethod, MigrationStatus
from .inspection import ListFacts
from .models import MigrationBackup
from .options import MigrationOptions
from .preflight import Check, PreflightReport

MIN_CONNECT_SYNC = (2, 5, 76, 0)
SOA_PERMISSION = "Group-OnPremisesSyncBehavior.ReadWrite.All"
# The list types Microsoft's conversion covers here: distribution lists and mail-enabled security groups.
IN_PLACE_TYPES = ("MailUniversalDistributionGroup", "MailUniversalSecurityGroup")
CONVERTED_STAMP = "SourceOfAuthorityCloud"
# What the conversion writes on the on-premises copy besides its membership; the take-back restores them.
RESTORED_ATTRIBUTES = ("description", "extensionAttribute1", "extensionAttribute2")
# Directory audit activities Microsoft writes for a conversion and its undo. Its pages spell them two ways:
# "Configure Group Source of Authority" names the conversion "Change Source of Authority from AD to cloud" and
# the undo "Undo changes to Source of Authority from AD DS to cloud" (earlier revisions: "... from AD to cloud");
# "How to audit and monitor Group SOA" (2025-08) and the user SOA pages name the conversion "Change Source of
# Authority from AD DS to cloud". The first spelling of each is the current one (the lab writes it); the
# verification asks Graph for the common prefix (activityDisplayName supports startswith) and accepts either.
AUDIT_CONVERT = "Change Source of Authority from AD DS to cloud"
AUDIT_UNDO = "Undo changes to Source of Authority from AD DS to cloud"
AUDIT_CONVERT_NAMES = (AUDIT_CONVERT, "Change Source of Authority from AD to cloud")
AUDIT_UNDO_NAMES = (AUDIT_UNDO, "Undo changes to Source of Authority from AD to cloud")
AUDIT_CONVERT_PREFIX = "Change Source of Authority from AD"
AUDIT_UNDO_PREFIX = "Undo changes to Source of Authority from AD"


def soa_audit_event(events, *, names: tuple[str, ...], object_id: str) -> str | None:
    """The activity name of the first event among ``events`` that is one of ``names`` (any case) and names
    the object; None when none does."""
    wanted = {n.lower() for n in names}
    for event in events:
        if (event.activity or "").lower() in wanted and any(
                t.id and t.id.lower() == object_id.lower() for t in event.targets):
            return event.activity
    return None
# Checks of the shared preflight that only the recreate method needs (a new list, the non-sync OU ...).
RECREATE_ONLY_CHECKS = frozenset({"not_protected", "cloud_type", "recipients_resolve", "nested_groups",
                                  "group_managers", "accepted_domains", "outbound_connector", "name_length",
                                  "non_sync_ou", "security_group"})
MAIL_ENABLED_NOTE = (
    "Microsoft's texts disagree on mail-enabled groups: 'Configure Group Source of Authority' converts any "
    "synced group, while its Tech Community guidance says groups must not be mail-enabled or tied to Exchange "
    "on-premises. The lab converts distribution lists; convert one list in production and check it in "
    "Exchange Online before a batch.")


def parse_version(text: str | None) -> tuple[int, ...] | None:
    """``2.5.79.0`` as a comparable tuple; None when it is missing or not a build number."""
    if not text:
        return None
    try:
        return tuple(int(part) for part in str(text).strip().split("."))
    except ValueError:
        return None


def client_supports_in_place(version: str | None) -> bool:
    parsed = parse_version(version)
    return parsed is not None and parsed >= MIN_CONNECT_SYNC


# -- the recommendation ---------------------------------------------------------------------------


@dataclass
class MethodFacts:
    """What decides the method for one list, read once by the preflight."""

    sync_version: str | None = None
    recipient_type: str | None = None
    dynamic: bool = False
    cloud_managed: bool | None = None  # None: Graph could not say
    child_lists: list[str] = field(default_factory=list)
    children_on_premises: list[str] = field(default_factory=list)  # child lists not converted yet
    parent_lists: list[str] = field(default_factory=list)
    onprem_dependencies: int = 0  # on-premises objects naming the list (restrictions, managers, parents)
    recreate_artefacts: list[str] = field(default_factory=list)


@dataclass
class Recommendation:
    method: str
    reasons: list[dict[str, str]]  # {"fact", "favours": in_place|recreate|either, "text"}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def recommend_method(facts: MethodFacts) -> Recommendation:
    """The method that suits the list, and every fact that pulled one way or the other."""
    reasons: list[dict[str, str]] = []
    blocked = False

    def reason(fact: str, favours: str, text: str) -> None:
        reasons.append({"fact": fact, "favours": favours, "text": text})

    if client_supports_in_place(facts.sync_version):
        reason("sync_client", "in_place", f"Entra Connect {facts.sync_version} honours the conversion "
                                          "(2.5.76.0 or later).")
    else:
        blocked = True
        reason("sync_client", "recreate",
               f"Entra Connect {facts.sync_version or '(version unknown)'} is older than 2.5.76.0 or did not say: "
               "it would undo an in-place conversion at its next cycle.")
    if facts.dynamic:
        blocked = True
        reason("dynamic", "recreate", "Dynamic membership is not supported by the in-place conversion.")
    if facts.cloud_managed:
        blocked = True
        reason("cloud_managed", "recreate", "Its source of authority is the cloud already (converted earlier, "
                                            "perhaps by another tool): nothing to convert.")
    if facts.recipient_type and facts.recipient_type not in IN_PLACE_TYPES:
        blocked = True
        reason("list_type", "recreate", f"A {facts.recipient_type} is not a type the conversion covers here.")
    elif facts.recipient_type:
        reason("list_type", "in_place", f"A {facts.recipient_type} keeps its object id, addresses and cloud "
                                        "permissions when converted in place.")
    if facts.recreate_artefacts:
        blocked = True
        reason("recreate_artefacts", "recreate", "An earlier recreate run left traces ("
               + ", ".join(facts.recreate_artefacts[:3]) + "): finish or restore it with the same method.")
    if facts.children_on_premises:
        reason("nesting", "recreate", f"{len(facts.children_on_premises)} child list(s) are still on-premises: "
                                      "in place they must be converted first (bottom-up) or stay on-premises.")
    elif facts.child_lists:
        reason("nesting", "in_place", "Every child list is converted already.")
    if facts.parent_lists:
        reason("parents", "in_place", f"It is a member of {len(facts.parent_lists)} on-premises list(s): in place "
                                      "it keeps its object id, so their cloud copies still name it.")
    if facts.onprem_dependencies:
        reason("onprem_senders", "in_place",
               f"{facts.onprem_dependencies} on-premises reference(s) name it: in place nothing is renamed or "
               "rewritten; on-premises senders reach it through the routing contact either way.")
    else:
        reason("onprem_senders", "either", "On-premises senders reach the cloud list through a routing contact "
                                           "with either method.")
    return Recommendation(MigrationMethod.RECREATE if blocked else MigrationMethod.IN_PLACE, reasons)


# -- the in-place preflight -----------------------------------------------------------------------


@dataclass
class InPlaceEnvironment:
    """What the in-place checks read beyond the list's facts (None: could not be read)."""

    group_id: str | None = None
    permission: bool | None = None
    recycle_bin: bool | None = None
    pending_exports: list[str] | None = None
    errors: list[str] = field(default_factory=list)


def read_method_facts(*, facts: ListFacts, c: engine.Connectors) -> tuple[MethodFacts, InPlaceEnvironment]:
    """Everything the recommendation and the in-place checks need; each read failure is kept, never raised."""
    found = facts.matches[0] if len(facts.matches) == 1 else None
    mf = MethodFacts(dynamic=bool(found is not None and found.kind == "dynamic-dl"))
    env = InPlaceEnvironment()
    twin = facts.twin
    group = facts.group
    if twin is not None:
        mf.recipient_type = twin.recipient_type_details
        env.group_id = twin.external_directory_object_id
    try:
        mf.sync_version = c.sync.server_version()
    except syncc.SyncError as exc:
        env.errors.append(f"Entra Connect version: {exc}")
    mf.child_lists = [child.dn for child in facts.child_lists]
    mf.parent_lists = list(facts.dependencies.get("member", []))
    mf.onprem_dependencies = sum(len(v) for v in facts.dependencies.values())
    if group is not None:
        if str(group.first("extensionAttribute1") or "") == engine.STAMP:
            mf.recreate_artefacts.append(f"{engine.STAMP} stamp on {group.dn}")
        if str(group.first("cn") or "").startswith("!"):
            mf.recreate_artefacts.append(f"renamed original {group.dn}")
    graph = None
    try:
        graph = c.graph()
        env.permission = SOA_PERMISSION in graph.granted_roles()
    except Exception as exc:  # noqa: BLE001 - Graph unconfigured or down must not fail a recreate preflight
        graph = None
        env.errors.append(f"Graph token: {exc}")
    if graph is not None and env.permission and env.group_id:
        try:
            mf.cloud_managed = graph.sync_behavior(env.group_id).is_cloud_managed
        except graphc.GraphError as exc:
            env.errors.append(f"onPremisesSyncBehavior: {exc}")
        for child in facts.child_lists:
            try:
                # Resolved with the list's members already; asked again only when that answer lacked it.
                child_id = child.cloud_object_id or c.exchange.get_recipient(
                    child.cloud_identity or child.mail or "").external_directory_object_id
                converted = bool(child_id) and graph.sync_behavior(child_id).is_cloud_managed
            except (exo.ExchangeError, graphc.GraphError):
                converted = False
            if not converted:
                mf.children_on_premises.append(child.dn)
    else:
        mf.children_on_premises = list(mf.child_lists)
    env.recycle_bin = c.directory.recycle_bin_enabled()
    if group is not None:
        try:
            pending = c.sync.pending_exports()
            env.pending_exports = [f"{p.operation} {p.distinguished_name or p.object_id}" for p in pending
                                   if (p.distinguished_name and adc.parse_dn(p.distinguished_name).normalized()
                                       == adc.parse_dn(group.dn).normalized())
                                   or (env.group_id and (p.object_id or "").lower() == env.group_id.lower())]
        except syncc.SyncError as exc:
            env.errors.append(f"pending exports: {exc}")
    return mf, env


def _check(key: str, title: str, outcome: str, detail: str, objects: list[str] | None = None,
           remedy: str = "") -> Check:
    return Check(key, title, outcome, detail, objects or [], remedy)


def check_in_place(*, mf: MethodFacts, env: InPlaceEnvironment, options: MigrationOptions,
                   group_dn: str) -> list[Check]:
    """The checks only the in-place method needs; a failure blocks it and changes nothing."""
    checks: list[Check] = []
    P, W, F = CheckOutcome.PASS, CheckOutcome.WARNING, CheckOutcome.FAILURE
    title = "Sync client honours the conversion (Connect Sync 2.5.76.0+)"
    if client_supports_in_place(mf.sync_version):
        checks.append(_check("sync_client", title, P, f"Entra Connect {mf.sync_version}."))
    else:
        checks.append(_check("sync_client", title, F, f"Entra Connect {mf.sync_version or '(version unknown)'} "
                             "would undo the conversion at its next cycle.", [],
                             "Upgrade Connect Sync to 2.5.76.0 or later (Cloud Sync: 1.1.1370.0), or recreate."))
    title = f"The portal's app holds {SOA_PERMISSION}"
    if env.permission:
        checks.append(_check("soa_permission", title, P, "The permission is in the app's Graph token."))
    else:
        checks.append(_check("soa_permission", title, F, "The app's Graph token does not carry it"
                             + ("" if env.permission is False else " (the token could not be read)") + ".", [],
                             f"Grant the application permission {SOA_PERMISSION} with admin consent."))
    title = "Not cloud-managed already"
    if mf.cloud_managed:
        checks.append(_check("not_cloud_managed", title, F, "Its source of authority is the cloud already "
                             "(converted earlier, perhaps by another tool).", [group_dn],
                             "Manage it in Exchange Online; nothing to convert."))
    elif mf.cloud_managed is None:
        checks.append(_check("not_cloud_managed", title, F, "onPremisesSyncBehavior could not be read.",
                             [group_dn], "Check the Graph permission and connectivity, then run again."))
    else:
        checks.append(_check("not_cloud_managed", title, P, "isCloudManaged is false."))
    title = "A list type the conversion covers"
    if mf.dynamic or (mf.recipient_type and mf.recipient_type not in IN_PLACE_TYPES):
        checks.append(_check("in_place_type", title, F, f"{'Dynamic membership' if mf.dynamic else mf.recipient_type}"
                             " is not supported in place.", [group_dn], "Use the recreate method."))
    else:
        checks.append(_check("in_place_type", title, P, mf.recipient_type or ""))
    title = "No earlier recreate run left traces"
    if mf.recreate_artefacts:
        checks.append(_check("recreate_artefacts", title, F, "; ".join(mf.recreate_artefacts), [group_dn],
                             "Finish or restore the earlier recreate migration first."))
    else:
        checks.append(_check("recreate_artefacts", title, P, "No stamp, no renamed original."))
    title = "Child lists converted first (bottom-up)"
    if mf.children_on_premises and not options.skip_nested_group_check:
        checks.append(_check("in_place_children", title, F, f"{len(mf.children_on_premises)} child list(s) are "
                             "still managed on-premises: the conversion is not recursive.", mf.children_on_premises,
                             "Convert them first, in this order, or choose 'skip nested group check' to leave them "
                             "on-premises."))
    elif mf.children_on_premises:
        checks.append(_check("in_place_children", title, W, f"{len(mf.children_on_premises)} child list(s) stay "
                             "managed on-premises; the cloud list keeps them as members.", mf.children_on_premises))
    else:
        checks.append(_check("in_place_children", title, P, f"{len(mf.child_lists)} child list(s), none left "
                                                             "on-premises."))
    title = "AD Recycle Bin enabled (for a later take-back)"
    if env.recycle_bin:
        checks.append(_check("recycle_bin", title, P, "The forest's Recycle Bin feature is on."))
    else:
        checks.append(_check("recycle_bin", title, W, "The Recycle Bin is off or could not be read: a deleted "
                             "on-premises copy could not be brought back with its SID and links for a take-back.",
                             [], "Enable-ADOptionalFeature 'Recycle Bin Feature' before converting many lists."))
    title = "No pending export for the list"
    if env.pending_exports:
        checks.append(_check("pending_export", title, F, "Entra Connect holds changes for it that a conversion "
                             "would strand.", env.pending_exports, "Let a sync cycle export them, then run again."))
    elif env.pending_exports is None:
        checks.append(_check("pending_export", title, W, "The sync server did not list its pending exports.", [],
                             "Check with csexport.exe that nothing is pending for the group."))
    else:
        checks.append(_check("pending_export", title, P, "Nothing pending."))
    checks.append(_check("mail_enabled_support", "Mail-enabled support per Microsoft's documentation", W,
                         MAIL_ENABLED_NOTE, [group_dn]))
    return checks


def assess_preflight(*, report: PreflightReport, facts: ListFacts, options: MigrationOptions,
                     method_facts: tuple[MethodFacts, InPlaceEnvironment] | None) -> None:
    """Add the method judged and the recommendation to a preflight report; for the in-place method, swap the
    recreate-only checks for the in-place ones. ``method_facts``: :func:`read_method_facts`'s answer."""
    report.method = options.method
    if report.group_dn is None or method_facts is None:
        return
    mf, env = method_facts
    report.recommendation = {**recommend_method(mf).as_dict(), "facts": asdict(mf), "unread": env.errors}
    if options.method != MigrationMethod.IN_PLACE:
        return
    report.checks[:] = [ch for ch in report.checks if ch.key not in RECREATE_ONLY_CHECKS]
    report.checks.extend(check_in_place(mf=mf, env=env, options=options, group_dn=report.group_dn))


# -- the conversion -------------------------------------------------------------------------------

IN_PLACE_STEPS: tuple[str, ...] = (
    "preflight", "backup", "convert", "probe_ad_change", "sync_after_convert", "verify", "onprem_routing",
    "mark_original", "report",
)


VERIFIED_SYNCED = "verified: the list is synced from AD again"
NOT_SYNCED_AGAIN = "the list is not synced from AD again after the cycle; check Entra Connect"


def synced_from_ad_again(graph: Any, group_id: str) -> bool:
    """After a take-back and a sync cycle: Entra ID says the group is synced from AD again."""
    return bool(graph.get_group(group_id).on_premises_sync_enabled)


def check_take_backs(*, group_ids: dict[int, str], sync: Any, graph: Any) -> dict[int, tuple[bool, str]]:
    """The take-backs a batch's lists made, checked once the batch's last sync has run (their rollbacks
    rode on it, unverified): migration id → (synced from AD again, what was found)."""
    if not sync.wait_until_idle(timeout=settings.DL_DELETION_TIMEOUT_SECONDS,
                                poll=min(2.0, settings.DL_DELETION_POLL_SECONDS)):
        return {pk: (False, "the sync cycle did not finish in time; check the list in Entra ID") for pk in group_ids}
    found: dict[int, tuple[bool, str]] = {}
    for pk, gid in group_ids.items():
        try:
            if not gid:
                found[pk] = (False, "its cloud object id is not known; check the list in Entra ID")
            else:
                ok = synced_from_ad_again(graph, gid)
                found[pk] = (True, VERIFIED_SYNCED) if ok else (False, NOT_SYNCED_AGAIN)
        except graphc.GraphError as exc:
            found[pk] = (False, f"could not verify the take-back: {exc}")
    return found


class InPlaceProcess(engine.MigrationProcess):
    """The in-place conversion's steps, run like the recreate method's (checkpoints, fencing, rollback before
    the point of no return, post-create errors after it)."""

    steps = IN_PLACE_STEPS
    point_of_no_return = "onprem_routing"

    @property
    def group_id(self) -> str:
        gid = self.m.cloud_group_id or self.cloud.get("ExternalDirectoryObjectId") or ""
        if not gid:
            raise engine.MigrationError("the cloud list's object id is unknown; nothing can be converted")
        return str(gid)

    @property
    def probe(self) -> str:
        return f"DirOps in-place probe of migration #{self.m.pk}: this AD change must not reach the cloud"

    def step_backup(self) -> None:
        super().step_backup()
        group = self.c.graph().get_group(self.group_id)
        cloud = {**self.cloud, "graph": {"id": group.id, "description": group.description,
                                         "onPremisesSyncEnabled": group.on_premises_sync_enabled,
                                         "proxyAddresses": list(group.proxy_addresses)}}
        with self.runner.fenced():
            MigrationBackup.objects.filter(migration=self.m, kind=BackupKind.CLOUD_GROUP).update(data=cloud)
        self._backups = None

    def step_convert(self) -> None:
        graph = self.c.graph()
        gid = self.group_id
        self.save(cloud_group_id=gid)
        if graph.sync_behavior(gid).is_cloud_managed:
            self.log(f"{self.m.mail} is cloud-managed already (resumed after the conversion).")
            return
        graph.set_sync_behavior(gid, cloud_managed=True)
        self.log(f"Handed the source of authority of {self.m.mail} ({gid}) to the cloud: isCloudManaged true.")

    def step_probe_ad_change(self) -> None:
        """An AD change made on purpose: the verify step proves the sync client no longer applies it."""
        dn = self.current_group_dn() or self.group["dn"]
        self.c.directory.modify(dn, replace={"description": self.probe})
        self.log("Changed the on-premises description on purpose; it must not reach the cloud.")

    def step_sync_after_convert(self) -> None:
        self._start_sync("so the sync client takes the conversion into account")
        if not self.c.sync.wait_until_idle(timeout=settings.DL_DELETION_TIMEOUT_SECONDS,
                                           poll=min(2.0, settings.DL_DELETION_POLL_SECONDS)):
            raise engine.MigrationError("the sync cycle after the conversion did not finish in time")

    def _state(self) -> dict[str, Any]:
        graph = self.c.graph()
        gid = self.group_id
        group = graph.get_group(gid, select=["id", "displayName", "description", "onPremisesSyncEnabled"])
        twin = self.c.exchange.get_distribution_group(gid)
        return {"is_cloud_managed": graph.sync_behavior(gid).is_cloud_managed,
                "on_premises_sync_enabled": group.on_premises_sync_enabled, "description": group.description,
                "exchange_dir_synced": twin.is_dir_synced}

    def _audit_found(self, *, undo: bool = False, since: Any = None, group_id: str | None = None) -> str | None:
        """The activity name of Microsoft's audit event for the conversion (or its ``undo``) of the list since
        ``since`` (default: the migration's creation), or None."""
        prefix, names = (AUDIT_UNDO_PREFIX, AUDIT_UNDO_NAMES) if undo else (AUDIT_CONVERT_PREFIX, AUDIT_CONVERT_NAMES)
        query = graphc.odata_startswith("activityDisplayName", prefix) & graphc.odata_ge(
            "activityDateTime", since or self.m.created_at)
        try:
            events = self.c.graph().directory_audits(filter=query, top=100)
            return soa_audit_event(events, names=names, object_id=group_id or self.group_id)
        except graphc.GraphError as exc:
            self.runner.warning(f"The directory audit log could not be read ({exc}).")
            return None

    def step_verify(self) -> None:
        deadline = time.monotonic() + settings.DL_DELETION_TIMEOUT_SECONDS
        while True:
            state = self._state()
            if not state["is_cloud_managed"] and state["on_premises_sync_enabled"]:
                raise engine.MigrationError(
                    "the sync client reverted the conversion at its cycle (isCloudManaged is false again and the "
                    "list is synced from AD): Entra Connect is probably older than 2.5.76.0")
            if state["description"] == self.probe:
                raise engine.MigrationError("an on-premises change still reached the cloud after the conversion")
            if state["is_cloud_managed"] and state["on_premises_sync_enabled"] is None \
                    and not state["exchange_dir_synced"]:
                break
            if time.monotonic() >= deadline:
                raise engine.MigrationError(f"the cloud did not show the list as cloud-managed in time: {state}")
            self.runner.check_cancel()
            self.sleep(settings.DL_DELETION_POLL_SECONDS)
        audited = self._audit_found()
        if not audited:
            self.runner.warning(f"No '{AUDIT_CONVERT}' event names the list in the directory audit log (yet).")
        self.log("Verified: isCloudManaged true, onPremisesSyncEnabled cleared, Exchange Online no longer "
                 "directory-synced, and the on-premises probe did not reach the cloud"
                 + (f"; audit event '{audited}' found." if audited else "."))

    def step_onprem_routing(self) -> None:
        """On-premises senders expand the stale AD copy: its only member becomes a contact routing to the
        cloud list, so every current cloud member gets their mail once, through Exchange Online."""
        _, _, target = self._contact_address()
        twin = self.c.exchange.get_distribution_group(self.group_id)
        if not any(a.lower() == f"smtp:{target}".lower() for a in twin.email_addresses):
            self.c.exchange.set_distribution_group(
                self.group_id, changes={"EmailAddresses": [*twin.email_addresses, f"smtp:{target}"]})
            self.log(f"Added the routing address {target} to the cloud list.")
        self.step_routing_contact()
        dn = self.current_group_dn() or self.group["dn"]
        self.c.directory.modify(dn, replace={"member": [self.m.contact_dn]})
        kept = len(self.backup(BackupKind.ONPREM_MEMBERS)["members"])
        self.log(f"The on-premises group now routes to the cloud list through {self.m.contact_dn}; its {kept} "
                 "former member(s) are kept in the backup.")

    def step_mark_original(self) -> None:
        dn = self.current_group_dn() or self.group["dn"]
        note = (f"Managed in the cloud since {timezone.now():%Y-%m-%d} (DirOps migration #{self.m.pk}): change it "
                "in Exchange Online, not here.")
        self.c.directory.modify(dn, replace={"description": note, "extensionAttribute1": CONVERTED_STAMP,
                                             "extensionAttribute2": self.m.mail})
        self.log(f"Marked the on-premises copy {dn} so nobody edits it there.")

    def step_report(self) -> None:
        state = self._state()
        members = [(r.primary_smtp_address or "").lower()
                   for r in self.c.exchange.iter_distribution_group_members(self.group_id)]
        before = [(r.get("primary_smtp_address") or "").lower() for r in self.backup(BackupKind.CLOUD_MEMBERS)]
        missing = sorted(set(before) - set(members))
        if missing:
            self.post_create_error("report", f"{len(missing)} member(s) missing from the cloud list", objects=missing)
        report = {
            "method": MigrationMethod.IN_PLACE, "group_id": self.group_id, **state,
            "members": {"before": len(before), "now": len(members), "missing": missing[:100]},
            "audit_event": self._audit_found(),
            "contact_dn": self.m.contact_dn, "original": {"dn": self.current_group_dn() or self.group["dn"],
                                                          "kept": True, "dn_before": self.group["dn"]},
            "post_create_errors": self.post_create_errors,
        }
        self.save(report=report)
        self.log(f"Report: the list is cloud-managed with {len(members)} member(s) (before: {len(before)}).")

    # -- take back (the rollback, and the take-back job after success) ------------------------------
    def _restored_attributes(self) -> dict[str, list[Any] | None]:
        """The attributes the take-back puts back on the on-premises copy (the conversion's marks undone)."""
        return {name: (self.group_attr(name) or None) for name in RESTORED_ATTRIBUTES}

    def take_back_preview(self) -> dict[str, Any]:
        """What the take-back will overwrite, read before anything changes: per attribute, the cloud's value at
        the conversion (backup), now (Exchange Online and Graph) and AD's value after the restore; and the
        cloud membership now against the backup (AD's membership from the backup replaces it)."""
        gid = self.group_id
        group = self.c.graph().get_group(gid, select=["id", "description"])
        twin = self.c.exchange.get_distribution_group(gid)
        cloud_now = takeback.cloud_document(exchange=twin.raw, graph={"description": group.description})
        backup = self.cloud
        at_conversion = takeback.cloud_document(exchange=backup, graph=backup.get("graph"))
        dn = self.current_group_dn()
        ad_now = dict(self.c.directory.read(dn, attributes=list(takeback.AD_ATTRIBUTES)).attributes) if dn \
            else dict(self.group["attributes"])
        ad_after = {**ad_now, **{k: (v or []) for k, v in self._restored_attributes().items()}}
        changes = takeback.compare_for_take_back(at_conversion=at_conversion, cloud_now=cloud_now,
                                                 ad_attributes=ad_after)
        before = {(r.get("primary_smtp_address") or "").lower() for r in self.backup(BackupKind.CLOUD_MEMBERS)}
        now = {(r.primary_smtp_address or "").lower() for r in self.c.exchange.iter_distribution_group_members(gid)}
        return {"attributes": [c.as_dict() for c in changes], "lines": [c.describe() for c in changes],
                "members": {"added": sorted(now - before), "removed": sorted(before - now)}}

    def take_back(self) -> tuple[list[str], list[str]]:
        """``isCloudManaged`` false, the on-premises copy restored from the backup (membership, description,
        stamps), the routing contact removed, then a cycle re-applies AD's values. Returns (undone, problems)."""
        undone: list[str] = []
        problems: list[str] = []
        gid = self.m.cloud_group_id or self.cloud.get("ExternalDirectoryObjectId")
        handed_back_at = None
        if gid:
            try:
                graph = self.c.graph()
                if graph.sync_behavior(gid).is_cloud_managed:
                    handed_back_at = timezone.now() - timedelta(seconds=5)  # the audit log's clock is not ours
                    graph.set_sync_behavior(gid, cloud_managed=False)
                    undone.append("handed the source of authority back to AD (isCloudManaged false)")
            except graphc.GraphError as exc:
                problems.append(f"hand the source of authority back: {exc}")
        dn = self.current_group_dn()
        if dn:
            members = [m["dn"] for m in self.backup(BackupKind.ONPREM_MEMBERS)["members"]]
            restore = self._restored_attributes()
            try:
                self.c.directory.modify(dn, replace={**restore, "member": members or None})
                undone.append(f"restored the on-premises membership ({len(members)}) and description")
            except adc.AdError as exc:
                problems.append(f"restore the on-premises group: {exc}")
        if self.m.contact_dn:
            try:
                self.c.directory.delete(self.m.contact_dn)
                undone.append(f"removed the routing contact {self.m.contact_dn}")
            except adc.NotFound:
                pass
            except adc.AdError as exc:
                problems.append(f"remove the routing contact: {exc}")
        if undone and self.sync_gate is not None:
            # In a batch a rollback never parks half-way for the wave's sync: it rides on it, and the batch's run
            # job checks the list after the batch's last sync (check_take_backs).
            undone.append(self.sync_after_roll_back("so AD's values are applied again"))
        elif undone:
            try:
                self._start_sync("so AD's values are applied again")
                self.c.sync.wait_until_idle(timeout=settings.DL_DELETION_TIMEOUT_SECONDS,
                                            poll=min(2.0, settings.DL_DELETION_POLL_SECONDS))
                if gid and synced_from_ad_again(self.c.graph(), str(gid)):
                    undone.append(VERIFIED_SYNCED)
                elif gid:
                    problems.append(NOT_SYNCED_AGAIN)
            except (syncc.SyncError, graphc.GraphError) as exc:
                problems.append(f"verify the take-back: {exc}")
        if handed_back_at is not None:
            # Microsoft's record of the undo; its absence is a warning: the audit log may lag behind the change.
            audited = self._audit_found(undo=True, since=handed_back_at, group_id=str(gid))
            if audited:
                undone.append(f"audit event '{audited}' found")
            else:
                self.runner.warning(f"No '{AUDIT_UNDO}' event names the list in the directory audit log (yet).")
        return undone, problems

    def roll_back(self, *, reason: str, cancelled: bool = False) -> None:
        self.runner.error(f"Rolling back: {reason}")
        if self.m.group_guid is None or not MigrationBackup.objects.filter(migration=self.m).exists():
            self.runner.info("Nothing had been changed yet; nothing to undo.")
            self.save(status=MigrationStatus.CANCELLED if cancelled else MigrationStatus.FAILED,
                      finished_at=timezone.now())
            self.runner.summary = ("Cancelled before anything was changed." if cancelled
                                   else f"Failed before anything was changed: {reason}")
            return
        undone, problems = self.take_back()
        for line in undone:
            self.runner.warning(f"Undone: {line}.")
        for line in problems:
            self.runner.error(f"Could not undo: {line}. Do it by hand.")
        if problems:
            status = MigrationStatus.FAILED
            self.runner.summary = f"Failed, and the roll back was incomplete: {'; '.join(problems)}."
        elif cancelled:
            status = MigrationStatus.CANCELLED
            self.runner.summary = f"Cancelled and rolled back: {'; '.join(undone) or 'nothing to undo'}."
        else:
            status = MigrationStatus.ROLLED_BACK if undone else MigrationStatus.FAILED
            self.runner.summary = f"Rolled back: {'; '.join(undone)}. Cause: {reason}"
        self.save(status=status, finished_at=timezone.now())

    def log_take_back_preview(self) -> dict[str, Any]:
        """:meth:`take_back_preview`, each attribute and the membership change as a warning in the job's log."""
        preview = self.take_back_preview()
        for line, change in zip(preview["lines"], preview["attributes"], strict=True):
            self.runner.warning(line, data=change)
        if not preview["lines"]:
            self.log("No attribute differs between the cloud and AD: the take-back overwrites no attribute.")
        added, removed = preview["members"]["added"], preview["members"]["removed"]
        if added or removed:
            self.runner.warning(f"The cloud changed the membership since the conversion ({len(added)} added, "
                                f"{len(removed)} removed): AD's membership from the backup overwrites it.",
                                data={"added": added[:50], "removed": removed[:50]})
        return preview

    def run_take_back(self) -> dict[str, Any]:
        """Take back a converted list (the 'Take back' job): what the cloud changed since is in the log."""
        self.runner.forbid_cancel("a take-back is not stopped half-way")
        preview = self.log_take_back_preview()
        undone, problems = self.take_back()
        for line in undone:
            self.log(f"Done: {line}.")
        if problems:
            raise engine.MigrationError("; ".join(problems))
        self.save(status=MigrationStatus.RESTORED, finished_at=timezone.now())
        engine.mark_inventory(self.m, state=ListState.SYNCED)
        self.runner.summary = f"Took {self.m.mail} back: it is managed in AD again."
        return {"migration": self.m.pk, "undone": undone,
                "overwritten": {"attributes": preview["attributes"][:50],
                                "members": {k: v[:50] for k, v in preview["members"].items()}}}


def process_for(migration: Any) -> type[engine.MigrationProcess]:
    """The process class of a migration's method. The options (what an approval pins) decide; ``method`` mirrors
    them for listing and filtering, and a migration created without it still runs the method it was planned for."""
    method = (migration.options or {}).get("method") or migration.method
    return InPlaceProcess if method == MigrationMethod.IN_PLACE else engine.MigrationProcess


__all__ = ["AUDIT_CONVERT_NAMES", "AUDIT_UNDO_NAMES", "IN_PLACE_STEPS", "InPlaceProcess", "MethodFacts",
           "Recommendation", "assess_preflight", "check_in_place", "client_supports_in_place", "parse_version",
           "process_for", "recommend_method", "soa_audit_event"]
