"""The connectors' part of the connectivity check (portal/jobs/connectivity.py): one check each."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from portal.jobs.connectivity import CheckResult, dependency_check

from . import registry


def _from_report(report, *, what: str) -> CheckResult:
    """A connector's own check report (items of name/ok/detail) as a line of the connectivity check."""
    details = {"endpoint": getattr(report, "endpoint", None) or getattr(report, "server", None),
               "items": {item.name: {"ok": item.ok, "detail": item.detail} for item in report.items}}
    if report.ok:
        return CheckResult(ok=True, details=details, summary=f"{details['endpoint']} answers; {what}.")
    failures = report.failures()
    first = failures[0]
    if first.name in ("bind", "token", "connect", "reach"):
        return CheckResult(ok=False, details=details, summary=f"unreachable: {first.detail}")
    return CheckResult(ok=False, details=details, summary="; ".join(f"{i.name}: {i.detail}" for i in failures))


def _check_with(connect: Callable[[], AbstractContextManager], *, what: str, **check_kwargs) -> CheckResult:
    try:
        with connect() as client:
            report = client.check(**check_kwargs)
    except registry.NotConfigured as exc:
        return CheckResult(ok=False, summary=str(exc))
    return _from_report(report, what=what)


@dependency_check("Active Directory")
def check_active_directory() -> CheckResult:
    try:
        layout = registry.ad_layout()
    except registry.NotConfigured as exc:
        return CheckResult(ok=False, summary=str(exc))
    ous = [ou for ou in (*layout.sync_ous, layout.non_sync_ou, layout.writeback_ou) if ou]
    return _check_with(registry.active_directory, required_ous=ous,
                       what=f"Exchange schema complete, {len(ous)} configured OU(s) exist")


@dependency_check("Microsoft Graph")
def check_graph() -> CheckResult:
    return _check_with(registry.entra_graph, what="token issued and the tenant readable")


@dependency_check("Exchange Online")
def check_exchange_online() -> CheckResult:
    return _check_with(registry.exchange_online, what="InvokeCommand answers")


@dependency_check("Entra Connect")
def check_entra_connect() -> CheckResult:
    return _check_with(registry.entra_connect, what="the sync scheduler answers")


@dependency_check("Exchange on-premises")
def check_exchange_onprem() -> CheckResult:
    return _check_with(registry.exchange_onprem, what="remote PowerShell answers")
