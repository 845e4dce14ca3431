"""Jobs of the DL migration area: each fetches its rows and calls the services that do the work."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from portal.audit.services import record
from portal.connectors import registry
from portal.jobs.choices import LogLevel
from portal.jobs.models import Job
from portal.jobs.runner import JobCancelled, JobFailed, JobRunner
from portal.jobs.services import do_detect_lost_jobs, run_job_inline

from . import aftercare, batch_preflight, batch_run, batch_sync, engine, inplace, read_once
from . import batch_services as batch_svc
from . import services as svc
from .choices import MigrationStatus
from .models import BatchSyncRound, Migration, MigrationBatch
from .options import MigrationOptions


class _MigrationObjectJob(JobRunner):
    """Jobs about one migration (params migration_id): their page links to the migration's."""

    object_noun = "Migration"
    object_param = "migration_id"
    object_view = "migrations_app:migration"


class PreflightDistributionListJob(JobRunner):
    kind = svc.KIND_PREFLIGHT
    name = "DL preflight"
    permission = "migrations_app.run_preflight"

    @classmethod
    def object_url(cls, job: Job) -> str | None:
        return reverse("migrations_app:preflight_report", args=[job.pk])

    def run(self) -> dict[str, Any]:
        mail = self.job.params["mail"]
        options = MigrationOptions.from_dict(self.job.params.get("options"))
        self.info(f"Preflight of {mail}: reading the list in Active Directory and Exchange Online…")
        with engine.open_connectors() as c:
            _, report = engine.run_preflight(mail=mail, options=options, c=c)
        for check in report.checks:
            line = f"{check.title}: {check.detail}"
            if check.outcome == "failure":
                self.error(line, data={"objects": check.objects[:25], "remedy": check.remedy})
            elif check.outcome == "warning":
                self.warning(line, data={"objects": check.objects[:25], "remedy": check.remedy})
            else:
                self.success(line)
        self.info(f"{report.calls.get('cmdlet', 0)} Exchange cmdlet call(s), {report.calls.get('ldap', 0)} "
                  "LDAP operation(s).")
        result = report.as_dict()
        if not report.ok:
            raise JobFailed(report.summary(), result=result)
        self.summary = report.summary()
        return result


class MigrateDistributionListJob(_MigrationObjectJob):
    kind = svc.KIND_MIGRATE
    name = "DL migration"
    permission = "migrations_app.migrate_dl"

    @classmethod
    def on_cancelled_before_start(cls, job: Job) -> None:
        Migration.objects.filter(pk=job.params.get("migration_id"), status=MigrationStatus.QUEUED).update(
            status=MigrationStatus.CANCELLED, finished_at=timezone.now())

    @classmethod
    def on_cancel_queued_again(cls, job: Job) -> str:
        return ("its next run rolls the migration back (what its earlier run changed is undone) before it ends; "
                "it does not migrate the list")

    def run(self) -> dict[str, Any]:
        migration = Migration.objects.get(pk=self.job.params["migration_id"])
        self.info(f"Migrating {migration.mail} (migration #{migration.pk}).")
        try:
            with engine.open_connectors() as c:
                process = inplace.process_for(migration)(migration=migration, runner=self, c=c)
                process.sync_gate = gate = batch_sync.gate_for(migration)
                process.shared_reads = read_once.batch_memo(gate.batch_id) if gate is not None else None
                result = process.run()
        except Exception:  # JobFailed and JobCancelled included; a superseded run (BaseException) records nothing
            self._record_finished(migration)
            raise
        self._record_finished(migration)
        return result

    def _record_finished(self, migration: Migration) -> None:
        """The outcome in the audit log, beside the request and the approval: how it ended."""
        migration.refresh_from_db()
        record(actor=self.job.user, action="dl.migration.finish", target=f"dl:{migration.mail}", job=self.job,
               after={"migration": migration.pk, "status": migration.status,
                      "post_create_errors": len(migration.post_create_errors or [])})


class InventoryDistributionListsJob(JobRunner):
    kind = svc.KIND_INVENTORY
    name = "DL inventory"
    permission = "migrations_app.run_preflight"

    def run(self) -> dict[str, Any]:
        with engine.open_connectors() as c:
            result = aftercare.do_inventory(c=c, runner=self)
        self.summary = (f"{result['lists']} list(s) inventoried: {result['synced']} synced, "
                        f"{result['migrated']} migrated.")
        return result


