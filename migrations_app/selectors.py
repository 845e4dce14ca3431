"""Reads of the DL migration area for its pages and command line. Nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q, QuerySet

from portal.connectors import registry
from portal.jobs.models import Job

from . import services as svc
from .choices import DONE_MIGRATION_STATUSES, BackupKind, ListState, MigrationMethod, MigrationStatus
from .inspection import StandIn
from .models import DistributionList, Migration, MigrationBackup, MigrationSettings
from .options import MigrationOptions


def distribution_lists() -> QuerySet[DistributionList]:
    return DistributionList.objects.all()


def inventory_counts() -> dict[str, int]:
    """The inventory's tiles. Lists per state from the state index, and the lists with dependencies from theirs:
    one aggregate with a filter per tile read every list of the inventory on every view."""
    by_state = dict(DistributionList.objects.order_by().values_list("state").annotate(n=Count("pk")))
    return {"total": sum(by_state.values()), "synced": by_state.get(ListState.SYNCED, 0),
            "migrated": by_state.get(ListState.MIGRATED, 0),
            "with_dependencies": DistributionList.objects.filter(dependency_count__gt=0).count()}


def ou_choices() -> list[tuple[str, str]]:
    ous = DistributionList.objects.order_by("ou").values_list("ou", flat=True).distinct()
    return [(ou, ou) for ou in ous]


def last_inventory_job() -> Job | None:
    return Job.objects.filter(kind=svc.KIND_INVENTORY).order_by("-created_at").first()


def lists_by_dn(dns: list[str]) -> list[tuple[str, DistributionList | None]]:
    """Each DN with its inventory row when the inventory has one (so the page can link it)."""
    dns = [dn for dn in dns if dn][:200]
    rows: dict[str, DistributionList] = {}
    if dns:
        query = Q()
        for dn in dns:
            query |= Q(dn__iexact=dn)
        rows = {d.dn.lower(): d for d in DistributionList.objects.filter(query)}
    return [(dn, rows.get(dn.lower())) for dn in dns]


def migrations_for_list(dl: DistributionList) -> QuerySet[Migration]:
    query = Q(distribution_list=dl) | Q(group_guid=dl.guid)
    if dl.mail:
        query |= Q(mail__iexact=dl.mail)
    return Migration.objects.filter(query).select_related("job", "requested_by", "approved_by").distinct()


def migrations_for_table() -> QuerySet[Migration]:
    return Migration.objects.select_related("job", "requested_by", "approved_by")


def latest_preflight_job(mail: str) -> Job | None:
    if not mail:
        return None
    return Job.objects.filter(kind=svc.KIND_PREFLIGHT, target__iexact=mail).order_by("-created_at").first()


def preflight_job(pk: int) -> Job | None:
    return Job.objects.filter(kind=svc.KIND_PREFLIGHT, pk=pk).select_related("user").first()


def open_migration_for(mail: str) -> Migration | None:
    return Migration.objects.filter(mail__iexact=mail).order_by("-created_at").first()


def backup_of(migration: Migration, kind: str) -> MigrationBackup | None:
    if kind not in BackupKind.values:
        return None
    return MigrationBackup.objects.filter(migration=migration, kind=kind).first()


def migration_settings() -> MigrationSettings:
    return MigrationSettings.current()


def checks_by_outcome(report: dict[str, Any]) -> list[tuple[str, str, str, list[dict]]]:
    """(outcome, heading, colour, checks): failures first, then warnings, then passes."""
    groups = [("failure", "Failed", "red"), ("warning", "Warnings", "amber"), ("pass", "Passed", "green")]
    checks = report.get("checks") or []
    return [(key, heading, colour, [c for c in checks if c.get("outcome") == key])
            for key, heading, colour in groups if any(c.get("outcome") == key for c in checks)]


@dataclass(frozen=True)
class PlanStep:
    title: str
    detail: str


def migration_plan(*, report: dict[str, Any], options: dict[str, Any]) -> list[PlanStep]:
    """What the migration of this list will do, in the engine's order, in words for the person confirming."""
    opts = MigrationOptions.from_dict(options)
    if opts.method == MigrationMethod.IN_PLACE:
        return in_place_plan(report=report, options=opts)
    name = report.get("group_name") or report.get("mail") or "the list"
    mail = report.get("mail") or ""
    members = int(report.get("member_count") or 0)
    dl = DistributionList.objects.filter(guid=report["group_guid"]).first() if report.get("group_guid") else None
    alias = (dl.alias if dl and dl.alias else mail.split("@", 1)[0])
    domain = mail.split("@", 1)[1] if "@" in mail else "<domain>"
    non_sync = opts.non_sync_ou or registry.ad_layout().non_sync_ou or "(the configured non-sync OU)"
    routing = report.get("routing_domain") or opts.routing_domain or "the tenant's mail.onmicrosoft.com domain"
    cloud_name = opts.cloud_name(name)
    children = len(dl.child_lists) if dl else 0
    deps = dl.dependency_count if dl else None
    steps = [
        PlanStep("Back up", f"every attribute of {report.get('group_dn') or name}, its {members} member(s) and "
                            "its on-premises dependencies; the cloud list's settings, membership and dependencies. "
                            "The backups are downloadable from the migration page."),
        PlanStep("Create a temporary cloud list", f"with {members} member(s) (bulk, falling back to one by one) and "
                                                  "the cloud list's settings."),
        PlanStep("Move the on-premises group out of the sync scope", f"to {non_sync}."),
        PlanStep("Sync and wait", "start a delta sync and wait (with a timeout) for the cloud twin to be deleted"
                 + (", removing it through Graph" if opts.remove_twin_via_graph else "")
                 + "; on timeout everything is rolled back."),
        PlanStep("Rename and address", f"the temporary list becomes '{cloud_name}' ({mail}) with every on-premises "
                                       "and cloud address, the X500s of both, and "
                                       + (f"{alias}@{report['routing_domain']}" if report.get("routing_domain")
                                          else f"{alias}@<tenant>.mail.onmicrosoft.com")
                                       + "; the primary address is verified."
                 + (f" Group type: {opts.group_type}." if opts.group_type else "")),
        PlanStep("Dependencies", "re-apply cloud settings and dependencies (cloud-only group memberships, managers, "
                                 "delivery restrictions, moderation, send on behalf, forwarding, send as)"
                 + (f"; {deps} on-premises object(s) name it." if deps is not None else ".")),
        PlanStep("Original group", "kept: renamed with '!', Exchange attributes cleared, stamped "
                                   "extensionAttribute1=MigratedByScript and extensionAttribute2="
                                   f"{mail}, moved back to its OU" if opts.keep_original else "deleted on-premises."),
        PlanStep("Routing contact", f"{alias}-MigratedByScript@{domain}, targetAddress at {routing}."),
        PlanStep("Hybrid mail flow", f"mail-enable the contact and create a dynamic distribution list named '{name}' "
                                     f"with {mail} that expands to it, so on-premises senders reach the cloud list."
                 if opts.hybrid_mail_flow else "not enabled; it can be enabled later from the migration page."),
        PlanStep("Finish", "replace on-premises dependencies with the contact, run a final sync and build the report."),
    ]
    if opts.skip_nested_group_check and children:
        steps.insert(-1, PlanStep("Child lists", f"{children} child list(s) stay on-premises and are added as "
                                                 "members of the cloud list at the end."))
    return steps


