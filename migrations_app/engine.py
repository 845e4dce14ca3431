"""The migration of one list, as a checkpointed state machine.

Every step is idempotent: it looks at both directories first and does only what is still missing, so
a run resumed after a worker crash (the job runner skips steps whose checkpoint exists) or a step
repeated after an ambiguous failure ends in the same state. What later steps need is read from the
backup taken in the first steps, never from the directory mid-way, where the list is half-moved.

Until the original group is disabled on-premises (``disable_original``) every failure rolls back:
the temporary (or already renamed) cloud list is removed and the group moves back to its OU, so the
sync brings its cloud twin back. After that point the list lives in the cloud; a failing step is a
post-create error: logged, listed in the report, and the migration ends "migrated with warnings".
"""

from __future__ import annotations

import base64
import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone

from portal.connectors import ad as adc
from portal.connectors import exchange as exo
from portal.connectors import graph as graphc
from portal.connectors import registry
from portal.connectors import sync as syncc
from portal.connectors.ad import recipients
from portal.connectors.ad.security import is_protected_from_deletion
from portal.jobs.runner import JobCancelled, JobFailed, JobRunner

from . import read_once, selectors
from .choices import BackupKind, ListState, MigrationStatus
from .inspection import ListFacts, ObjectFacts, inspect_list
from .models import DistributionList, Migration, MigrationBackup
from .options import MigrationOptions
from .preflight import PreflightReport, check_preflight, dn_exists, plan_differences

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
    from .inplace import assess_preflight, read_method_facts, recommend_method  # in place builds on this module

    already_migrated = selectors.is_migrated(mail=mail, exclude=migration)
    facts = inspect_list(mail=mail, directory=c.directory, exchange=c.exchange)
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
    attempts = settings.DL_SYNC_ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            sync.start_sync_cycle(policy="Delta")
            runner.info(f"Started a delta sync ({why}).")
            return
        except syncc.SyncAlreadyRunning:
            runner.check_cancel(force=True)
            runner.info(f"A sync cycle is running; waiting to start ours ({attempt}/{attempts}).")
            sync.wait_until_idle(timeout=settings.DL_SYNC_RETRY_SECONDS * 4,
                                 poll=min(2.0, settings.DL_SYNC_RETRY_SECONDS))
        except (syncc.SyncUnreachable, syncc.SyncEngineUnavailable) as exc:
            runner.warning(f"Sync server: {exc} ({attempt}/{attempts}).")
            runner.check_cancel(force=True)
            sleep(settings.DL_SYNC_RETRY_SECONDS)
    raise MigrationError(f"could not start a delta sync after {attempts} attempts")


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


def _recipient_dict(r: exo.Recipient) -> dict[str, Any]:
    return {"identity": r.identity, "guid": r.guid, "name": r.name, "primary_smtp_address": r.primary_smtp_address,
            "recipient_type_details": r.recipient_type_details, "external_directory_object_id":
                r.external_directory_object_id, "is_dir_synced": r.is_dir_synced}


# ----------------------------------------------------------------------------------------------
# the process