class EnableHybridMailFlowJob(_MigrationObjectJob):
    kind = svc.KIND_HYBRID
    name = "Enable hybrid mail flow"
    permission = "migrations_app.change_migrated_dl"

    def run(self) -> dict[str, Any]:
        self.forbid_cancel("objects are being created in both directories; stopping half-way would strand them")
        migration = Migration.objects.get(pk=self.job.params["migration_id"])
        with engine.open_connectors() as c:
            return aftercare.do_enable_hybrid_mail_flow(migration=migration, c=c, runner=self)


class UpdateMigratedAddressJob(_MigrationObjectJob):
    kind = svc.KIND_ADDRESS
    name = "Change address of a migrated list"
    permission = "migrations_app.change_migrated_dl"

    def run(self) -> dict[str, Any]:
        self.forbid_cancel("the address is changed in both directories; stopping half-way would split them")
        migration = Migration.objects.get(pk=self.job.params["migration_id"])
        with engine.open_connectors() as c:
            return aftercare.do_update_address(migration=migration, new_address=self.job.params["new_address"],
                                               new_alias=self.job.params.get("new_alias") or "", c=c, runner=self)


class RestoreDistributionListJob(_MigrationObjectJob):
    kind = svc.KIND_RESTORE
    name = "Restore a migrated list on-premises"
    permission = "migrations_app.restore_dl"

    def run(self) -> dict[str, Any]:
        self.forbid_cancel("a restore is not stopped half-way: the list would exist in neither directory")
        migration = Migration.objects.get(pk=self.job.params["migration_id"])
        with engine.open_connectors() as c:
            if inplace.process_for(migration) is inplace.InPlaceProcess:  # take back: authority returns to AD
                return inplace.InPlaceProcess(migration=migration, runner=self, c=c).run_take_back()
            return aftercare.do_restore(migration=migration, c=c, runner=self)


class TakeBackPreviewJob(_MigrationObjectJob):
    kind = svc.KIND_TAKE_BACK_PREVIEW
    name = "Preview the take-back of a list converted in place"
    permission = "migrations_app.restore_dl"

    def run(self) -> dict[str, Any]:
        migration = Migration.objects.get(pk=self.job.params["migration_id"])
        with engine.open_connectors() as c:
            preview = inplace.InPlaceProcess(migration=migration, runner=self, c=c).log_take_back_preview()
        self.summary = (f"The take-back would overwrite {len(preview['attributes'])} attribute(s) and "
                        f"{len(preview['members']['added']) + len(preview['members']['removed'])} membership "
                        "change(s) made in the cloud." if preview["attributes"] or preview["members"]["added"]
                        or preview["members"]["removed"] else "The take-back would overwrite nothing.")
        return {"migration": migration.pk, "preview": preview}


class PreflightBatchJob(JobRunner):
    kind = batch_svc.KIND_BATCH_PREFLIGHT
    name = "DL batch preflight"
    permission = "migrations_app.run_preflight"

    object_noun = "Batch"
    object_param = "batch_id"
    object_view = "migrations_app:batch"

    def run(self) -> dict[str, Any]:
        batch = MigrationBatch.objects.get(pk=self.job.params["batch_id"])
        self.info(f"Preflight of batch #{batch.pk} '{batch.name}': {batch.lists.count()} list(s).")
        with engine.open_connectors() as c:
            verdicts, summary = batch_preflight.preflight_batch(batch=batch, c=c, runner=self)
        with self.fenced():
            batch_svc.do_record_batch_preflight(batch=batch, job=self.job, verdicts=verdicts, summary=summary)
        self.summary = (f"{summary['ready']} ready, {summary['warnings']} with warnings, {summary['blocked']} "
                        f"blocked of {summary['lists']} list(s).")
        if summary["blocked"]:
            # The preflight did its work: blocked lists are its findings (a warning each, above), not a failure.
            reasons = "; ".join(f"{why}: {n}" for why, n in (summary.get("blocked_by") or {}).items())
            self.warning(f"{summary['blocked']} list(s) blocked ({reasons or 'see each list'}): fix them or remove "
                         "them from the batch, then run the preflight again before submitting.")
            self.summary += " Fix or remove the blocked lists before submitting."
        return summary


