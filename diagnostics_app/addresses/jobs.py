"""Jobs of Address repair."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from portal.connectors.ad import AdError
from portal.connectors.graph import GraphError
from portal.connectors.registry import NotConfigured, active_directory, ad_layout, entra_connect, entra_graph
from portal.connectors.sync import SyncError
from portal.jobs.runner import JobCancelled, JobFailed, JobRunner

from ..models import AddressScan
from .collect import AD_ATTRIBUTES, read_export_errors, read_scope, read_tenant
from .rules import ScanConfig, Scanner
from .services import SCAN_JOB, do_begin_scan, do_fail_scan, do_finish_scan, do_store_findings

PAGE = 500  # objects per stored batch and progress line


class AddressScanJob(JobRunner):
    """Reads the tenant, then streams the sync scope through the rules; findings are stored page by page."""

    kind = SCAN_JOB
    name = "Address scan"
    permission = "diagnostics_app.run_address_scan"

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
        self.info("Reading the tenant (verified domains, users, groups)…")
        with entra_graph() as graph:
            verified, initial = graph.verified_domains()
            tenant = []
            for obj in read_tenant(graph):
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
        with active_directory() as directory:
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
