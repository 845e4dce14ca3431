"""Jobs of the diagnostics area."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from portal.connectors.graph import GraphError
from portal.connectors.registry import NotConfigured, entra_graph
from portal.jobs.runner import JobFailed, JobRunner

from ..models import MfaSnapshot, MfaWaveGroups
from .collect import collect
from .selectors import capable_count, known_audit, snapshot_of_job
from .services import SNAPSHOT_JOB, do_store_snapshot, options_from
from .wave_services import (
    WAVE_GROUPS_JOB,
    WavesRefused,
    check_can_write,
    do_finish_wave_groups,
    do_save_wave_progress,
)
from .waves import group_plan


class MfaSnapshotJob(JobRunner):
    """Reads the registration report, the audit trail and (only where needed) per-user methods; stores a snapshot."""

    kind = SNAPSHOT_JOB
    name = "MFA registration snapshot"
    permission = "diagnostics_app.run_mfa_snapshot"
    object_noun = "MFA snapshot"

    @classmethod
    def object_of(cls, job) -> MfaSnapshot | None:
        return snapshot_of_job(job)

    def run(self) -> dict[str, Any]:
        options = options_from(self.job.params or {})
        now = timezone.now()
        try:
            with entra_graph() as graph:
                tenant = graph.tenant_id
                known = None if options.full_audit else known_audit(
                    tenant=tenant, since=now - timedelta(days=options.audit_days))
                result = collect(graph, now=now, options=options, reporter=self, known_audit=known)
        except NotConfigured as exc:
            raise JobFailed(str(exc)) from None
        except GraphError as exc:
            raise JobFailed(f"Microsoft Graph refused or failed a read: {exc}") from None
        self.info("Storing the snapshot…")
        snapshot = do_store_snapshot(result, job=self.job, user=self.job.user, audit_days=options.audit_days,
                                     tenant=tenant)
        calls = result.graph_calls
        self.success(
            f"Snapshot #{snapshot.pk}: {snapshot.total_users:,} users, {calls.get('requests', 0):,} Graph calls "
            f"({calls.get('throttled', 0)} answered 429 and retried; {result.methods_read:,} users' methods read one "
            "by one through $batch).", data={"phases": result.phases, "questions": result.questions})
        counts = snapshot.counts
        capable = capable_count(snapshot)  # the report's own count, so the summary and the page agree
        self.summary = (f"MFA snapshot #{snapshot.pk}: {capable:,} of {snapshot.total_users:,} users can satisfy MFA; "
                        f"{int(counts.get('not_usable', 0)):,} registered but not usable"
                        + ("; no premium licence, partial fallback." if result.licence_missing else ".")
                        + f" {calls.get('requests', 0):,} Graph calls.")
        return {"snapshot": snapshot.pk, "users": snapshot.total_users, "counts": counts, "graph_calls": calls,
                "phases": result.phases, "questions": result.questions, "methods_read": result.methods_read,
                "methods_skipped": result.methods_skipped, "licence_missing": result.licence_missing,
                "message": snapshot.message, "url": snapshot.get_absolute_url()}


class MfaWaveGroupsJob(JobRunner):
    """Writes one cloud security group per approved wave: finds the group by its mail nickname (or the id an
    earlier run stored), creates it if missing, then adds and removes members until it holds exactly the
    wave. A re-run changes nothing that is already right."""

    kind = WAVE_GROUPS_JOB
    name = "MFA wave groups"
    permission = "diagnostics_app.request_mfa_wave_groups"
    object_noun = "MFA wave groups"

    @classmethod
    def object_of(cls, job) -> MfaWaveGroups | None:
        return MfaWaveGroups.objects.filter(pk=(job.params or {}).get("wave_groups")).only("id").first()

    def run(self) -> dict[str, Any]:
        req = MfaWaveGroups.objects.get(pk=self.job.params["wave_groups"])
        try:
            check_can_write(req=req)
        except WavesRefused as exc:
            raise JobFailed(str(exc)) from None
        report: dict[str, Any] = {"waves": dict((req.report or {}).get("waves") or {})}
        try:
            with entra_graph() as graph:
                for n, wave in enumerate(req.waves, start=1):
                    report["waves"][str(wave["number"])] = self._write_wave(graph, wave,
                                                                            report["waves"].get(str(wave["number"])))
                    with self.fenced():
                        do_save_wave_progress(req=req, report=report)
                    self.progress(n, len(req.waves))
        except NotConfigured as exc:
            do_finish_wave_groups(req=req, report=report, failed=str(exc))
            raise JobFailed(str(exc)) from None
        except GraphError as exc:
            do_finish_wave_groups(req=req, report=report, failed=f"Microsoft Graph refused a write: {exc}")
            raise JobFailed(f"Microsoft Graph refused a write: {exc}") from None
        do_finish_wave_groups(req=req, report=report)
        waves = report["waves"].values()
        created = sum(1 for w in waves if w.get("created_now"))
        added, removed = sum(w["added"] for w in waves), sum(w["removed"] for w in waves)
        self.summary = (f"MFA wave groups #{req.pk}: {len(req.waves)} group(s), {created} created; "
                        f"{added} member(s) added, {removed} removed.")
        self.success(self.summary)
        return {"wave_groups": req.pk, "created": created, "added": added, "removed": removed,
                "url": req.get_absolute_url()}

    def _write_wave(self, graph, wave: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
        group_id = (before or {}).get("group_id")
        created, created_now = bool((before or {}).get("created")), False
        if not group_id:
            nickname = wave["mail_nickname"].replace("'", "''")
            found = list(graph.iter_groups(filter=f"mailNickname eq '{nickname}'", select=["id", "displayName"]))
            group_id = found[0].id if found else None
        current = [m.id for m in graph.iter_group_members(group_id, select=["id"])] if group_id else []
        plan = group_plan(group_name=wave["group_name"], group_id=group_id, wanted=wave["user_ids"], current=current)
        if plan.create:
            group_id = graph.create_security_group(
                display_name=wave["group_name"], mail_nickname=wave["mail_nickname"],
                description="Staged MFA roll-out wave, written by DirOps Portal")
            created = created_now = True
            self.info(f"Created group {wave['group_name']}.")
        skipped: list[str] = []
        for user_id in plan.add:
            try:
                graph.add_group_member(group_id, user_id)
            except GraphError as exc:
                # A user deleted since the snapshot: the rest of the wave is still written.
                if getattr(exc, "status", None) not in (400, 404):
                    raise
                skipped.append(user_id)
        for user_id in plan.remove:
            graph.remove_group_member(group_id, user_id)
        if plan.nothing_to_do:
            self.info(f"{wave['group_name']}: already exactly the wave, nothing changed.")
        else:
            self.info(f"{wave['group_name']}: {len(plan.add) - len(skipped)} added, {len(plan.remove)} removed"
                      + (f", {len(skipped)} no longer in the tenant" if skipped else "") + ".")
        return {"group_id": group_id, "group_name": wave["group_name"], "created": created, "created_now": created_now,
                "added": len(plan.add) - len(skipped), "removed": len(plan.remove), "skipped": skipped}