def in_place_plan(*, report: dict[str, Any], options: MigrationOptions) -> list[PlanStep]:
    """The in-place conversion's steps (inplace.IN_PLACE_STEPS), in words."""
    name = report.get("group_dn") or report.get("group_name") or "the list"
    mail = report.get("mail") or ""
    alias = mail.split("@", 1)[0]
    domain = mail.split("@", 1)[1] if "@" in mail else "<domain>"
    routing = report.get("routing_domain") or options.routing_domain or "the tenant's mail.onmicrosoft.com domain"
    return [
        PlanStep("Back up", f"every attribute of {name}, its {int(report.get('member_count') or 0)} member(s) and "
                            "dependencies; the cloud list's settings, membership and Graph object."),
        PlanStep("Hand the source of authority to the cloud", "PATCH onPremisesSyncBehavior isCloudManaged=true: "
                 "same object id, addresses, members and cloud permissions."),
        PlanStep("Prove it", "change the on-premises description on purpose, run a delta sync and verify: "
                             "isCloudManaged true, onPremisesSyncEnabled cleared, Exchange Online no longer "
                             "directory-synced, the on-premises change not in the cloud, the audit event written. "
                             "Anything else rolls back (isCloudManaged=false and the backup restored)."),
        PlanStep("Route on-premises senders", f"the on-premises group's membership is replaced by the contact "
                 f"{alias}-MigratedByScript@{domain} (targetAddress {alias}@{routing}); the old membership stays "
                 "in the backup."),
        PlanStep("Mark the on-premises copy", "description and extensionAttribute1=SourceOfAuthorityCloud, so "
                                              "nobody edits it there."),
        PlanStep("Report", "the cloud state and membership against the backup. Take back from the migration page."),
    ]


def is_migrated(*, mail: str, exclude: Migration | None = None) -> bool:
    """A migration of this address already ended with the list in the cloud."""
    found = Migration.objects.filter(mail__iexact=mail, status__in=DONE_MIGRATION_STATUSES)
    if exclude is not None:
        found = found.exclude(pk=exclude.pk)
    return found.exists()


