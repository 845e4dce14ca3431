"""Jobs of Address repair."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from django.conf import settings

from portal.connectors.ad import AdError
from portal.connectors.exchange import ExchangeError
from portal.connectors.graph import GraphError
from portal.connectors.registry import (
    NotConfigured,
    active_directory,
    ad_layout,
    entra_connect,
    entra_graph,
    exchange_online,
)
from portal.connectors.sync import SyncError
from portal.heap import frozen_heap
from portal.jobs.runner import JobCancelled, JobFailed, JobRunner

from ..models import AddressFix, AddressScan
from .collect import (
    AD_ATTRIBUTES,
    exchange_cloud_managed_ids,
    read_export_errors,
    read_scope,
    read_tenant,
    read_tenant_contacts,
)
from .exchange_values import read_values, write_values
from .fixes import (
    APPLY_JOB,
    EXCHANGE,
    UNDO_JOB,
    VERIFY_JOB,
    FixRefused,
    _wanted,
    check_can_apply,
    check_can_verify,
    current_values,
    do_finish_apply,
    do_finish_undo,
    do_finish_verify,
    do_save_backup,
    exchange_wanted,
    stored_plan,
)
from .fixplan import drift, verify_change
from .rules import ScanConfig, Scanner
from .selectors import scan_of_job
from .services import SCAN_JOB, do_begin_scan, do_fail_scan, do_finish_scan, do_store_findings

PAGE = 500  # objects per stored batch and progress line


class AddressScanJob(JobRunner):
    """Reads the tenant, then streams the sync scope through the rules; findings are stored page by page."""

    kind = SCAN_JOB
    name = "Address scan"
    permission = "diagnostics_app.run_address_scan"
    object_noun = "Address scan"

    @classmethod
    def object_of(cls, job) -> AddressScan | None:
        return scan_of_job(job)

    def run(self) -> dict[str, Any]:
        scope = list(ad_layout().sync_ous)
        if not scope:
            raise JobFailed("No sync OUs are configured (AD_SYNC_OUS): there is nothing in sync scope to scan.")
        with self.fenced():
            scan = do_begin_scan(job=self.job, user=self.job.user, scope=scope)
        try:
            return self._scan(scan, scope)
        except (NotConfigured, GraphError, AdError) as exc:
            with self.shield(), self.fenced():
                do_fail_scan(scan=scan, message=str(exc))
            raise JobFailed(f"The scan stopped: {exc}") from None
        except JobCancelled:
            with self.shield(), self.fenced():
                do_fail_scan(scan=scan, message="Cancelled before it finished: the findings stored so far are partial.")
            raise

    def _scan(self, scan: AddressScan, scope: list[str]) -> dict[str, Any]:
        self.info("Reading the tenant (verified domains, users, groups, Exchange Online's contacts)…")
        tenant = []
        cloud_managed_mailboxes: set[str] = set()
        try:
            with exchange_online() as exchange:
                cloud_managed_mailboxes = exchange_cloud_managed_ids(exchange)
                tenant += read_tenant_contacts(exchange)
            self.info(f"Exchange Online: {len(tenant):,} contact(s) created in the cloud, "
                      f"{len(cloud_managed_mailboxes):,} mailbox(es) with cloud-managed Exchange attributes.")
        except (NotConfigured, ExchangeError) as exc:
            self.warning(f"Exchange Online not read ({exc}): its contacts are not scanned and cloud-managed "
                         "mailboxes are not recognised.")
        with entra_graph() as graph:
            verified, initial = graph.verified_domains()
            for obj in read_tenant(graph, exchange_cloud_managed=cloud_managed_mailboxes):
                tenant.append(obj)
                if len(tenant) % 5_000 == 0:
                    self.info(f"{len(tenant):,} tenant objects read…")
                    self.check_cancel()
        self.info(f"{len(tenant):,} tenant objects; verified domains: {', '.join(verified) or 'none'}.")
        export_errors = []
        try:
            with entra_connect() as sync:
                export_errors = read_export_errors(sync)
            self.info(f"{len(export_errors)} export error(s) reported by the sync server today.")
        except (NotConfigured, SyncError) as exc:
            self.warning(f"Export errors not read from the sync server ({exc}); the predictions stand alone.")
        attribute = settings.ADDRESS_REPAIR_CERTIFICATE_ATTRIBUTE or None
        config = ScanConfig(verified_domains=verified, initial_domain=initial or "",
                            certificate_attribute=attribute,
                            extra_tlds=tuple(settings.ADDRESS_REPAIR_EXTRA_TLDS),
                            export_errors=tuple(export_errors))
        scanner = Scanner(config, tenant)
        attributes = AD_ATTRIBUTES + ((attribute,) if attribute else ())
        self.info(f"Reading the sync scope: {'; '.join(scope)}")
        pending, stored = [], 0
        # The tenant and the process's own heap live through the scan: collections leave them out (portal/heap.py).
        with frozen_heap(), active_directory() as directory:
            for entry in read_scope(directory, bases=scope, attributes=attributes):
                pending += scanner.feed(entry)
                if scanner.seen % PAGE == 0:
                    with self.fenced():
                        stored += do_store_findings(scan=scan, findings=pending)
                    pending = []
                    self.progress(scanner.seen)
                    self.check_cancel()
        self.info(f"{scanner.seen:,} objects read; looking for duplicates across the scope and the tenant…")
        pending += scanner.finish()
        with self.fenced():
            stored += do_store_findings(scan=scan, findings=pending)
            scan = do_finish_scan(scan=scan, objects_read=scanner.seen, cloud_objects_read=len(tenant),
                                  skipped=scanner.skipped)
        self.progress(scanner.seen, scanner.seen)
        severity = scan.counts.get("severity", {})
        self.success(f"Scan #{scan.pk}: {scan.findings_total:,} findings ({severity.get('error', 0):,} errors, "
                     f"{severity.get('warning', 0):,} warnings, {severity.get('info', 0):,} information) over "
                     f"{scanner.seen:,} objects; {scan.skipped_total:,} skipped as IdFix skips them; "
                     f"{scan.gone_total:,} gone since the last scan.")
        self.summary = f"Address scan #{scan.pk}: {scan.findings_total:,} findings over {scanner.seen:,} objects."
        return {"scan": scan.pk, "objects": scanner.seen, "tenant_objects": len(tenant),
                "findings": scan.findings_total, "gone": scan.gone_total, "skipped": scan.skipped_total,
                "counts": scan.counts, "url": scan.get_absolute_url()}


def _same(values) -> list[str]:
    return sorted(v.lower() for v in values)


def _by_object(changes) -> dict[str, list]:
    grouped: dict[str, list] = {}
    for change in changes:
        grouped.setdefault(change.dn, []).append(change)
    return grouped


class _Targets:
    """The directories one fix writes to: AD, and Exchange Online for cloud-managed objects and tenant contacts.
    ``current`` reads the planned attributes of every planned object, each from its own directory; ``write``
    changes one object with one call (one atomic LDAP modify, or one Set-* cmdlet)."""

    def __init__(self, changes, stack: ExitStack) -> None:
        self.changes = list(changes)
        self.directory = stack.enter_context(active_directory()) if any(c.target == "ad" for c in self.changes) \
            else None
        self.exchange = stack.enter_context(exchange_online()) if any(c.target == EXCHANGE for c in self.changes) \
            else None
        self.identity = {c.dn: c.identity for c in self.changes if c.target == EXCHANGE}
        self.kinds: dict[str, str] = {}

    def current(self) -> dict[str, dict[str, list[str]]]:
        values: dict[str, dict[str, list[str]]] = {}
        in_ad = [c for c in self.changes if c.target == "ad"]
        if in_ad:
            values.update(current_values(self.directory, _wanted((c.dn, c.attribute) for c in in_ad)))
        in_exchange = [c for c in self.changes if c.target == EXCHANGE]
        if in_exchange:
            online, kinds = read_values(self.exchange, exchange_wanted((c.dn, c.identity, c.attribute)
                                                                       for c in in_exchange))
            values.update(online)
            self.kinds.update(kinds)
        return values

    def write(self, dn: str, replace: dict[str, list[str]]) -> str:
        if dn in self.identity:
            write_values(self.exchange, identity=self.identity[dn], recipient_type_details=self.kinds.get(dn, ""),
                         replace=replace)
            return "Exchange Online"
        self.directory.modify(dn, replace=replace)
        return "AD"


class _AddressFixObjectJob(JobRunner):
    """Jobs about one address fix (params fix): their page names it and links to it."""

    object_noun = "Address fix"

    @classmethod
    def object_of(cls, job) -> AddressFix | None:
        return AddressFix.objects.filter(pk=(job.params or {}).get("fix")).only("id").first()


class AddressFixApplyJob(_AddressFixObjectJob):
    """Applies exactly the approved plan: objects whose values changed since the plan are skipped and reported;
    the values of the others are backed up before the first write; one atomic change per object, in AD or, for a
    cloud-managed object or a tenant contact, in Exchange Online."""

    kind = APPLY_JOB
    name = "Address fix"
    permission = "diagnostics_app.plan_address_fix"

    def run(self) -> dict[str, Any]:
        fix = AddressFix.objects.get(pk=self.job.params["fix"])
        try:
            check_can_apply(fix=fix)
        except FixRefused as exc:
            with self.shield(), self.fenced():
                do_finish_apply(fix=fix, applied=[], skipped=[], failed=str(exc))
            raise JobFailed(str(exc)) from None
        plan = stored_plan(fix)
        applied: list[dict] = []
        skipped: list[dict] = []
        try:
            with ExitStack() as stack:
                targets = _Targets(plan.changes, stack)
                current = targets.current()
                drifted = {c.dn.lower() for c in drift(plan, current)}
                todo = {dn: changes for dn, changes in _by_object(plan.changes).items() if dn.lower() not in drifted}
                for dn in sorted({c.dn for c in plan.changes if c.dn.lower() in drifted}):
                    why = "the object is gone" if dn not in current else "its values changed since the plan"
                    skipped.append({"dn": dn, "why": why})
                    self.warning(f"Skipped {dn}: {why}; nothing is written to it.")
                backup = {dn: {c.attribute: current[dn].get(c.attribute, []) for c in changes}
                          for dn, changes in todo.items()}
                with self.fenced():
                    do_save_backup(fix=fix, backup=backup)
                self.info(f"Backed up the current values of {len(backup)} object(s) before any change.")
                for number, (dn, changes) in enumerate(sorted(todo.items()), start=1):
                    self.check_cancel()
                    with self.shield():
                        where = targets.write(dn, {c.attribute: list(c.after) for c in changes})
                    applied.append({"dn": dn, "attributes": [c.attribute for c in changes], "target": where})
                    self.info(f"{dn} ({where}): " + "; ".join(f"{c.attribute} = {', '.join(c.after) or '(cleared)'}"
                                                              for c in changes))
                    self.progress(number, len(todo))
        except (AdError, ExchangeError, NotConfigured) as exc:
            with self.shield(), self.fenced():
                do_finish_apply(fix=fix, applied=applied, skipped=skipped, failed=str(exc))
            raise JobFailed(f"A change was refused after {len(applied)} object(s): {exc}. The backup is kept; "
                            "undo restores what was changed.") from None
        with self.fenced():
            fix = do_finish_apply(fix=fix, applied=applied, skipped=skipped)
        self.summary = (f"Address fix #{fix.pk}: {len(applied)} object(s) changed, {len(skipped)} skipped. The next "
                        "sync cycle takes AD's values to the cloud; Exchange Online's apply at once; the next scan "
                        "shows the findings gone.")
        self.success(self.summary)
        return {"fix": fix.pk, "applied": applied, "skipped": skipped, "url": fix.get_absolute_url()}


class AddressFixUndoJob(_AddressFixObjectJob):
    """Writes the backed-up values back, except on an object changed since the fix (reported, not overwritten)."""

    kind = UNDO_JOB
    name = "Undo address fix"
    permission = "diagnostics_app.plan_address_fix"

    def run(self) -> dict[str, Any]:
        fix = AddressFix.objects.get(pk=self.job.params["fix"])
        plan = stored_plan(fix)
        planned = {(c.dn.lower(), c.attribute.lower()): c.after for c in plan.changes}
        restored, kept = [], []
        backed_up = [c for c in plan.changes if c.dn in fix.backup]
        try:
            with ExitStack() as stack:
                targets = _Targets(backed_up, stack)
                current = targets.current()
                for dn, attrs in sorted(fix.backup.items()):
                    now = current.get(dn)
                    # Untouched since the fix: each attribute holds what the fix wrote, or still what it had before
                    # (an apply stopped half-way). Anything else is someone's later change and is not overwritten.
                    changed = now is None or any(
                        _same(now.get(a, [])) not in (_same(planned.get((dn.lower(), a.lower()), ())),
                                                      _same(values))
                        for a, values in attrs.items())
                    if changed:
                        kept.append(dn)
                        self.warning(f"{dn} changed since the fix (or is gone): not overwritten.")
                        continue
                    self.check_cancel()
                    with self.shield():
                        where = targets.write(dn, {a: list(values) for a, values in attrs.items()})
                    restored.append({"dn": dn, "attributes": sorted(attrs), "target": where})
                    self.info(f"{dn} ({where}): restored " + ", ".join(sorted(attrs)))
        except (AdError, ExchangeError, NotConfigured) as exc:
            raise JobFailed(f"Undo stopped after {len(restored)} object(s): {exc}") from None
        with self.fenced():
            fix = do_finish_undo(fix=fix, restored=restored)
        self.summary = (f"Address fix #{fix.pk} undone: {len(restored)} object(s) restored, {len(kept)} left as "
                        "they are.")
        self.success(self.summary)
        return {"fix": fix.pk, "restored": restored, "kept": kept}


class AddressFixVerifyJob(_AddressFixObjectJob):
    """After the apply: a delta sync cycle on the Entra Connect server, then each applied object's cloud copy
    compared with the planned values; the result is stored on the fix."""

    kind = VERIFY_JOB
    name = "Verify address fix"
    permission = "diagnostics_app.plan_address_fix"

    def run(self) -> dict[str, Any]:
        fix = AddressFix.objects.get(pk=self.job.params["fix"])
        try:
            check_can_verify(fix=fix, user=self.job.user)
        except FixRefused as exc:
            raise JobFailed(str(exc)) from None
        wait = float(settings.ADDRESS_REPAIR_VERIFY_SYNC_TIMEOUT)
        applied = {a["dn"].lower() for a in fix.report.get("applied", [])}
        changes = [c for c in stored_plan(fix).changes if c.dn.lower() in applied]
        in_ad = [c for c in changes if c.target == "ad"]
        try:
            sync_note = "no sync needed: every change was made in Exchange Online"
            if in_ad:
                self._delta_sync(wait)
                sync_note = "delta sync cycle finished"
                self.info("The delta sync finished; reading the cloud objects…")
            results: list[dict] = []
            with ExitStack() as stack:
                directory = stack.enter_context(active_directory()) if in_ad else None
                graph = stack.enter_context(entra_graph()) if in_ad else None
                exchange = _Lazy(stack, exchange_online)  # opened only for a group, a contact or an EXO change
                upns = current_values(directory, {dn: {"userPrincipalName", "objectClass", "mail", "proxyAddresses"}
                                                  for dn in {c.dn for c in in_ad}}) if in_ad else {}
                for number, change in enumerate(changes, start=1):
                    self.check_cancel()
                    ok, text = verify_change(change, self._cloud_of(change, upns.get(change.dn), graph, exchange))
                    results.append({"dn": change.dn, "attribute": change.attribute, "ok": ok, "text": text})
                    (self.info if ok else self.warning)(text)
                    self.progress(number, len(changes))
        except (SyncError, GraphError, AdError, ExchangeError, NotConfigured) as exc:
            raise JobFailed(f"Verification stopped: {exc}") from None
        with self.fenced():
            fix = do_finish_verify(fix=fix, job=self.job, sync=sync_note, results=results)
        bad = sum(1 for r in results if r["ok"] is False)
        self.summary = (f"Address fix #{fix.pk}: the cloud shows the planned values" if fix.report["verification"]
                        ["verified"] else f"Address fix #{fix.pk}: {bad} planned value(s) not in the cloud yet")
        (self.success if not bad else self.warning)(self.summary)
        return {"fix": fix.pk, "verified": fix.report["verification"]["verified"], "results": results}

    def _delta_sync(self, wait: float) -> None:
        with entra_connect() as sync:
            if not sync.wait_until_idle(timeout=wait):
                raise JobFailed(f"A sync cycle was still running after {wait:.0f} s; verify again later.")
            started = sync.start_sync_cycle(policy="Delta")
            self.info(f"Delta sync cycle started ({getattr(started, 'result', '') or 'accepted'}); waiting "
                      "for it to finish…")
            with self.shield():
                if not sync.wait_until_idle(timeout=wait):
                    raise JobFailed(f"The delta sync did not finish within {wait:.0f} s; nothing was compared.")

    def _cloud_of(self, change, ad: dict | None, graph, exchange) -> dict | None:
        """The cloud copy of a changed object, in the names verify_change compares: a user by its UPN in Graph;
        a group or a contact by its addresses in Exchange Online (Graph has no lookup by the on-premises DN);
        an Exchange Online change by the recipient's object id."""
        if change.target == EXCHANGE:
            return _recipient_values(exchange.get(), [change.identity or ""])
        ad = ad or {}
        classes = {c.lower() for c in ad.get("objectClass", [])}
        upn = next(iter(ad.get("userPrincipalName", [])), None)
        if upn and not classes & {"group", "contact"}:  # only users have a UPN
            return self._cloud(graph, upn)
        # Today's AD addresses first (what the fix wrote), then what it had before: a change that did not arrive
        # leaves the object findable by its old addresses, and the comparison then says what is missing.
        addresses = [a[5:] for a in ad.get("proxyAddresses", []) if a[:5].lower() == "smtp:"]
        addresses += ad.get("mail", []) + [a[5:] for a in change.before if a[:5].lower() == "smtp:"]
        return _recipient_values(exchange.get(), addresses)

    @staticmethod
    def _cloud(graph, upn: str | None) -> dict | None:
        from portal.connectors.graph import NotFound as GraphNotFound

        if not upn:
            return None
        try:
            user = graph.get_user(upn, select=("id", "userPrincipalName", "displayName", "givenName", "mail",
                                               "mailNickname", "proxyAddresses"))
        except GraphNotFound:
            return None
        return {"userPrincipalName": user.user_principal_name, "displayName": user.display_name, "mail": user.mail,
                "mailNickname": user.mail_nickname, "proxyAddresses": list(user.proxy_addresses),
                "givenName": getattr(user, "given_name", None) or (user.extra or {}).get("givenName")}


class _Lazy:
    """A connection opened on first use and closed with the stack."""

    def __init__(self, stack: ExitStack, factory) -> None:
        self.stack, self.factory, self.value = stack, factory, None

    def get(self):
        if self.value is None:
            self.value = self.stack.enter_context(self.factory())
        return self.value


def _recipient_values(exchange, identities: list[str]) -> dict | None:
    """The first recipient one of the identities names, in AD's attribute names (exchange_values.PROPERTY)."""
    from portal.connectors.exchange.errors import AmbiguousObject, ObjectNotFound

    for identity in dict.fromkeys(i for i in identities if i):
        try:
            recipient = exchange.get_recipient(identity)
        except (ObjectNotFound, AmbiguousObject):
            continue
        raw = recipient.raw
        return {"proxyAddresses": list(recipient.email_addresses), "mail": recipient.primary_smtp_address,
                "mailNickname": recipient.alias, "displayName": recipient.display_name,
                "targetAddress": raw.get("ExternalEmailAddress")}
    return None
