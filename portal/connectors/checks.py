"""The connectors' part of the connectivity check (portal/jobs/connectivity.py)."""

from __future__ import annotations

from portal.jobs.connectivity import CheckResult, dependency_check

from . import registry


@dependency_check("Active Directory")
def check_active_directory() -> CheckResult:
    try:
        layout = registry.ad_layout()
        settings = registry.ad_settings()
    except registry.NotConfigured as exc:
        return CheckResult(ok=False, summary=str(exc))
    ous = [ou for ou in (*layout.sync_ous, layout.non_sync_ou, layout.writeback_ou) if ou]
    with registry.ActiveDirectory(settings) as directory:
        report = directory.check(required_ous=ous)
    details = {"server": report.server, "naming_context": report.naming_context,
               "items": {item.name: {"ok": item.ok, "detail": item.detail} for item in report.items}}
    if report.ok:
        return CheckResult(ok=True, details=details,
                           summary=f"{report.server} answers; naming context {report.naming_context}, Exchange "
                                   f"schema complete, {len(ous)} configured OU(s) exist.")
    failures = report.failures()
    if failures[0].name == "bind":
        return CheckResult(ok=False, details=details, summary=f"unreachable: {failures[0].detail}")
    return CheckResult(ok=False, details=details,
                       summary="; ".join(f"{item.name}: {item.detail}" for item in failures))
