"""Connectivity check: the first job kind; proves the pipeline and reports on every dependency.

Dependencies register a check with @dependency_check; the connectors add theirs as they arrive.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from .runner import JobFailed, JobRunner


@dataclass
class CheckResult:
    ok: bool
    summary: str
    warning: bool = False
    details: dict[str, Any] = field(default_factory=dict)


DEPENDENCY_CHECKS: list[tuple[str, Callable[[], CheckResult]]] = []


def dependency_check(name: str):
    def register(fn: Callable[[], CheckResult]):
        DEPENDENCY_CHECKS.append((name, fn))
        return fn

    return register


@dependency_check("Database")
def check_database() -> CheckResult:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    details = {"vendor": connection.vendor, "version": ".".join(map(str, connection.Database.version_info))
               if hasattr(connection.Database, "version_info") else "", "name": str(connection.settings_dict["NAME"])}
    if connection.vendor == "sqlite":
        import sqlite3

        details["version"] = sqlite3.sqlite_version
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        return CheckResult(ok=True, warning=True, details=details | {"pending_migrations": len(pending)},
                           summary=f"{connection.vendor} reachable, but {len(pending)} migration(s) are not "
                                   "applied: run `manage.py migrate`.")
    return CheckResult(ok=True, summary=f"{connection.vendor} {details['version']} reachable, schema up to date.",
                       details=details)


@dependency_check("Redis and job workers")
def check_redis() -> CheckResult:
    import django_rq
    from rq import Worker

    conn = django_rq.get_connection("default")
    conn.ping()
    info = conn.info("server")
    workers = Worker.all(connection=conn)
    queues = {name: len(django_rq.get_queue(name)) for name in settings.RQ_QUEUE_NAMES}
    details = {"redis_version": info.get("redis_version"), "workers": len(workers), "queued": queues}
    listening = {q.name for w in workers for q in w.queues}
    idle_queues = [q for q in settings.RQ_QUEUE_NAMES if q not in listening]
    if not workers:
        return CheckResult(ok=True, warning=True, details=details,
                           summary="Redis answers but no worker is running: started jobs will wait in the queue.")
    if idle_queues:
        return CheckResult(ok=True, warning=True, details=details,
                           summary=f"No worker listens on queue(s) {', '.join(idle_queues)}.")
    return CheckResult(ok=True, details=details,
                       summary=f"Redis {details['redis_version']} answers; {len(workers)} worker(s) listening.")


def load_connector_checks() -> None:
    from portal.connectors import checks  # noqa: F401  (registers on import)


class ConnectivityCheckJob(JobRunner):
    kind = "connectivity_check"
    name = "Connectivity check"
    permission = "jobs.run_connectivity_check"

    def run(self) -> dict[str, Any]:
        checks = list(DEPENDENCY_CHECKS)
        delay = settings.CONNECTIVITY_CHECK_STEP_DELAY
        self.info(f"Checking {len(checks)} dependencies.")
        self.progress(0, len(checks))
        results: dict[str, dict[str, Any]] = {}
        for done, (name, check) in enumerate(checks, start=1):
            self.info(f"{name}: checking…")
            if delay:
                time.sleep(delay)
            try:
                outcome = check()
            except Exception as exc:  # noqa: BLE001 - an unreachable dependency is a finding, not a crash
                outcome = CheckResult(ok=False, summary=f"unreachable: {type(exc).__name__}: {exc}")
            results[name] = {"ok": outcome.ok, "warning": outcome.warning, "summary": outcome.summary,
                             "details": outcome.details}
            if not outcome.ok:
                self.error(f"{name}: {outcome.summary}", data=outcome.details)
            elif outcome.warning:
                self.warning(f"{name}: {outcome.summary}", data=outcome.details)
            else:
                self.success(f"{name}: {outcome.summary}", data=outcome.details)
            self.progress(done)
        failed = [n for n, r in results.items() if not r["ok"]]
        warned = [n for n, r in results.items() if r["ok"] and r["warning"]]
        if failed:
            raise JobFailed(f"{len(failed)} of {len(checks)} dependencies failed: {', '.join(failed)}.",
                            result={"checks": results})
        self.summary = (f"All {len(checks)} dependencies reachable." if not warned
                        else f"All {len(checks)} dependencies reachable; {len(warned)} need attention: "
                             f"{', '.join(warned)}.")
        return {"checks": results}
