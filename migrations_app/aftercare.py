"""Services around migrations that are not the migration itself: the inventory of synced lists, hybrid
mail flow for a list migrated without it, the address change of a migrated list in both directories,
and the restore of a migrated list on-premises from its backup."""

from __future__ import annotations

import base64
import time
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.audit.services import record
from portal.connectors import ad as adc
from portal.connectors import exchange as exo
from portal.connectors import sync as syncc
from portal.connectors.ad import recipients
from portal.jobs.runner import JobFailed, JobRunner

from .choices import DONE_MIGRATION_STATUSES, BackupKind, ListKind, ListState, MigrationStatus
from .engine import STAMP, Connectors, MigrationError, MigrationProcess, mark_inventory, start_delta_sync
from .inspection import ROOM_LIST_TYPE, SECURITY_ENABLED, group_type_of
from .models import DistributionList, Migration, MigrationBackup

# What a restore writes back on the group (the rest of a backup is the directory's own bookkeeping).
RESTORABLE_ATTRIBUTES: tuple[str, ...] = (
    "displayName", "description", "info", "mail", "mailNickname", "proxyAddresses", "legacyExchangeDN",
    "targetAddress", "msExchRecipientTypeDetails", "msExchRecipientDisplayType", "msExchHideFromAddressLists",
    "msExchRequireAuthToSendTo", "msExchEnableModeration", "msExchModerationFlags", "msExchGroupJoinRestriction",
    "msExchGroupDepartRestriction", "reportToOriginator", "reportToOwner", "oOFReplyToOriginator", "managedBy",
    "authOrig", "unauthOrig", "dLMemSubmitPerms", "dLMemRejectPerms", "msExchCoManagedByLink",
    "msExchModeratedByLink", "msExchBypassModerationLink", "publicDelegates",
    *(f"extensionAttribute{i}" for i in range(1, 16)),
)


# ----------------------------------------------------------------------------------------------
# inventory


def _kind(obj: adc.DirectoryObject) -> str:
    if str(obj.first("msExchRecipientTypeDetails") or "") == str(ROOM_LIST_TYPE):
        return ListKind.ROOM_LIST
    return ListKind.SECURITY if group_type_of(obj) & SECURITY_ENABLED else ListKind.DISTRIBUTION


def do_inventory(*, c: Connectors, runner: JobRunner) -> dict[str, Any]:
    """Read every mail-enabled group of the sync scope and the cloud lists; replace the inventory."""
    runner.info("Reading the distribution lists of Exchange Online…")
    cloud: dict[str, exo.DistributionGroup] = {}
    for group in c.exchange.iter_distribution_groups():
        for address in (group.primary_smtp_address, *[a[5:] for a in group.email_addresses
                                                      if a.lower().startswith("smtp:")]):
            if address:
                cloud.setdefault(address.lower(), group)
    runner.info(f"{len({g.guid for g in cloud.values()})} cloud list(s). Reading Active Directory…")
    groups: list[adc.DirectoryObject] = []
    for base in c.layout.sync_ous or (c.layout.base_dn,):
        groups += list(recipients.mail_enabled_groups(c.directory, base=base))
    mail_groups = {g.dn.lower() for g in groups}
    migrated = {m.group_guid: m for m in Migration.objects.filter(
        status__in=DONE_MIGRATION_STATUSES, group_guid__isnull=False)}
    now = timezone.now()
    seen = set()
    counts = {"lists": 0, "synced": 0, "migrated": 0, "not_in_cloud": 0}
    with transaction.atomic():
        for index, obj in enumerate(groups, 1):
            if obj.guid is None:
                continue
            mail = str(obj.first("mail") or "")
            twin = cloud.get(mail.lower())
            members = obj.get("member")
            children = [m for m in members if str(m).lower() in mail_groups]
            deps = {recipients.DEPENDENCY_BACKLINKS[b]: list(obj.get(b)) for b in recipients.DEPENDENCY_BACKLINKS
                    if obj.get(b)}
            parents = [d for d in deps.get("member", []) if d.lower() in mail_groups]
            state = ListState.SYNCED if twin is not None and twin.is_dir_synced else ListState.NOT_IN_CLOUD
            DistributionList.objects.update_or_create(guid=obj.guid, defaults=dict(
                dn=obj.dn, name=str(obj.first("cn") or obj.dn), display_name=str(obj.first("displayName") or ""),
                mail=mail, alias=str(obj.first("mailNickname") or ""), ou=str(adc.parse_dn(obj.dn).parent),
                kind=_kind(obj), state=state, member_count=len(members), child_lists=children,
                parent_lists=parents, dependencies=deps,
                dependency_count=sum(len(v) for k, v in deps.items() if k != "member"),
                cloud_object_id=(twin.external_directory_object_id or "") if twin else "",
                cloud_type=(twin.recipient_type_details or "") if twin else "",
                cloud_dir_synced=twin.is_dir_synced if twin else None, inventoried_at=now))
            seen.add(obj.guid)
            counts["lists"] += 1
            counts["synced" if state == ListState.SYNCED else "not_in_cloud"] += 1
            if index % 200 == 0:
                runner.progress(index, len(groups))
        for guid, migration in migrated.items():
            twin = cloud.get(migration.mail.lower())
            DistributionList.objects.update_or_create(guid=guid, defaults=dict(
                dn=migration.original_dn, name=migration.group_name or migration.mail, mail=migration.mail,
                ou=str(adc.parse_dn(migration.original_dn).parent) if migration.original_dn else "",
                state=ListState.MIGRATED, cloud_object_id=migration.cloud_group_id,
                cloud_type=(twin.recipient_type_details or "") if twin else "", cloud_dir_synced=False,
                inventoried_at=now))
            Migration.objects.filter(pk=migration.pk).update(distribution_list=DistributionList.objects.get(guid=guid))
            seen.add(guid)
            counts["lists"] += 1
            counts["migrated"] += 1
        gone = DistributionList.objects.exclude(guid__in=seen).delete()[0]
    runner.progress(len(groups), len(groups))
    runner.info(f"Inventory: {counts['lists']} list(s); {gone} row(s) of lists no longer found removed.")
    return counts


