"""What every step and every caller of the engine shares: the steps, the connectors, the preflight, the
delta sync, the backup documents."""

from __future__ import annotations

import base64
import dataclasses
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from portal.connectors import ad as adc
from portal.connectors import exchange as exo
from portal.connectors import registry
from portal.connectors import sync as syncc
from portal.connectors.ad.security import is_protected_from_deletion
from portal.jobs.runner import JobRunner

from .. import selectors
from ..choices import BackupKind, ListState
from ..inspection import ListFacts, ObjectFacts, inspect_list
from ..models import DistributionList, Migration, MigrationBackup
from ..options import MigrationOptions
from ..preflight import PreflightReport, check_preflight, dn_exists

STEPS: tuple[str, ...] = (
    "preflight", "backup", "temporary_list", "move_to_non_sync", "sync_after_move", "wait_for_cloud_deletion",
    "finalize_cloud_list", "cloud_dependencies", "disable_original", "routing_contact", "hybrid_mail_flow",
    "onprem_dependencies", "child_lists", "final_sync", "report",
)
# The first step that changes the original group for good; a failure before it rolls back.
POINT_OF_NO_RETURN = "disable_original"
STAMP = "MigratedByScript"

# Cloud properties of other recipients that can name a list, and how the new list is put back in them.
CLOUD_DEPENDENCY_PROPERTIES = ("ManagedBy", "AcceptMessagesOnlyFromSendersOrMembers",
                               "RejectMessagesFromSendersOrMembers", "ModeratedBy",
                               "BypassModerationFromSendersOrMembers", "GrantSendOnBehalfTo", "ForwardingAddress")
# A batch list's backup whose cloud dependencies its wave searches at the batch's shared sync (scan_wave_dependents).
DEPENDENTS_PENDING = "wave"


class MigrationError(Exception):
    """A step could not do its work; before the point of no return this rolls the migration back."""


@dataclass
class Connectors:
    directory: adc.ActiveDirectory
    exchange: exo.ExchangeOnline
    onprem: Callable[[], exo.ExchangeOnPrem]
    sync: syncc.EntraConnect
    graph: Callable[[], Any]
    layout: registry.AdLayout


@contextmanager
def open_connectors() -> Iterator[Connectors]:
    """The directories one migration talks to; on-premises Exchange and Graph are opened when first needed."""
    with ExitStack() as stack:
        lazy: dict[str, Any] = {}

        def onprem() -> exo.ExchangeOnPrem:
            if "onprem" not in lazy:
                lazy["onprem"] = stack.enter_context(registry.exchange_onprem())
            return lazy["onprem"]

        def graph() -> Any:
            if "graph" not in lazy:
                lazy["graph"] = stack.enter_context(registry.entra_graph())
            return lazy["graph"]

        yield Connectors(
            directory=stack.enter_context(registry.active_directory()),
            exchange=stack.enter_context(registry.exchange_online()),
            onprem=onprem, sync=stack.enter_context(registry.entra_connect()), graph=graph,
            layout=registry.ad_layout(),
        )


def mark_inventory(migration: Migration, *, state: str, cloud_object_id: str = "") -> None:
    """The inventory row of the list says at once what a migration or a restore made of it, instead of
    waiting for the next inventory run."""
    if migration.group_guid is None:
        return
    rows = DistributionList.objects.filter(guid=migration.group_guid)
    rows.update(state=state, mail=migration.mail, cloud_dir_synced=state != ListState.MIGRATED,
                **({"cloud_object_id": cloud_object_id} if cloud_object_id else {}))
    if migration.distribution_list_id is None and (row := rows.first()) is not None:
        Migration.objects.filter(pk=migration.pk).update(distribution_list=row)


def non_sync_ou_for(options: MigrationOptions, layout: registry.AdLayout) -> str:
    return options.non_sync_ou or layout.non_sync_ou


def run_preflight(*, mail: str, options: MigrationOptions, c: Connectors, migration: Migration | None = None,
                  recommended: bool = False) -> tuple[ListFacts, PreflightReport]:
    """Inspect and judge one list: what the preflight job and the migration's first step (``migration``,
    which does not count as an earlier one) share. ``recommended`` (a batch list without a method of its
    own): the list is judged, and planned, with the method its facts recommend instead of ``options.method``."""
    from ..inplace import assess_preflight, read_method_facts, recommend_method  # in place builds on this module

    already_migrated = selectors.is_migrated(mail=mail, exclude=migration)
    facts = inspect_list(mail=mail, directory=c.directory, exchange=c.exchange, graph=c.graph)
    method_facts = read_method_facts(facts=facts, c=c) if facts.group is not None else None
    if recommended and method_facts is not None:
        options = dataclasses.replace(options, method=recommend_method(method_facts[0]).method)
    non_sync = non_sync_ou_for(options, c.layout)
    exists = dn_exists(c.directory, non_sync)
    in_scope: bool | None = None
    if exists:
        try:
            in_scope = c.sync.in_scope(non_sync)
        except syncc.SyncError:
            in_scope = None
        if in_scope is None:
            in_scope = any(adc.parse_dn(non_sync).is_within(ou) for ou in c.layout.sync_ous) or None
    protected: bool | None = False
    if facts.group is not None:
        sd = facts.group.first("nTSecurityDescriptor")
        protected = is_protected_from_deletion(sd) if isinstance(sd, bytes) and len(sd) >= 20 else None
    report = check_preflight(facts=facts, options=options, non_sync_ou=non_sync, non_sync_ou_exists=exists,
                             non_sync_ou_in_scope=in_scope, already_migrated=already_migrated, protected=protected)
    assess_preflight(report=report, facts=facts, options=options, method_facts=method_facts)
    return facts, report