class RunBatchJob(JobRunner):
    """Starts the batch's lists as migration jobs (children first) and follows them to the end. Its
    worker is not idle meanwhile: a list no other worker has taken within a poll interval is run here,
    so one worker runs a whole batch and each further worker adds one list at a time."""

    kind = batch_run.KIND_BATCH_RUN
    name = "DL batch run"
    permission = "migrations_app.migrate_dl"

    object_noun = "Batch"
    object_param = "batch_id"
    object_view = "migrations_app:batch"

    @classmethod
    def on_cancelled_before_start(cls, job: Job) -> None:
        batch_run.do_end_unstarted_run(job=job)

    @classmethod
    def on_cancel_queued_again(cls, job: Job) -> str:
        return "its earlier run started no list: its next run cancels the batch, every list not started"

    def run(self) -> dict[str, Any]:
        try:
            self.forbid_cancel("cancel the batch from its page: lists running then finish or roll back")
        except JobCancelled:  # cancelled while queued again after a loss before its first turn
            with self.shield(), self.fenced():
                batch_run.do_end_unstarted_run(job=self.job)
            raise
        batch = MigrationBatch.objects.get(pk=self.job.params["batch_id"])
        self.info(f"Running batch #{batch.pk} '{batch.name}': {batch.lists.count()} list(s), children first.")
        lines: list[tuple[str, str]] = []

        def note(level: str, message: str) -> None:
            lines.append((level, message))

        inline = bool(self.job.params.get("inline"))

        def start_sync(why: str) -> None:
            with registry.entra_connect() as sync:
                engine.start_delta_sync(sync, self, why=why)

        def before_sync(job_ids: list[int]) -> None:
            engine.scan_wave_dependents(job_ids=job_ids, open_exchange=registry.exchange_online, log=note)

        while True:
            with self.fenced():
                decision = batch_run.do_advance_batch(batch=batch, log=note, enqueue=not inline)
            # The wave's lists wait for one delta sync; it starts once they all moved (or at the batch's end).
            batch_sync.do_release_due_round(batch=batch, start_sync=start_sync, log=note, enqueue=not inline,
                                            guard=self.fenced, before_sync=before_sync)
            do_detect_lost_jobs()  # as the workers' sweep does, sooner: a list whose worker died goes on
            batch_run.do_resume_lost_lists(batch=batch, log=note, enqueue=not inline)
            for level, message in lines:
                self.log(message, level=level)
            lines.clear()
            self.progress(*batch_run.batch_progress(batch))
            if decision.finished:
                break
            if inline:
                if queued := batch_run.queued_migration_jobs(batch):
                    for job in queued:
                        run_job_inline(job)
                    continue
            elif waiting := batch_run.queued_migration_jobs(
                    batch, older_than=timedelta(seconds=settings.DL_BATCH_TAKE_OVER_SECONDS)):
                # The claim is a compare-and-set: the worker its queue entry reaches later finds it taken.
                self.info(f"No free worker took migration job #{waiting[0].pk}: it runs on this batch's worker.")
                run_job_inline(waiting[0])
                continue
            time.sleep(settings.DL_BATCH_POLL_SECONDS)
        self._check_take_backs(batch)
        batch.refresh_from_db()
        self.summary = f"Batch #{batch.pk} {batch.get_status_display().lower()}: {batch.decision_note or ''}".strip()
        if batch.status == "completed_errors":
            raise JobFailed(self.summary, result={"batch": batch.pk, "status": batch.status})
        return {"batch": batch.pk, "status": batch.status}

    def _check_take_backs(self, batch: MigrationBatch) -> None:
        """Lists taken back from an in-place conversion rode on the batch's syncs: after the last one, each is
        checked to be synced from AD again, as a list migrated on its own checks after its own cycle."""
        lists = batch_sync.take_backs_to_check(batch)
        if not lists:
            return
        outcomes: dict[int, tuple[bool, str]] = {}
        started = {pk: gid for pk, (gid, sync_round) in lists.items()
                   if sync_round.status == BatchSyncRound.Status.STARTED}
        for pk, (_, sync_round) in lists.items():
            if pk not in started:
                outcomes[pk] = (False, f"the batch's delta sync {sync_round.number} did not run, so AD's values "
                                       "reach the cloud only at the next cycle; check the list then")
        if started:
            self.info(f"Checking {len(started)} list(s) taken back from the cloud once the batch's last sync is "
                      "done.")
            with registry.entra_connect() as sync, registry.entra_graph() as graph:
                outcomes.update(inplace.check_take_backs(group_ids=started, sync=sync, graph=graph))
        with self.fenced():
            batch_sync.do_record_take_back_checks(batch=batch, outcomes={pk: text for pk, (_, text) in
                                                                         outcomes.items()})
        mails = dict(Migration.objects.filter(pk__in=outcomes).values_list("pk", "mail"))
        for pk, (ok, text) in sorted(outcomes.items()):
            self.log(f"{mails.get(pk, pk)}: {text}.", level=LogLevel.SUCCESS if ok else LogLevel.ERROR)