class MigrationProcess:
    """Runs the steps of one migration inside its job (``runner``) with open connectors (``c``)."""

    steps: tuple[str, ...] = STEPS  # the in-place method (inplace.InPlaceProcess) has steps of its own
    point_of_no_return: str = POINT_OF_NO_RETURN
    # In a batch: the batch's shared delta sync (batch_sync.BatchSyncGate) instead of one per list.
    sync_gate: Any = None
    # In a batch: this worker's memory of the organisation's settings read for the batch (read_once.batch_memo).
    shared_reads: dict | None = None
    current_step: str = ""

    def __init__(self, *, migration: Migration, runner: JobRunner, c: Connectors,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.m = migration
        self.runner = runner
        self.c = c
        self.options = MigrationOptions.from_dict(migration.options)
        self.sleep = sleep
        self.post_create_errors: list[dict[str, Any]] = list(migration.post_create_errors or [])
        self._backups: dict[str, dict[str, Any]] | None = None

    # -- helpers ------------------------------------------------------------------------------
    def log(self, message: str, **kw: Any) -> None:
        self.runner.info(message, **kw)

    def backup(self, kind: str) -> dict[str, Any]:
        # Written once by step_backup and read by every later step: one query per run, not per attribute.
        if self._backups is None or kind not in self._backups:
            self._backups = {b.kind: b.data for b in MigrationBackup.objects.filter(migration=self.m)}
        if kind not in self._backups:
            raise MigrationError(f"the backup '{kind}' is missing; the migration cannot go on without it")
        return self._backups[kind]

    def save(self, **fields: Any) -> None:
        for key, value in fields.items():
            setattr(self.m, key, value)
        with self.runner.fenced():  # a superseded run never overwrites what the current one saved
            Migration.objects.filter(pk=self.m.pk).update(**fields)

    def post_create_error(self, step: str, message: str, *, objects: list[str] | None = None) -> None:
        self.runner.warning(f"Post-create error in {step}: {message}", data={"objects": objects or []})
        self.post_create_errors.append({"step": step, "message": message, "objects": objects or []})
        self.save(post_create_errors=self.post_create_errors)

    @property
    def group(self) -> dict[str, Any]:
        return self.backup(BackupKind.ONPREM_GROUP)

    def group_attr(self, name: str) -> list[Any]:
        attrs = self.group["attributes"]
        return next((v for k, v in attrs.items() if k.lower() == name.lower()), [])

    def first_attr(self, name: str) -> Any:
        values = self.group_attr(name)
        return values[0] if values else None

    @property
    def cloud(self) -> dict[str, Any]:
        return self.backup(BackupKind.CLOUD_GROUP)

    @property
    def temp_address(self) -> str:
        return f"migtemp-{self.m.group_guid.hex[:12]}@{self.cloud['tenant_domain']}"

    def current_group_dn(self) -> str | None:
        try:
            return self.c.directory.read_by_guid(self.m.group_guid, attributes=["cn"]).dn
        except adc.NotFound:
            return None

    def find_list(self, identity: str) -> exo.DistributionGroup | None:
        try:
            return self.c.exchange.get_distribution_group(identity)
        except exo.ObjectNotFound:
            return None

    # -- the run ------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        self.save(status=MigrationStatus.RUNNING)
        steps = self.steps
        total = len(steps)
        for index, name in enumerate(steps):
            self.runner.progress(index, total)
            before_return = steps.index(name) < steps.index(self.point_of_no_return)
            self.current_step = name
            try:
                if name == self.point_of_no_return and not self.runner.completed(name):
                    # A cancel requested until now still rolls back; from here it is refused.
                    self.runner.forbid_cancel("the original list is being disabled on-premises")
                with self.runner.step(name) as todo:
                    if todo:
                        self._run_step(name, retry=not before_return)
            except JobFailed:
                with self.runner.shield():
                    self.save(status=MigrationStatus.FAILED, finished_at=timezone.now())
                raise
            except JobCancelled:
                # Cancellation points all lie before the point of no return (forbid_cancel above).
                with self.runner.shield():
                    self.roll_back(reason="cancelled at the user's request", cancelled=True)
                raise
            except Exception as exc:  # noqa: BLE001 - whatever broke, the list must not be left half-moved
                detail = str(exc) if isinstance(exc, (MigrationError, adc.AdError, exo.ExchangeError,
                                                      syncc.SyncError)) else f"{type(exc).__name__}: {exc}"
                if before_return:
                    with self.runner.shield():
                        self.roll_back(reason=f"{name}: {detail}")
                    raise JobFailed(f"Rolled back after '{name}' failed: {detail}",
                                    result={"migration": self.m.pk, "rolled_back": True}) from exc
                # After the point of no return the list lives in the cloud: never undo, record and go on.
                self.post_create_error(name, detail)
                self.runner.checkpoint(name, {"post_create_error": detail})
        with self.runner.shield():
            self.runner.progress(total, total)
            status = MigrationStatus.MIGRATED_WITH_WARNINGS if self.post_create_errors else MigrationStatus.MIGRATED
            self.save(status=status, finished_at=timezone.now())
            mark_inventory(self.m, state=ListState.MIGRATED, cloud_object_id=self.m.cloud_group_id)
        self.runner.summary = (
            f"Migrated {self.m.mail} to Exchange Online"
            + (f" with {len(self.post_create_errors)} post-create error(s): review them." if self.post_create_errors
               else ".")
        )
        return {"migration": self.m.pk, "status": status, "report": self.m.report}

    def _run_step(self, name: str, *, retry: bool) -> None:
        """Once; after the point of no return a failing step gets one more try (steps are idempotent),
        because there is no roll back to fall back on."""
        try:
            getattr(self, f"step_{name}")()
        except (JobFailed, JobCancelled):
            raise
        except Exception as exc:  # noqa: BLE001 - decided by the caller after the retry
            if not retry:
                raise
            self.runner.warning(f"Step '{name}' failed ({exc}); trying it once more.")
            self.sleep(settings.DL_MOVE_RETRY_SECONDS)
            getattr(self, f"step_{name}")()

    # -- steps --------------------------------------------------------------------------------
    def step_preflight(self) -> None:
        facts, report = run_preflight(mail=self.m.mail, options=self.options, migration=self.m,
                                      c=read_once.for_run(self.c, self.shared_reads))
        for check in report.checks:
            level = {"pass": self.runner.debug, "warning": self.runner.warning, "failure": self.runner.error}
            level[check.outcome](f"Preflight: {check.title}: {check.detail}")
        if self.m.approval_expires_at is not None and timezone.now() > self.m.approval_expires_at:
            raise JobFailed(f"The approval of this migration expired at {self.m.approval_expires_at:%Y-%m-%d %H:%M} "
                            "UTC; request it again so that an Approver signs what the list is today.",
                            result={"migration": self.m.pk, "approval_expired": True})
        approved_plan = (self.m.preflight or {}).get("plan") or {}
        if self.m.plan_hash and report.ok and report.as_dict()["plan_hash"] != self.m.plan_hash:
            changes = plan_differences(approved_plan, report.plan)
            raise JobFailed("The list no longer matches the plan that was "
                            + ("approved" if self.m.approved_by_id else "requested") + ": "
                            + "; ".join(changes or ["its plan changed"])
                            + ". Nothing was changed; run a new preflight and request it again.",
                            result={"migration": self.m.pk, "plan_changed": changes})
        self.save(preflight=report.as_dict())
        if not report.ok:
            raise JobFailed(report.summary(), result={"migration": self.m.pk, "preflight": report.as_dict()})
        self._facts = facts
        group = facts.group
        assert group is not None and group.guid is not None
        self.save(group_guid=group.guid, group_name=str(group.first("cn") or ""), original_dn=group.dn)
        self.log(f"Preflight passed for {group.dn} ({len(facts.members)} members).")

    def step_backup(self) -> None:
        facts = getattr(self, "_facts", None)
        if facts is None:  # resumed between preflight and backup: read again, nothing has changed yet
            facts = inspect_list(mail=self.m.mail, directory=self.c.directory, exchange=self.c.exchange)
        if facts.group is None or facts.twin is None:
            raise MigrationError(f"{self.m.mail} is no longer a synced list; nothing was changed")
        full = self.c.directory.read_all(facts.group.dn)
        twin = facts.twin
        exchange = self.c.exchange
        cloud_deps: list[dict[str, Any]] = []
        # Synced objects are left out by the filter: they get the routing contact on-premises instead.
        found, refused = exchange.find_dependents(attributes=CLOUD_DEPENDENCY_PROPERTIES, cloud_only=True,
                                                  dn_or_id=twin.distinguished_name or self.m.mail)
        for prop, reason in refused.items():  # a property this tenant cannot filter on: say so, go on
            self.runner.warning(f"Cloud dependencies by {prop} could not be searched: {reason}")
        for prop, recipients_ in found.items():
            cloud_deps += [{"property": prop, **_recipient_dict(r)} for r in recipients_ if not r.is_dir_synced]
        cloud_deps += self._cloud_lists_containing(twin)
        send_as = [{"trustee": p.trustee} for p in exchange.get_recipient_permission(twin.guid or self.m.mail)
                   if p.trustee and not p.is_inherited and (p.access_control_type or "Allow") == "Allow"
                   and not (p.trustee or "").upper().startswith("NT AUTHORITY")]
        docs = {
            BackupKind.ONPREM_GROUP: {**object_backup(full), "ou": str(adc.parse_dn(full.dn).parent)},
            BackupKind.ONPREM_MEMBERS: {
                "members": [_facts_dict(m) for m in facts.members],
                "links": {a: [_facts_dict(o) for o in objs] for a, objs in facts.links.items()}},
            BackupKind.ONPREM_DEPENDENCIES: facts.dependencies,
            BackupKind.CLOUD_GROUP: {**{k: v for k, v in twin.raw.items()}, "tenant_domain": facts.tenant_domain,
                                     "routing_domain": facts.routing_domain},
            BackupKind.CLOUD_MEMBERS: [_recipient_dict(r) for r in facts.cloud_members],
            BackupKind.CLOUD_DEPENDENCIES: {"properties": cloud_deps, "send_as": send_as},
        }
        with self.runner.fenced():
            for kind, data in docs.items():
                MigrationBackup.objects.update_or_create(migration=self.m, kind=kind, defaults={"data": data})
        self._backups = None
        self.log(f"Backed up {full.dn}: {len(full.attributes)} attributes, {len(facts.members)} members, "
                 f"{sum(len(v) for v in facts.dependencies.values())} on-premises and {len(cloud_deps) + len(send_as)} "
                 "cloud dependencies.")

    def _cloud_lists_containing(self, twin: exo.DistributionGroup) -> list[dict[str, Any]]:
        """The cloud-only lists the twin is a member of. Graph answers in one paged read (the twin's groups);
        Exchange has no filter for "groups that contain X", so without Graph each cloud-only list's members
        are read (one call per cloud-only list)."""
        if twin.external_directory_object_id:
            try:
                groups = list(self.c.graph().iter_group_member_of(twin.external_directory_object_id,
                                                                  select=(*graphc.MEMBER_KIND_SELECT, "mail")))
            except Exception as exc:  # noqa: BLE001 - Graph unconfigured or down: Exchange answers too, slower
                self.runner.warning(f"Graph could not list the groups of the cloud twin ({exc}); reading the "
                                    "members of each cloud-only list instead.")
            else:
                return [{"property": "MemberOfGroup", "guid": None, "external_directory_object_id": g.id,
                         "name": g.display_name, "primary_smtp_address": g.mail, "is_dir_synced": False,
                         "recipient_type_details": "MailUniversalSecurityGroup" if g.security_enabled
                         else "MailUniversalDistributionGroup"}
                        for g in groups if g.kind == "group" and g.mail_enabled and not g.on_premises_sync_enabled
                        and "Unified" not in g.group_types]
        exchange = self.c.exchange
        out = []
        for group in exchange.iter_distribution_groups(filter=exo.opath_eq("IsDirSynced", False)):
            members = exchange.iter_distribution_group_members(group.guid or group.primary_smtp_address or "")
            if any(m.guid == twin.guid for m in members):
                out.append({"property": "MemberOfGroup", "guid": group.guid, "name": group.name,
                            "primary_smtp_address": group.primary_smtp_address,
                            "recipient_type_details": group.recipient_type_details, "is_dir_synced": False})
        return out

    def _member_identities(self) -> list[str]:
        members = self.backup(BackupKind.ONPREM_MEMBERS)["members"]
        skip_children = self.options.skip_nested_group_check
        return list(dict.fromkeys(m["cloud_identity"] for m in members if m["cloud_identity"]  # stand-ins: once
                                  and not (skip_children and m["kind"] == "group" and m["mail"])))

    def _link_identities(self, *attributes: str) -> list[str]:
        links = self.backup(BackupKind.ONPREM_MEMBERS)["links"]
        out: list[str] = []
        for attribute in attributes:
            out += [o["cloud_identity"] for o in links.get(attribute, []) if o["cloud_identity"]]
        return list(dict.fromkeys(out))

    def step_temporary_list(self) -> None:
        cloud = self.cloud
        exchange = self.c.exchange
        group_type = self.options.group_type or (
            "Security" if cloud.get("RecipientTypeDetails") == "MailUniversalSecurityGroup" else "Distribution")
        short = self.m.group_guid.hex[:12]
        wanted = self._settings_changes()
        # Created straight away: only a run resumed after this point finds it made already (one read then,
        # none on every first run). The settings New-DistributionGroup takes are given to it, not set after.
        try:
            temp = exchange.new_distribution_group(
                name=f"MigTemp-{short}", alias=f"migtemp-{short}", primary_smtp_address=self.temp_address,
                display_name=f"MigTemp-{short}", group_type=group_type,  # type: ignore[arg-type]
                room_list=cloud.get("RecipientTypeDetails") == "RoomList",
                notes=f"Temporary list of the DirOps migration #{self.m.pk} of {self.m.mail}",
                require_sender_authentication_enabled=wanted.get("RequireSenderAuthenticationEnabled", True),
                member_join_restriction=wanted.get("MemberJoinRestriction", "Closed"),
                member_depart_restriction=wanted.get("MemberDepartRestriction", "Closed"),
            )
            self.log(f"Created the temporary cloud list {self.temp_address}.")
        except exo.AlreadyExists:
            found = self.find_list(self.temp_address)
            if found is None:
                raise
            temp = found
            self.log(f"The temporary cloud list {self.temp_address} exists already (an earlier run made it).")
        self.save(cloud_group_id=temp.external_directory_object_id or temp.guid or "")
        members = self._member_identities()
        try:
            exchange.update_distribution_group_member(temp.guid or self.temp_address, members=members,
                                                      bypass_security_group_manager_check=True)
            self.log(f"Added {len(members)} members in one call (Update-DistributionGroupMember).")
        except exo.ExchangeError as exc:
            if isinstance(exc, (exo.Unreachable, exo.Throttled, exo.ServiceUnavailable)):
                raise
            self.runner.warning(f"Bulk member update refused ({exc}); adding members one by one.")
            failed = []
            for index, member in enumerate(members, 1):
                try:
                    exchange.add_distribution_group_member(temp.guid or self.temp_address, member=member,
                                                           bypass_security_group_manager_check=True)
                except exo.ExchangeError as one:
                    failed.append(f"{member}: {one}")
                if index % 500 == 0:
                    self.log(f"… {index}/{len(members)} members added")
            if failed:
                raise MigrationError(f"{len(failed)} member(s) could not be added: {'; '.join(failed[:5])}") from exc
        # What the new list has already (New-DistributionGroup's answer) is not written again; often nothing is left.
        changes = {k: v for k, v in wanted.items() if isinstance(v, list) or temp.raw.get(k) != v}
        if changes:
            exchange.set_distribution_group(temp.guid or self.temp_address, changes=changes,
                                            bypass_security_group_manager_check=True)
        self.log(f"Applied {len(wanted)} settings to the temporary list ({len(changes)} differed from its defaults).")

    def _settings_changes(self) -> dict[str, Any]:
        cloud = self.cloud
        changes: dict[str, Any] = {}
        managers = self._link_identities("managedBy", "msExchCoManagedByLink")
        if managers:
            changes["ManagedBy"] = managers
        for prop, attrs in (("AcceptMessagesOnlyFromSendersOrMembers", ("authOrig", "dLMemSubmitPerms")),
                            ("RejectMessagesFromSendersOrMembers", ("unauthOrig", "dLMemRejectPerms")),
                            ("ModeratedBy", ("msExchModeratedByLink",)),
                            ("BypassModerationFromSendersOrMembers", ("msExchBypassModerationLink",)),
                            ("GrantSendOnBehalfTo", ("publicDelegates",))):
            ids = self._link_identities(*attrs)
            if ids:
                changes[prop] = ids
        for prop in ("ModerationEnabled", "HiddenFromAddressListsEnabled", "RequireSenderAuthenticationEnabled"):
            value = cloud.get(prop)
            if isinstance(value, bool):
                changes[prop] = value
        for prop, allowed in (("MemberJoinRestriction", ("Open", "Closed", "ApprovalRequired")),
                              ("MemberDepartRestriction", ("Open", "Closed")),
                              ("SendModerationNotifications", ("Always", "Internal", "Never"))):
            if cloud.get(prop) in allowed:
                changes[prop] = cloud[prop]
        for i in range(1, 16):
            if cloud.get(f"CustomAttribute{i}"):
                changes[f"CustomAttribute{i}"] = str(cloud[f"CustomAttribute{i}"])
        for prop in ("MailTip", "Description"):
            if isinstance(cloud.get(prop), str) and cloud[prop]:
                changes[prop] = cloud[prop]
        return changes

    def _move_with_retries(self, dn: str, parent: str, attempts: int) -> str:
        last: Exception | None = None
        for attempt in range(1, attempts + 1):
            try:
                return self.c.directory.move(dn, parent)
            except adc.AdError as exc:
                last = exc
                self.runner.warning(f"Move attempt {attempt}/{attempts} of {dn} failed: {exc}")
                if attempt < attempts:
                    self.runner.check_cancel(force=True)
                    self.sleep(settings.DL_MOVE_RETRY_SECONDS)
                    current = self.current_group_dn()  # an attempt whose answer was lost may have moved it
                    if current and adc.parse_dn(current).parent.normalized() == adc.parse_dn(parent).normalized():
                        return current
                    dn = current or dn
        raise MigrationError(f"could not move {dn} to {parent} after {attempts} attempts: {last}")

    def step_move_to_non_sync(self) -> None:
        target = non_sync_ou_for(self.options, self.c.layout)
        current = self.current_group_dn()
        if current is None:
            raise MigrationError(f"the group {self.m.group_guid} is gone from Active Directory")
        if adc.parse_dn(current).is_within(target):
            self.log(f"{current} is already in the non-sync OU.")
            return
        moved = self._move_with_retries(current, target, settings.DL_MOVE_ATTEMPTS)
        self.log(f"Moved the group out of the sync scope: {moved}.")

    def _start_sync(self, why: str) -> None:
        if self.sync_gate is not None:  # parks the job until the batch's shared sync has started
            self.sync_gate.join(runner=self.runner, step=self.current_step, why=why)
            return
        start_delta_sync(self.c.sync, self.runner, why=why, sleep=self.sleep)

    def sync_after_roll_back(self, why: str) -> str:
        """The sync a rollback needs, not waited for; in a batch the wave's shared sync is it (a wave whose
        lists fail still costs one sync). Returns what was done, for the rollback's summary."""
        if self.sync_gate is not None:
            number = self.sync_gate.defer(runner=self.runner, why=why)
            return f"the batch's delta sync {number} was asked to run {why}"
        self.c.sync.start_sync_cycle(policy="Delta")
        return f"started a delta sync {why}"

    def step_sync_after_move(self) -> None:
        self._start_sync("so the cloud twin is deleted")

    def _failed_sync_run(self) -> str | None:
        """The newest sync run, when it stopped with an error: waiting out the deadline would only hide it."""
        try:
            runs = self.c.sync.run_history(count=1)
        except syncc.SyncError:
            return None  # the deadline still bounds the wait
        last = runs[0] if runs else None
        if last is None or not (last.result or "").lower().startswith("stopped-"):
            return None
        return f"{last.run_profile_name or 'run'} {last.run_history_id}: {last.result}"

    def _sync_running(self) -> bool:
        try:
            return self.c.sync.is_busy()
        except syncc.SyncError:
            return False  # the deadline still bounds the wait; Exchange is asked instead

    def step_wait_for_cloud_deletion(self) -> None:
        """Exchange is asked only once no sync cycle runs (the one that deletes the twin must end first),
        then at doubling intervals: a handful of reads per list, not one per poll interval."""
        twin_id = self.cloud.get("ExternalDirectoryObjectId") or self.cloud.get("Guid")
        base = settings.DL_DELETION_POLL_SECONDS
        deadline = time.monotonic() + settings.DL_DELETION_TIMEOUT_SECONDS
        # A sync server busy with cycle after cycle does not keep Exchange from being asked.
        ask_anyway = time.monotonic() + settings.DL_DELETION_TIMEOUT_SECONDS / 2
        tried_graph = False
        polls = 0
        while True:
            if polls == 0 and time.monotonic() < ask_anyway and self._sync_running():
                wait = base
            else:
                twin = self.find_list(twin_id)
                polls += 1
                if twin is None:
                    self.log(f"The cloud twin is gone after {polls} check(s).")
                    return
                if self.options.remove_twin_via_graph and not tried_graph:
                    tried_graph = True
                    try:
                        self.c.graph().delete_group(twin.external_directory_object_id or twin_id)
                        self.log("Removed the cloud twin through Graph.")
                        continue
                    except Exception as exc:  # noqa: BLE001 - the sync's own deletion is the fallback
                        self.runner.warning(f"Graph would not remove the cloud twin ({exc}); waiting for the sync.")
                if polls % 4 == 1 and (failed := self._failed_sync_run()):
                    raise MigrationError(f"the sync cycle that deletes the cloud twin failed ({failed}); nothing will "
                                         "delete it until the sync server works again (see its run history)")
                wait = min(base * 2 ** (polls - 1), max(base, 60.0))
                if polls % 5 == 0:
                    self.log(f"Still waiting for the sync to delete the cloud twin ({polls} checks).")
            if time.monotonic() >= deadline:
                raise MigrationError(f"the cloud twin still exists after {settings.DL_DELETION_TIMEOUT_SECONDS:.0f} s; "
                                     "the sync did not delete it (check the export errors and the deletion threshold)")
            self.runner.check_cancel()
            self.sleep(min(wait, max(0.0, deadline - time.monotonic())))

    def _addresses(self) -> list[str]:
        """Every address the cloud list must answer to: on-premises and cloud addresses, the X500s of
        both legacyExchangeDNs, alias@<routing domain>; the requested address as the one primary."""
        cloud = self.cloud
        alias = self.first_attr("mailNickname") or cloud.get("Alias")
        values: dict[str, str] = {}

        def add(proxy: str) -> None:
            prefix, _, address = proxy.partition(":")
            if prefix.lower() not in ("smtp", "x500") or not address:
                return
            key = f"{prefix.lower()}:{address.lower()}"
            values.setdefault(key, f"{prefix.lower() if prefix.lower() == 'smtp' else 'X500'}:{address}")

        for proxy in self.group_attr("proxyAddresses"):
            add(str(proxy))
        for proxy in cloud.get("EmailAddresses") or []:
            add(str(proxy))
        for legacy in (self.first_attr("legacyExchangeDN"), cloud.get("LegacyExchangeDN")):
            if legacy:
                add(f"X500:{legacy}")
        routing = self.options.routing_domain or cloud.get("routing_domain")
        if alias and routing:
            add(f"smtp:{alias}@{routing}")
        primary = self.m.mail.lower()
        out = [f"SMTP:{self.m.mail}"]
        out += [v for k, v in values.items() if k != f"smtp:{primary}"]
        return out

    def step_finalize_cloud_list(self) -> None:
        exchange = self.c.exchange
        ident = self.m.cloud_group_id
        name = str(self.first_attr("cn") or self.m.group_name)
        display = str(self.first_attr("displayName") or name)
        alias = str(self.first_attr("mailNickname") or self.cloud.get("Alias") or "")
        changes = {"Name": self.options.cloud_name(name), "DisplayName": self.options.cloud_name(display),
                   "Alias": alias, "EmailAddresses": self._addresses()}
        exchange.set_distribution_group(ident, changes=changes, bypass_security_group_manager_check=True)
        final = exchange.get_distribution_group(ident)
        if (final.primary_smtp_address or "").lower() != self.m.mail.lower():
            raise MigrationError(f"the cloud list's primary address is {final.primary_smtp_address}, "
                                 f"not {self.m.mail}")
        self.log(f"The cloud list is now {final.name} <{final.primary_smtp_address}> with "
                 f"{len(final.email_addresses)} addresses; primary verified.")

    def step_cloud_dependencies(self) -> None:
        deps = self.backup(BackupKind.CLOUD_DEPENDENCIES)
        exchange = self.c.exchange
        ident = self.m.cloud_group_id
        for dep in deps.get("properties", []):
            target = dep.get("guid") or dep.get("primary_smtp_address") or dep.get("identity")
            prop = dep["property"]
            try:
                if prop == "MemberOfGroup":
                    exchange.add_distribution_group_member(target, member=ident,
                                                           bypass_security_group_manager_check=True)
                elif (dep.get("recipient_type_details") or "").endswith(("Group", "RoomList")) and \
                        prop in exo.SET_DISTRIBUTION_GROUP_PARAMETERS:
                    exchange.set_distribution_group(target, changes={prop: exo.MultiValuedUpdate(add=(ident,))},
                                                    bypass_security_group_manager_check=True)
                else:
                    self.post_create_error("cloud_dependencies", f"{dep.get('name')}: set {prop} to the migrated "
                                           f"list by hand ({dep.get('recipient_type_details')})",
                                           objects=[str(target)])
                    continue
                self.log(f"Restored {prop} on {dep.get('name')}.")
            except exo.ExchangeError as exc:
                self.post_create_error("cloud_dependencies", f"{dep.get('name')} {prop}: {exc}", objects=[str(target)])
        for grant in deps.get("send_as", []):
            try:
                exchange.add_recipient_permission(ident, trustee=grant["trustee"], access_rights="SendAs")
                self.log(f"Granted SendAs to {grant['trustee']} again.")
            except exo.ExchangeError as exc:
                self.post_create_error("cloud_dependencies", f"SendAs for {grant['trustee']}: {exc}")

    def step_disable_original(self) -> None:
        directory = self.c.directory
        current = self.current_group_dn()
        original_ou = self.group["ou"]
        if current is None:
            self.log("The original group is already gone.")
            return
        if not self.options.keep_original:
            obj = directory.read(current, attributes=list(recipients.LIST_LINKS))
            # Samba refuses to delete an object still naming others in OR-Name links: clear them first.
            links = {a: None for a in recipients.LIST_LINKS if a != "member" and obj.get(a)}
            if links:
                directory.modify(current, replace=links)
            directory.delete(current)
            self.log(f"Deleted the original group {current} (its backup is kept with this migration).")
            return
        obj = directory.read_all(current)
        present = {a: None for a in recipients.EXCHANGE_ATTRIBUTES if obj.get(a)}
        directory.modify(current, replace={**present, "extensionAttribute1": STAMP,
                                           "extensionAttribute2": self.m.mail})
        cn = str(obj.first("cn") or "")
        if not cn.startswith("!"):
            current = directory.rename(current, f"!{cn}"[:64])
        self.log(f"Disabled the original: {len(present)} Exchange attributes cleared, stamped {STAMP}, renamed "
                 f"to {adc.parse_dn(current).rdn_value}.")
        if adc.parse_dn(current).parent.normalized() != adc.parse_dn(original_ou).normalized():
            try:
                current = directory.move(current, original_ou)
                self.log(f"Moved the original back to {original_ou}.")
            except adc.AdError as exc:
                self.post_create_error("disable_original", f"move the original back to {original_ou} by hand: {exc}",
                                       objects=[current])

    def _contact_address(self) -> tuple[str, str, str]:
        alias = str(self.first_attr("mailNickname") or self.cloud.get("Alias"))
        domain = self.m.mail.split("@", 1)[1]
        routing = self.options.routing_domain or self.cloud.get("routing_domain") or ""
        return f"{alias}-{STAMP}", f"{alias}-{STAMP}@{domain}", f"{alias}@{routing}"

    def step_routing_contact(self) -> None:
        directory = self.c.directory
        contact_alias, contact_mail, target = self._contact_address()
        existing = recipients.find_contact_by_address(directory, contact_mail)
        if existing is not None:
            self.save(contact_dn=existing.dn)
            self.log(f"The routing contact exists: {existing.dn}.")
            return
        dn = directory.create_contact(parent=self.group["ou"], name=contact_alias, display_name=contact_alias,
                                      alias=contact_alias, mail=contact_mail,
                                      attributes={"targetAddress": f"SMTP:{target}",
                                                  "msExchHideFromAddressLists": True,
                                                  "extensionAttribute1": STAMP,
                                                  "extensionAttribute2": self.m.mail})
        self.save(contact_dn=dn)
        self.log(f"Created the routing contact {contact_mail} → {target}.")

    def step_hybrid_mail_flow(self) -> None:
        if not self.options.hybrid_mail_flow:
            self.log("Hybrid mail flow not requested; on-premises senders reach the list through the contact only.")
            return
        self.enable_hybrid_mail_flow()

    def enable_hybrid_mail_flow(self) -> None:
        """Mail-enable the contact on-premises and create the dynamic list with the original name and
        addresses that expands to it (shared with 'enable hybrid mail flow' after a migration)."""
        directory = self.c.directory
        onprem = self.c.onprem()
        contact_alias, contact_mail, _ = self._contact_address()
        onprem.update_recipient(self.m.contact_dn)
        existing = recipients.find_dynamic_list_by_address(directory, self.m.mail)
        if existing is None:
            name = str(self.first_attr("cn") or self.m.group_name)
            ddl = onprem.new_dynamic_distribution_group(
                name=name, alias=str(self.first_attr("mailNickname")),
                recipient_filter=exo.opath_eq("Alias", contact_alias),
                organizational_unit=self.group["ou"], recipient_container=self.group["ou"],
                primary_smtp_address=self.m.mail, display_name=str(self.first_attr("displayName") or name))
            dn = ddl.distinguished_name or ""
        else:
            dn = existing.dn
        # Never the tenant's onmicrosoft.com addresses: on-premises they would capture the mail the contact
        # sends to alias@<tenant>.mail.onmicrosoft.com and loop it back to this dynamic list.
        addresses = [f"SMTP:{self.m.mail}"] + [
            str(p) for p in self.group_attr("proxyAddresses")
            if str(p).lower() != f"smtp:{self.m.mail.lower()}" and (
                str(p)[:5].lower() == "x500:"
                or str(p)[:5].lower() == "smtp:" and not str(p).lower().endswith(".onmicrosoft.com"))]
        legacy = self.first_attr("legacyExchangeDN")
        if legacy and f"X500:{legacy}".lower() not in {a.lower() for a in addresses}:
            addresses.append(f"X500:{legacy}")
        onprem.set_dynamic_distribution_group(dn, changes={"EmailAddresses": addresses})
        self.save(dynamic_list_dn=dn)
        self.log(f"Hybrid mail flow: {self.m.mail} on-premises is the dynamic list {dn}, which expands to "
                 f"{contact_mail} and on to Exchange Online.")

    def step_onprem_dependencies(self) -> None:
        directory = self.c.directory
        contact = self.m.contact_dn
        deps = self.backup(BackupKind.ONPREM_DEPENDENCIES)
        original = self.current_group_dn()
        for attribute, dns in deps.items():
            for dn in dns:
                try:
                    if attribute == "member":
                        # The kept original stays a member where it was (permission nesting); mail goes
                        # through the contact.
                        directory.modify(dn, add={"member": [contact]})
                    elif attribute == "managedBy":
                        self.post_create_error("onprem_dependencies", f"{dn} is managed by the migrated list; "
                                               "a contact cannot manage it: choose a new manager", objects=[dn])
                        continue
                    elif attribute == "altRecipient":  # single-valued: forwarding now goes through the contact
                        directory.modify(dn, replace={attribute: contact})
                    else:
                        change: dict[str, Any] = {"add": {attribute: [contact]}}
                        if original:
                            change["delete"] = {attribute: [original]}
                        directory.modify(dn, **change)
                    self.log(f"{dn}: {attribute} now names the routing contact.")
                except (adc.ValueExists, adc.NoSuchValue):
                    continue  # done by an earlier, interrupted run
                except adc.AdError as exc:
                    self.post_create_error("onprem_dependencies", f"{dn} {attribute}: {exc}", objects=[dn])

    def step_child_lists(self) -> None:
        if not self.options.skip_nested_group_check:
            return
        children = [m for m in self.backup(BackupKind.ONPREM_MEMBERS)["members"]
                    if m["kind"] == "group" and m["mail"] and m["cloud_identity"]]
        for child in children:
            try:
                added = self.c.exchange.add_distribution_group_member(self.m.cloud_group_id,
                                                                      member=child["cloud_identity"],
                                                                      bypass_security_group_manager_check=True)
                self.log(f"Child list {child['mail']} {'added to' if added else 'already in'} the cloud list "
                         "(it stays on-premises).")
            except exo.ExchangeError as exc:
                self.post_create_error("child_lists", f"add {child['mail']}: {exc}", objects=[child["dn"]])

    def step_final_sync(self) -> None:
        if self.sync_gate is not None:  # published by the batch's next shared sync, not waited for
            self.sync_gate.defer(runner=self.runner, why="to publish the routing contact and the changed "
                                                         "dependencies")
            return
        self._start_sync("to publish the routing contact and the changed dependencies")
        # The report reads the end state: wait for the cycle, so it describes what the sync produced.
        if not self.c.sync.wait_until_idle(timeout=settings.DL_DELETION_TIMEOUT_SECONDS,
                                           poll=min(2.0, settings.DL_DELETION_POLL_SECONDS)):
            self.runner.warning("The final sync cycle is still running; the report may predate it.")

    def step_report(self) -> None:
        exchange = self.c.exchange
        final = exchange.get_distribution_group(self.m.cloud_group_id)
        members = {(r.primary_smtp_address or "").lower() for r in
                   exchange.iter_distribution_group_members(self.m.cloud_group_id)}
        expected = {i.lower() for i in self._member_identities()}
        if self.options.skip_nested_group_check:
            expected |= {m["cloud_identity"].lower() for m in self.backup(BackupKind.ONPREM_MEMBERS)["members"]
                         if m["kind"] == "group" and m["mail"] and m["cloud_identity"]}
        missing = sorted(expected - members)
        cloud_before = {a.lower() for a in self.cloud.get("EmailAddresses") or []}
        now = {a.lower() for a in final.email_addresses}
        lost_addresses = sorted(a for a in cloud_before if a not in now and a.startswith(("smtp:", "x500:")))
        comparison = []
        for prop in ("ModerationEnabled", "HiddenFromAddressListsEnabled", "RequireSenderAuthenticationEnabled",
                     "MemberJoinRestriction", "MemberDepartRestriction"):
            before, after = self.cloud.get(prop), final.raw.get(prop)
            comparison.append({"property": prop, "before": before, "after": after, "same": before == after})
        for prop in ("ManagedBy", "AcceptMessagesOnlyFromSendersOrMembers", "RejectMessagesFromSendersOrMembers",
                     "ModeratedBy", "BypassModerationFromSendersOrMembers", "GrantSendOnBehalfTo"):
            before = sorted(str(v).lower() for v in self.cloud.get(prop) or [])
            after = sorted(str(v).lower() for v in final.raw.get(prop) or [])
            comparison.append({"property": prop, "before": len(before), "after": len(after),
                               "same": before == after})
        if missing:
            self.post_create_error("report", f"{len(missing)} member(s) missing from the cloud list", objects=missing)
        if lost_addresses:
            self.post_create_error("report", "addresses of the cloud twin missing on the new list",
                                   objects=lost_addresses)
        for row in comparison:
            if not row["same"]:
                self.runner.warning(f"{row['property']} differs from the cloud twin: {row['before']} → {row['after']}")
        report = {
            "list": {"name": final.name, "primary_smtp_address": final.primary_smtp_address,
                     "addresses": list(final.email_addresses), "guid": final.guid,
                     "external_directory_object_id": final.external_directory_object_id,
                     "is_dir_synced": final.is_dir_synced},
            "members": {"expected": len(expected), "found": len(members), "missing": missing[:100]},
            "addresses_lost": lost_addresses, "comparison": comparison,
            "contact_dn": self.m.contact_dn, "dynamic_list_dn": self.m.dynamic_list_dn,
            # Under its real DN: kept, it was renamed with '!' (and moved back to its OU).
            "original": {"dn": (self.current_group_dn() if self.options.keep_original else None) or self.group["dn"],
                         "kept": self.options.keep_original, "dn_before": self.group["dn"]},
            "post_create_errors": self.post_create_errors,
        }
        self.save(report=report)
        self.log(f"Report: {len(members)} members in the cloud list, {len(final.email_addresses)} addresses, "
                 f"{sum(1 for r in comparison if r['same'])}/{len(comparison)} settings as before.")

    # -- rollback -----------------------------------------------------------------------------
    def roll_back(self, *, reason: str, cancelled: bool = False) -> None:
        """Undo what the steps before the point of no return did. Runs shielded: no cancel interrupts it."""
        self.runner.error(f"Rolling back: {reason}")
        undone: list[str] = []
        problems: list[str] = []
        if self.m.group_guid is None or not MigrationBackup.objects.filter(migration=self.m).exists():
            self.runner.info("Nothing had been changed yet; nothing to undo.")
            self.save(status=MigrationStatus.CANCELLED if cancelled else MigrationStatus.FAILED,
                      finished_at=timezone.now())
            self.runner.summary = ("Cancelled before anything was changed." if cancelled
                                   else f"Failed before anything was changed: {reason}")
            return
        exchange = self.c.exchange
        for ident in filter(None, {self.m.cloud_group_id, self.temp_address}):
            found = self.find_list(ident)
            if found is not None and not found.is_dir_synced:
                try:
                    exchange.remove_distribution_group(found.guid or ident, bypass_security_group_manager_check=True)
                    undone.append(f"removed the cloud list {found.primary_smtp_address}")
                except exo.ExchangeError as exc:
                    problems.append(f"remove the cloud list {found.primary_smtp_address}: {exc}")
                break
        try:
            current = self.current_group_dn()
            original_ou = self.group["ou"]
            if current and adc.parse_dn(current).parent.normalized() != adc.parse_dn(original_ou).normalized():
                self.c.directory.move(current, original_ou)
                undone.append(f"moved the group back to {original_ou}")
        except adc.AdError as exc:
            problems.append(f"move the group back to its OU: {exc}")
        if any("moved the group back" in u for u in undone):
            try:
                undone.append(self.sync_after_roll_back("so the cloud twin returns"))
            except syncc.SyncError as exc:
                self.runner.warning(f"Could not start a sync ({exc}); the next scheduled cycle brings the twin back.")
        for line in undone:
            self.runner.warning(f"Undone: {line}.")
        if problems:
            for line in problems:
                self.runner.error(f"Could not undo: {line}. Do it by hand.")
            self.save(status=MigrationStatus.FAILED, finished_at=timezone.now())
            self.runner.summary = f"Failed, and the roll back was incomplete: {'; '.join(problems)}."
        elif cancelled:
            self.save(status=MigrationStatus.CANCELLED, finished_at=timezone.now())
            self.runner.summary = (f"Cancelled and rolled back: {'; '.join(undone)}." if undone
                                   else "Cancelled before anything was changed.")
        elif undone:
            self.save(status=MigrationStatus.ROLLED_BACK, finished_at=timezone.now())
            self.runner.summary = f"Rolled back: {'; '.join(undone)}. Cause: {reason}"
        else:
            self.save(status=MigrationStatus.FAILED, finished_at=timezone.now())
            self.runner.summary = f"Failed before anything was changed: {reason}"


__all__ = ["STEPS", "POINT_OF_NO_RETURN", "Connectors", "MigrationError", "MigrationProcess", "open_connectors",
           "run_preflight"]