def start_delta_sync(sync: syncc.EntraConnect, runner: JobRunner, *, why: str,
                     sleep: Callable[[float], None] = time.sleep) -> None:
    """Start a delta cycle; a cycle already running is waited for, an unreachable server retried."""
    retry = settings.DL_SYNC_RETRY_SECONDS
    try:
        syncc.start_sync_cycle_when_idle(
            sync, policy="Delta", why=why, log=lambda level, message: runner.log(message, level=level),
            attempts=settings.DL_SYNC_ATTEMPTS, wait_timeout=retry * 4, poll=min(2.0, retry), retry_seconds=retry,
            before_retry=lambda: runner.check_cancel(force=True), sleep=sleep)
    except syncc.SyncCycleNotStarted as exc:
        raise MigrationError(str(exc)) from None


# ----------------------------------------------------------------------------------------------
# backup documents


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode()}
    return value


def object_backup(obj: adc.DirectoryObject) -> dict[str, Any]:
    return {"dn": obj.dn, "guid": str(obj.guid) if obj.guid else None, "object_classes": list(obj.object_classes),
            "attributes": {k: [_jsonable(v) for v in vs] for k, vs in obj.attributes.items()}}


def _facts_dict(f: ObjectFacts) -> dict[str, Any]:
    return {"dn": f.dn, "kind": f.kind, "name": f.name, "mail": f.mail, "upn": f.upn,
            "security_enabled": f.security_enabled, "cloud_identity": f.cloud_identity, "cloud_type": f.cloud_type}


def dependent_rows(found: dict[str, list[exo.Recipient]]) -> list[dict[str, Any]]:
    """The cloud dependencies backed up: synced recipients get the routing contact on-premises instead."""
    return [{"property": prop, **_recipient_dict(r)} for prop, recipients_ in found.items() for r in recipients_
            if not r.is_dir_synced]


def scan_wave_dependents(*, job_ids: Collection[int], open_exchange: Callable[[], AbstractContextManager],
                         log: Callable[[str, str], None]) -> int:
    """The cloud dependencies of a wave's lists, searched together right before the batch's delta sync that
    deletes their twins (each list moved and parked, its twin still there): one read per cmdlet and filter
    chunk for the whole wave, instead of one per cmdlet and list. Written into each list's backup, which its
    cloud_dependencies step restores from. A failure raises: the sync is not started and the wave rolls back,
    rather than delete twins whose dependents nobody read. Returns how many lists were searched."""
    pending = {b.migration_id: b for b in MigrationBackup.objects.filter(
        kind=BackupKind.CLOUD_DEPENDENCIES, migration__job_id__in=list(job_ids))
        if (b.data or {}).get("dependents") == DEPENDENTS_PENDING}
    if not pending:
        return 0
    twins = {b.migration_id: b.data.get("DistinguishedName") for b in MigrationBackup.objects.filter(
        kind=BackupKind.CLOUD_GROUP, migration_id__in=list(pending))}
    mails = dict(Migration.objects.filter(pk__in=list(pending)).values_list("pk", "mail"))
    found_any = 0
    with open_exchange() as exchange:
        answers = exchange.find_dependents_of_many(attributes=CLOUD_DEPENDENCY_PROPERTIES, cloud_only=True,
                                                   dns=[dn for dn in twins.values() if dn])
        searched = {migration_id: answers[dn] if (dn := twins.get(migration_id)) else exchange.find_dependents(
            attributes=CLOUD_DEPENDENCY_PROPERTIES, cloud_only=True, dn_or_id=mails[migration_id])
            for migration_id in pending}
    for migration_id, backup in pending.items():
        found, refused = searched[migration_id]
        rows = dependent_rows(found)
        found_any += bool(rows)
        MigrationBackup.objects.filter(pk=backup.pk).update(data={
            **backup.data, "properties": [*backup.data.get("properties", []), *rows], "dependents": "searched",
            "unsearched": refused})
    log("info", f"Cloud dependencies of {len(pending)} list(s) searched together before the delta sync: "
                f"{found_any} of them named by cloud-only recipients.")
    return len(pending)


def _recipient_dict(r: exo.Recipient) -> dict[str, Any]:
    return {"identity": r.identity, "guid": r.guid, "name": r.name, "primary_smtp_address": r.primary_smtp_address,
            "recipient_type_details": r.recipient_type_details, "external_directory_object_id":
                r.external_directory_object_id, "is_dir_synced": r.is_dir_synced}
