"""Before anything changes: the preflight again, the backup of both directories, the temporary cloud list with
the twin's settings and members."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from portal.connectors import ad as adc
from portal.connectors import exchange as exo
from portal.connectors import graph as graphc
from portal.jobs.runner import JobFailed

from .. import read_once
from ..choices import BackupKind
from ..inspection import inspect_list
from ..models import MigrationBackup
from ..preflight import plan_differences
from .common import (
    CLOUD_DEPENDENCY_PROPERTIES,
    DEPENDENTS_PENDING,
    MigrationError,
    _facts_dict,
    _recipient_dict,
    dependent_rows,
    object_backup,
    run_preflight,
)


class PrepareSteps:
    """Mixed into MigrationProcess (process.py), whose helpers these steps use."""

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
        if facts.graph_error:
            self.runner.warning(f"Graph could not list the cloud twin's members ({facts.graph_error}); Exchange "
                                "Online did.")
        self._facts = facts
        group = facts.group
        assert group is not None and group.guid is not None
        self.save(group_guid=group.guid, group_name=str(group.first("cn") or ""), original_dn=group.dn)
        self.log(f"Preflight passed for {group.dn} ({len(facts.members)} members).")

    def step_backup(self) -> None:
        facts = getattr(self, "_facts", None)
        if facts is None:  # resumed between preflight and backup: read again, nothing has changed yet
            facts = inspect_list(mail=self.m.mail, directory=self.c.directory, exchange=self.c.exchange,
                                 graph=self.c.graph)
        if facts.group is None or facts.twin is None:
            raise MigrationError(f"{self.m.mail} is no longer a synced list; nothing was changed")
        full = self.c.directory.read_all(facts.group.dn)
        twin = facts.twin
        exchange = self.c.exchange
        cloud_deps: list[dict[str, Any]] = []
        scan: dict[str, Any] = {}
        if self.sync_gate is None:
            found, refused = exchange.find_dependents(attributes=CLOUD_DEPENDENCY_PROPERTIES, cloud_only=True,
                                                      dn_or_id=twin.distinguished_name or self.m.mail)
            self.warn_unsearched(refused)
            cloud_deps += dependent_rows(found)
        else:
            # In a batch the wave's lists are searched together (batch_sync), after their moves and just before
            # the delta sync that deletes their twins: a handful of reads per wave instead of four per list.
            scan = {"dependents": DEPENDENTS_PENDING}
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
            BackupKind.CLOUD_DEPENDENCIES: {"properties": cloud_deps, "send_as": send_as, **scan},
        }
        with self.runner.fenced():
            for kind, data in docs.items():
                MigrationBackup.objects.update_or_create(migration=self.m, kind=kind, defaults={"data": data})
        self._backups = None
        self.log(f"Backed up {full.dn}: {len(full.attributes)} attributes, {len(facts.members)} members, "
                 f"{sum(len(v) for v in facts.dependencies.values())} on-premises and {len(cloud_deps) + len(send_as)} "
                 "cloud dependencies.")

    def warn_unsearched(self, refused: dict[str, str]) -> None:
        for prop, reason in refused.items():  # a property this tenant cannot filter on: say so, go on
            self.runner.warning(f"Cloud dependencies by {prop} could not be searched: {reason}")

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
        members = self._member_identities()
        created = dict(
            name=f"MigTemp-{short}", alias=f"migtemp-{short}", primary_smtp_address=self.temp_address,
            display_name=f"MigTemp-{short}", group_type=group_type,
            room_list=cloud.get("RecipientTypeDetails") == "RoomList",
            notes=f"Temporary list of the DirOps migration #{self.m.pk} of {self.m.mail}",
            require_sender_authentication_enabled=wanted.get("RequireSenderAuthenticationEnabled", True),
            member_join_restriction=wanted.get("MemberJoinRestriction", "Closed"),
            member_depart_restriction=wanted.get("MemberDepartRestriction", "Closed"),
        )
        # Created straight away, with its members: only a run resumed after this point finds it made already
        # (one read then, none on every first run). The settings and the members New-DistributionGroup takes
        # are given to it, not set after (one call instead of two).
        with_members = bool(members)
        try:
            try:
                temp = exchange.new_distribution_group(members=members, **created)  # type: ignore[arg-type]
            except exo.ExchangeError as exc:
                if not with_members or isinstance(exc, (exo.AlreadyExists, exo.Unreachable, exo.Throttled,
                                                        exo.ServiceUnavailable, exo.OutcomeUnknown)):
                    raise
                # A member it refused refuses the whole list: made without them, the members are set after.
                self.runner.warning(f"Creating the temporary list with its members was refused ({exc}); creating "
                                    "it empty and adding them after.")
                with_members = False
                temp = exchange.new_distribution_group(**created)  # type: ignore[arg-type]
            self.log(f"Created the temporary cloud list {self.temp_address}"
                     + (f" with its {len(members)} members." if with_members else "."))
        except exo.AlreadyExists:
            found = self.find_list(self.temp_address)
            if found is None:
                raise
            temp = found
            with_members = False  # an earlier run may have made it empty: its members are set again
            self.log(f"The temporary cloud list {self.temp_address} exists already (an earlier run made it).")
        self.save(cloud_group_id=temp.external_directory_object_id or temp.guid or "")
        if members and not with_members:
            self._set_members(temp, members)
        # What the new list has already (New-DistributionGroup's answer) is not written again; often nothing is left.
        changes = {k: v for k, v in wanted.items() if isinstance(v, list) or temp.raw.get(k) != v}
        if changes:
            exchange.set_distribution_group(temp.guid or self.temp_address, changes=changes,
                                            bypass_security_group_manager_check=True)
        self.log(f"Applied {len(wanted)} settings to the temporary list ({len(changes)} differed from its defaults).")

    def _set_members(self, temp: exo.DistributionGroup, members: list[str]) -> None:
        """The whole membership in one call (Update-DistributionGroupMember); refused, one by one."""
        exchange = self.c.exchange
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