# ----------------------------------------------------------------------------------------------
# after a migration


def do_enable_hybrid_mail_flow(*, migration: Migration, c: Connectors, runner: JobRunner) -> dict[str, Any]:
    process = MigrationProcess(migration=migration, runner=runner, c=c)
    if not migration.contact_dn or not c.directory.exists(migration.contact_dn):
        process.step_routing_contact()
    process.enable_hybrid_mail_flow()
    # The recorded options stay what the migration ran with; the page shows the dynamic list it has now.
    record(actor=runner.job.user, action="dl.hybrid_mail_flow.enable", target=f"dl:{migration.mail}",
           after={"dynamic_list_dn": process.m.dynamic_list_dn, "contact_dn": process.m.contact_dn}, job=runner.job)
    runner.summary = f"Hybrid mail flow enabled: on-premises senders to {migration.mail} reach the cloud list."
    return {"migration": migration.pk, "dynamic_list_dn": process.m.dynamic_list_dn}


def do_update_address(*, migration: Migration, new_address: str, new_alias: str, c: Connectors,
                      runner: JobRunner) -> dict[str, Any]:
    """Exchange Online first; only when that took, the on-premises dynamic list (mail, proxyAddresses)."""
    old = migration.mail
    changes: dict[str, Any] = {"PrimarySmtpAddress": new_address}
    if new_alias:
        changes["Alias"] = new_alias
    ident = migration.cloud_group_id or old
    before = c.exchange.get_distribution_group(ident)
    try:
        c.exchange.set_distribution_group(ident, changes=changes, bypass_security_group_manager_check=True)
        after = c.exchange.get_distribution_group(ident)
    except exo.ExchangeError as exc:
        raise JobFailed(f"Exchange Online refused the change ({exc}); nothing was changed on-premises.") from exc
    if (after.primary_smtp_address or "").lower() != new_address.lower():
        raise JobFailed(f"Exchange Online shows {after.primary_smtp_address} as primary, not {new_address}; "
                        "nothing was changed on-premises.")
    runner.success(f"Exchange Online: {before.primary_smtp_address} → {after.primary_smtp_address}"
                   + (f", alias {before.alias} → {after.alias}" if new_alias else "") + ".")
    ddl_dn = migration.dynamic_list_dn
    if not ddl_dn:
        found = recipients.find_dynamic_list_by_address(c.directory, old)
        ddl_dn = found.dn if found else ""
    onprem_done = False
    if ddl_dn:
        try:
            c.onprem().set_dynamic_distribution_group(ddl_dn, changes=changes)
            onprem_done = True
            runner.success(f"On-premises dynamic list {ddl_dn}: primary {new_address}"
                           + (f", alias {new_alias}" if new_alias else "") + ".")
        except exo.ExchangeError as exc:
            runner.warning(f"Exchange Online has the new address but the on-premises dynamic list could not be "
                           f"changed ({exc}): hybrid mail flow still answers to {old}. Run this again.")
    else:
        runner.info("No on-premises dynamic list (the list was migrated without hybrid mail flow).")
    Migration.objects.filter(pk=migration.pk).update(mail=new_address)
    DistributionList.objects.filter(migrations=migration).update(mail=new_address)
    record(actor=runner.job.user, action="dl.address.update", target=f"dl:{old}",
           before={"primary": before.primary_smtp_address, "alias": before.alias},
           after={"primary": after.primary_smtp_address, "alias": after.alias, "onprem": onprem_done},
           job=runner.job)
    runner.summary = (f"{old} is now {new_address} in Exchange Online"
                      + (" and on-premises." if onprem_done else "." if not ddl_dn else "; on-premises NOT updated."))
    return {"migration": migration.pk, "old": old, "new": new_address, "onprem_updated": onprem_done}


def _values(values: list[Any]) -> list[Any]:
    return [base64.b64decode(v["base64"]) if isinstance(v, dict) and "base64" in v else v for v in values]


