"""Jobs of the diagnostics area."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from portal.connectors.graph import GraphError
from portal.connectors.registry import NotConfigured, entra_graph
from portal.jobs.runner import JobFailed, JobRunner

from .collect import collect
from .services import SNAPSHOT_JOB, do_store_snapshot, options_from


class MfaSnapshotJob(JobRunner):
    """Reads the registration report, the audit trail and (only where needed) per-user methods; stores a snapshot."""

    kind = SNAPSHOT_JOB
    name = "MFA registration snapshot"
    permission = "diagnostics_app.run_mfa_snapshot"

    def run(self) -> dict[str, Any]:
        options = options_from(self.job.params or {})
        now = timezone.now()
        try:
            with entra_graph() as graph:
                result = collect(graph, now=now, options=options, reporter=self)
        except NotConfigured as exc:
            raise JobFailed(str(exc)) from None
        except GraphError as exc:
            raise JobFailed(f"Microsoft Graph refused or failed a read: {exc}") from None
        self.info("Storing the snapshot…")
        snapshot = do_store_snapshot(result, job=self.job, user=self.job.user, audit_days=options.audit_days)
        calls = result.graph_calls
        self.success(
            f"Snapshot #{snapshot.pk}: {snapshot.total_users:,} users, {calls.get('requests', 0):,} Graph calls "
            f"({calls.get('throttled', 0)} answered 429 and retried; {result.methods_read:,} users' methods read one "
            "by one through $batch).", data={"phases": result.phases, "questions": result.questions})
        counts = snapshot.counts
        capable = sum(int(counts.get(k, 0)) for k in ("mfa_capable", "passwordless", "sms_voice_only"))
        self.summary = (f"MFA snapshot #{snapshot.pk}: {capable:,} of {snapshot.total_users:,} users can satisfy MFA; "
                        f"{int(counts.get('not_usable', 0)):,} registered but not usable"
                        + ("; no premium licence, partial fallback." if result.licence_missing else ".")
                        + f" {calls.get('requests', 0):,} Graph calls.")
        return {"snapshot": snapshot.pk, "users": snapshot.total_users, "counts": counts, "graph_calls": calls,
                "phases": result.phases, "questions": result.questions, "methods_read": result.methods_read,
                "methods_skipped": result.methods_skipped, "licence_missing": result.licence_missing,
                "message": snapshot.message, "url": snapshot.get_absolute_url()}
