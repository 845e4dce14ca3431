"""The cut-over: the group leaves the sync scope, the sync deletes its cloud twin, the temporary list takes its
place and its dependencies, and the original is disabled (the point of no return)."""

from __future__ import annotations

import time

from django.conf import settings

from portal.connectors import ad as adc
from portal.connectors import exchange as exo
from portal.connectors import sync as syncc
from portal.connectors.ad import recipients

from ..choices import BackupKind
from ..models import MigrationBackup
from .common import (
    CLOUD_DEPENDENCY_PROPERTIES,
    DEPENDENTS_PENDING,
    STAMP,
    MigrationError,
    dependent_rows,
    non_sync_ou_for,
    start_delta_sync,
)


class CutoverSteps:
    """Mixed into MigrationProcess (process.py), whose helpers these steps use."""

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
        if self.sync_gate is not None:
            self._wave_dependents()

    def _wave_dependents(self) -> None:
        """Resumed after the batch's sync started: what the wave's search of cloud dependencies found for this list
        (scan_wave_dependents). Found unsearched (never expected), the list searches now: its twin is deleted only
        once the cycle has run and Exchange has caught up."""
        self._backups = None
        backup = MigrationBackup.objects.filter(migration=self.m, kind=BackupKind.CLOUD_DEPENDENCIES).first()
        if backup is None:  # nothing was backed up (a process without a backup step): nothing to restore
            return
        deps = backup.data
        if deps.get("dependents") == DEPENDENTS_PENDING:
            self.runner.warning("The batch's sync started before this list's cloud dependencies were searched; "
                                "searching them now.")
            found, refused = self.c.exchange.find_dependents(
                attributes=CLOUD_DEPENDENCY_PROPERTIES, cloud_only=True,
                dn_or_id=self.cloud.get("DistinguishedName") or self.m.mail)
            deps = {**deps, "properties": [*deps.get("properties", []), *dependent_rows(found)],
                    "dependents": "searched", "unsearched": refused}
            with self.runner.fenced():
                MigrationBackup.objects.filter(pk=backup.pk).update(data=deps)
        self.warn_unsearched(deps.get("unsearched") or {})
        rows = [d for d in deps.get("properties", []) if d.get("property") != "MemberOfGroup"]
        self.log(f"Cloud dependencies searched with the wave's lists: {len(rows)} found.")

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
            elif polls == 0 and self._gone_with_wave(twin_id):
                self.log("The cloud twin is gone (read with its wave's other twins after the batch's sync).")
                return
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

    def _gone_with_wave(self, twin_id: str | None) -> bool:
        """In a batch: one read of the wave's twins serves every list of the wave (batch_sync.twin_gone)."""
        if self.sync_gate is None or not twin_id or twin_id != self.cloud.get("ExternalDirectoryObjectId"):
            return False
        return self.sync_gate.twin_gone(runner=self.runner, step="sync_after_move", twin_id=twin_id,
                                        present=self.c.exchange.distribution_groups_present)

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
        # No later step changes the list's own properties: the report reads them from here (this run only).
        self._finalized = final
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