def do_restore(*, migration: Migration, c: Connectors, runner: JobRunner) -> dict[str, Any]:
    """Rebuild the on-premises list from its backup and remove the cloud list so the sync soft-matches it."""
    backups = {b.kind: b.data for b in MigrationBackup.objects.filter(migration=migration)}
    group = backups[BackupKind.ONPREM_GROUP]
    attrs = {k: _values(v) for k, v in group["attributes"].items()}

    def backup_attr(name: str) -> list[Any]:
        return next((v for k, v in attrs.items() if k.lower() == name.lower()), [])

    directory = c.directory
    original_dn, ou = group["dn"], group["ou"]
    # A cycle running while the addresses move between the cloud list and the group would see both
    # holding them and drop them from the group: let it finish first.
    c.sync.wait_until_idle(timeout=settings.DL_DELETION_TIMEOUT_SECONDS,
                           poll=min(2.0, settings.DL_DELETION_POLL_SECONDS))
    cn = adc.parse_dn(original_dn).rdn_value
    # 1. the on-premises routing objects go first: they hold the list's addresses
    ddl = migration.dynamic_list_dn or ""
    if ddl and directory.exists(ddl):
        c.onprem().remove_dynamic_distribution_group(ddl)
        runner.info(f"Removed the hybrid mail flow dynamic list {ddl}.")
    # 2. the cloud list, so the restored group's addresses are free and it soft-matches
    cloud = None
    try:
        cloud = c.exchange.get_distribution_group(migration.cloud_group_id or migration.mail)
    except exo.ObjectNotFound:
        runner.info("The cloud list is already gone.")
    if cloud is not None and not cloud.is_dir_synced:
        c.exchange.remove_distribution_group(cloud.guid or migration.mail, bypass_security_group_manager_check=True)
        runner.info(f"Removed the cloud list {cloud.primary_smtp_address}.")
    # 3. the group itself: the kept original, or a new one from the backup
    restore = {a: backup_attr(a) or None for a in RESTORABLE_ATTRIBUTES}
    try:
        current = directory.read_by_guid(migration.group_guid, attributes=["cn"]).dn
    except adc.NotFound:
        current = None
    if current is not None:
        directory.modify(current, replace=restore)
        if adc.parse_dn(current).rdn_value != cn:
            current = directory.rename(current, cn)
        if adc.parse_dn(current).parent.normalized() != adc.parse_dn(ou).normalized():
            current = directory.move(current, ou)
        runner.success(f"Restored the original group {current} from the backup.")
    else:
        create = {k: v for k, v in restore.items() if v}
        create["sAMAccountName"] = backup_attr("sAMAccountName")[:1] or None
        create["groupType"] = backup_attr("groupType")[:1] or [8]
        current = directory.add(adc.child_dn(ou, "CN", cn), object_class="group", attributes=create)
        members = backup_attr("member")
        existing = [m for m in members if directory.exists(m)]
        if existing:
            directory.add_values(current, "member", existing)
        runner.success(f"Re-created {current} from the backup with {len(existing)} of {len(members)} members.")
    # 4. dependencies point at the group again; the routing contact goes
    contact = migration.contact_dn
    for attribute, dns in (backups.get(BackupKind.ONPREM_DEPENDENCIES) or {}).items():
        for dn in dns:
            try:
                if attribute == "altRecipient":
                    directory.modify(dn, replace={attribute: current})
                elif attribute != "managedBy":
                    directory.modify(dn, add={attribute: [current]})
            except (adc.ValueExists, adc.NotFound):
                pass
            except adc.AdError as exc:
                runner.warning(f"{dn} {attribute}: {exc}")
    if contact and directory.exists(contact):
        directory.delete(contact)
        runner.info(f"Removed the routing contact {contact}.")
    # 5. a sync, then wait for the synced twin
    try:
        start_delta_sync(c.sync, runner, why="so the group is synced again")
    except (MigrationError, syncc.SyncError) as exc:
        runner.warning(f"Could not start a sync ({exc}); the next scheduled cycle syncs the group.")
    deadline = time.monotonic() + settings.DL_DELETION_TIMEOUT_SECONDS
    twin = None
    while time.monotonic() < deadline:
        try:
            twin = c.exchange.get_distribution_group(migration.mail)
            if twin.is_dir_synced and (twin.primary_smtp_address or "").lower() == migration.mail.lower():
                break
        except exo.ObjectNotFound:
            pass
        time.sleep(settings.DL_DELETION_POLL_SECONDS)
    if twin is not None and twin.is_dir_synced and \
            (twin.primary_smtp_address or "").lower() == migration.mail.lower():
        runner.success(f"{migration.mail} is a synced list in Exchange Online again.")
    else:
        runner.warning(f"{migration.mail} is not yet synced back to Exchange Online; check the next sync cycle.")
    Migration.objects.filter(pk=migration.pk).update(status=MigrationStatus.RESTORED, finished_at=timezone.now())
    mark_inventory(migration, state=ListState.SYNCED)
    record(actor=runner.job.user, action="dl.restore", target=f"dl:{migration.mail}",
           after={"migration": migration.pk, "group_dn": current}, job=runner.job)
    runner.summary = f"Restored {migration.mail} on-premises as {current}; the cloud list was removed."
    return {"migration": migration.pk, "group_dn": current, "stamp": STAMP}