def migrated_stand_ins() -> dict[str, StandIn]:
    """What completed migrations left on-premises, each standing for its list now in the cloud: the kept
    original (by objectGUID: renamed '!…', it keeps it) and the routing contact (by DN)."""
    out: dict[str, StandIn] = {}
    for guid, contact, mail, dn, cloud_id in Migration.objects.filter(
            status__in=DONE_MIGRATION_STATUSES).values_list("group_guid", "contact_dn", "mail", "original_dn",
                                                            "cloud_group_id"):
        stand_in = StandIn(mail=mail, original_dn=dn, cloud_object_id=cloud_id or "")
        if guid and dn:
            out[str(guid)] = stand_in
        if contact and dn:
            out[contact.lower()] = stand_in
    return out


def migrations_awaiting_approval(*, user) -> QuerySet[Migration]:
    """The approver's queue: requests someone else made, oldest first (theirs waits longest)."""
    return (Migration.objects.filter(status=MigrationStatus.AWAITING_APPROVAL).exclude(requested_by=user)
            .select_related("requested_by").order_by("created_at"))


def jobs_of_migration(migration: Migration) -> list[Job]:
    """Every job about this migration (the migration itself and what was done to the list after), newest first."""
    return list(Job.objects.filter(params__migration_id=migration.pk).select_related("user").order_by("-created_at"))


def latest_take_back_preview(jobs: list[Job]) -> Job | None:
    """The newest finished take-back preview among a migration's jobs (newest first), shown beside the button."""
    return next((j for j in jobs if j.kind == svc.KIND_TAKE_BACK_PREVIEW and (j.result or {}).get("preview")), None)


def migration_activity(migration: Migration, jobs: list[Job]) -> list[dict[str, Any]]:
    """Jobs and audit events about the list, newest first: what happened to it, by whom, when."""
    from portal.audit.models import AuditEvent

    # An address change renames the migration: its jobs keep the addresses it had.
    mails = {migration.mail.lower(), *(j.target.lower() for j in jobs if j.target)}
    events = AuditEvent.objects.filter(
        Q(target__in=[f"dl:{m}" for m in mails]) | Q(job__in=[j.pk for j in jobs])).order_by("-time")[:200]
    items = [{"time": j.created_at, "kind": "job", "job": j} for j in jobs]
    items += [{"time": e.time, "kind": "event", "event": e} for e in events]
    return sorted(items, key=lambda i: i["time"], reverse=True)


def migrations_for_address(text: str) -> list[Migration]:
    """Migrations of the list that has (or had, before an address change) this address."""
    text = (text or "").strip()
    if "@" not in text:
        return []
    by_job = Job.objects.filter(kind=svc.KIND_MIGRATE, target__iexact=text).values("params__migration_id")
    return list(Migration.objects.filter(Q(mail__iexact=text) | Q(pk__in=by_job)).order_by("-created_at")[:5])


@dataclass(frozen=True)
class NowFact:
    what: str
    state: str  # "ok", "gone", "unknown"
    detail: str


def migration_now(migration: Migration) -> list[NowFact]:
    """What the directories hold for a migration right now (the report is how it was at the end): the
    cloud list, the original group, the routing contact and the hybrid dynamic list. Each read may fail
    on its own; the page says which could not be read rather than failing."""
    from portal.connectors import ad as adc
    from portal.connectors import exchange as exo
    from portal.connectors.registry import NotConfigured, active_directory, exchange_online

    facts: list[NowFact] = []
    try:
        with exchange_online() as exchange:
            try:
                cloud = exchange.get_distribution_group(migration.cloud_group_id or migration.mail)
                facts.append(NowFact("Cloud list", "ok", f"{cloud.name} · {cloud.primary_smtp_address} · "
                                     + ("synced from AD" if cloud.is_dir_synced else "cloud-only")))
            except exo.ObjectNotFound:
                facts.append(NowFact("Cloud list", "gone", f"no list {migration.cloud_group_id or migration.mail}"))
    except (exo.ExchangeError, NotConfigured) as exc:
        facts.append(NowFact("Cloud list", "unknown", f"Exchange Online could not be read: {exc}"))
    try:
        with active_directory() as directory:
            if migration.group_guid:
                try:
                    group = directory.read_by_guid(migration.group_guid, attributes=["extensionAttribute1", "mail"])
                    facts.append(NowFact("Original group", "ok", group.dn + (
                        f" (stamped {group.first('extensionAttribute1')})" if group.first("extensionAttribute1")
                        else "")))
                except adc.NotFound:
                    facts.append(NowFact("Original group", "gone", "deleted on-premises (its backup is kept)"))
            routing = (("Routing contact", migration.contact_dn), ("Hybrid dynamic list", migration.dynamic_list_dn))
            for what, dn in routing:
                if dn:
                    facts.append(NowFact(what, "ok", dn) if directory.exists(dn) else NowFact(what, "gone", dn))
    except (adc.AdError, NotConfigured) as exc:
        facts.append(NowFact("Active Directory", "unknown", f"could not be read: {exc}"))
    return facts
