"""The migration of one list as a checkpointed state machine: the run, its helpers and its rollback; the
steps themselves in prepare.py, cutover.py and finish.py."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils import timezone

from portal.connectors import ad as adc
from portal.connectors import exchange as exo
from portal.connectors import sync as syncc
from portal.jobs.runner import JobCancelled, JobFailed, JobRunner

from ..choices import BackupKind, ListState, MigrationStatus
from ..models import Migration, MigrationBackup
from ..options import MigrationOptions
from .common import POINT_OF_NO_RETURN, STEPS, Connectors, MigrationError, mark_inventory
from .cutover import CutoverSteps
from .finish import FinishSteps
from .prepare import PrepareSteps


class MigrationProcess(PrepareSteps, CutoverSteps, FinishSteps):
    """Runs the steps of one migration inside its job (``runner``) with open connectors (``c``)."""

    steps: tuple[str, ...] = STEPS  # the in-place method (inplace.InPlaceProcess) has steps of its own
    point_of_no_return: str = POINT_OF_NO_RETURN
    # In a batch: the batch's shared delta sync (batch_sync.BatchSyncGate) instead of one per list.
    sync_gate: Any = None
    # In a batch: this worker's memory of the organisation's settings read for the batch (read_once.batch_memo).
    shared_reads: dict | None = None
    current_step: str = ""

    def __init__(self, *, migration: Migration, runner: JobRunner, c: Connectors,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.m = migration
        self.runner = runner
        self.c = c
        self.options = MigrationOptions.from_dict(migration.options)
        self.sleep = sleep
        self.post_create_errors: list[dict[str, Any]] = list(migration.post_create_errors or [])
        self._backups: dict[str, dict[str, Any]] | None = None

    # -- helpers ------------------------------------------------------------------------------
    def log(self, message: str, **kw: Any) -> None:
        self.runner.info(message, **kw)

    def backup(self, kind: str) -> dict[str, Any]:
        # Written once by step_backup and read by every later step: one query per run, not per attribute.
        if self._backups is None or kind not in self._backups:
            self._backups = {b.kind: b.data for b in MigrationBackup.objects.filter(migration=self.m)}
        if kind not in self._backups:
            raise MigrationError(f"the backup '{kind}' is missing; the migration cannot go on without it")
        return self._backups[kind]

    def save(self, **fields: Any) -> None:
        for key, value in fields.items():
            setattr(self.m, key, value)
        with self.runner.fenced():  # a superseded run never overwrites what the current one saved
            Migration.objects.filter(pk=self.m.pk).update(**fields)

    def post_create_error(self, step: str, message: str, *, objects: list[str] | None = None) -> None:
        self.runner.warning(f"Post-create error in {step}: {message}", data={"objects": objects or []})
        self.post_create_errors.append({"step": step, "message": message, "objects": objects or []})
        self.save(post_create_errors=self.post_create_errors)

    @property
    def group(self) -> dict[str, Any]:
        return self.backup(BackupKind.ONPREM_GROUP)

    def group_attr(self, name: str) -> list[Any]:
        attrs = self.group["attributes"]
        return next((v for k, v in attrs.items() if k.lower() == name.lower()), [])

    def first_attr(self, name: str) -> Any:
        values = self.group_attr(name)
        return values[0] if values else None

    @property
    def cloud(self) -> dict[str, Any]:
        return self.backup(BackupKind.CLOUD_GROUP)

    @property
    def temp_address(self) -> str:
        return f"migtemp-{self.m.group_guid.hex[:12]}@{self.cloud['tenant_domain']}"

    def current_group_dn(self) -> str | None:
        try:
            return self.c.directory.read_by_guid(self.m.group_guid, attributes=["cn"]).dn
        except adc.NotFound:
            return None

    def find_list(self, identity: str) -> exo.DistributionGroup | None:
        try:
            return self.c.exchange.get_distribution_group(identity)
        except exo.ObjectNotFound:
            return None

    # -- the run ------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        self.save(status=MigrationStatus.RUNNING)
        steps = self.steps
        total = len(steps)
        for index, name in enumerate(steps):
            self.runner.progress(index, total)
            before_return = steps.index(name) < steps.index(self.point_of_no_return)
            self.current_step = name
            try:
                if name == self.point_of_no_return and not self.runner.completed(name):
                    # A cancel requested until now still rolls back; from here it is refused.
                    self.runner.forbid_cancel("the original list is being disabled on-premises")
                with self.runner.step(name) as todo:
                    if todo:
                        self._run_step(name, retry=not before_return)
            except JobFailed:
                with self.runner.shield():
                    self.save(status=MigrationStatus.FAILED, finished_at=timezone.now())
                raise
            except JobCancelled:
                # Cancellation points all lie before the point of no return (forbid_cancel above).
                with self.runner.shield():
                    self.roll_back(reason="cancelled at the user's request", cancelled=True)
                raise
            except Exception as exc:  # noqa: BLE001 - whatever broke, the list must not be left half-moved
                detail = str(exc) if isinstance(exc, (MigrationError, adc.AdError, exo.ExchangeError,
                                                      syncc.SyncError)) else f"{type(exc).__name__}: {exc}"
                if before_return:
                    with self.runner.shield():
                        self.roll_back(reason=f"{name}: {detail}")
                    raise JobFailed(f"Rolled back after '{name}' failed: {detail}",
                                    result={"migration": self.m.pk, "rolled_back": True}) from exc
                # After the point of no return the list lives in the cloud: never undo, record and go on.
                self.post_create_error(name, detail)
                self.runner.checkpoint(name, {"post_create_error": detail})
        with self.runner.shield():
            self.runner.progress(total, total)
            status = MigrationStatus.MIGRATED_WITH_WARNINGS if self.post_create_errors else MigrationStatus.MIGRATED
            self.save(status=status, finished_at=timezone.now())
            mark_inventory(self.m, state=ListState.MIGRATED, cloud_object_id=self.m.cloud_group_id)
        self.runner.summary = (
            f"Migrated {self.m.mail} to Exchange Online"
            + (f" with {len(self.post_create_errors)} post-create error(s): review them." if self.post_create_errors
               else ".")
        )
        return {"migration": self.m.pk, "status": status, "report": self.m.report}

    def _run_step(self, name: str, *, retry: bool) -> None:
        """Once; after the point of no return a failing step gets one more try (steps are idempotent),
        because there is no roll back to fall back on."""
        try:
            getattr(self, f"step_{name}")()
        except (JobFailed, JobCancelled):
            raise
        except Exception as exc:  # noqa: BLE001 - decided by the caller after the retry
            if not retry:
                raise
            self.runner.warning(f"Step '{name}' failed ({exc}); trying it once more.")
            self.sleep(settings.DL_MOVE_RETRY_SECONDS)
            getattr(self, f"step_{name}")()

    # -- steps --------------------------------------------------------------------------------

    # -- rollback -----------------------------------------------------------------------------
    def roll_back(self, *, reason: str, cancelled: bool = False) -> None:
        """Undo what the steps before the point of no return did. Runs shielded: no cancel interrupts it."""
        self.runner.error(f"Rolling back: {reason}")
        undone: list[str] = []
        problems: list[str] = []
        if self.m.group_guid is None or not MigrationBackup.objects.filter(migration=self.m).exists():
            self.runner.info("Nothing had been changed yet; nothing to undo.")
            self.save(status=MigrationStatus.CANCELLED if cancelled else MigrationStatus.FAILED,
                      finished_at=timezone.now())
            self.runner.summary = ("Cancelled before anything was changed." if cancelled
                                   else f"Failed before anything was changed: {reason}")
            return
        exchange = self.c.exchange
        for ident in filter(None, {self.m.cloud_group_id, self.temp_address}):
            found = self.find_list(ident)
            if found is not None and not found.is_dir_synced:
                try:
                    exchange.remove_distribution_group(found.guid or ident, bypass_security_group_manager_check=True)
                    undone.append(f"removed the cloud list {found.primary_smtp_address}")
                except exo.ExchangeError as exc:
                    problems.append(f"remove the cloud list {found.primary_smtp_address}: {exc}")
                break
        try:
            current = self.current_group_dn()
            original_ou = self.group["ou"]
            if current and adc.parse_dn(current).parent.normalized() != adc.parse_dn(original_ou).normalized():
                self.c.directory.move(current, original_ou)
                undone.append(f"moved the group back to {original_ou}")
        except adc.AdError as exc:
            problems.append(f"move the group back to its OU: {exc}")
        if any("moved the group back" in u for u in undone):
            try:
                undone.append(self.sync_after_roll_back("so the cloud twin returns"))
            except syncc.SyncError as exc:
                self.runner.warning(f"Could not start a sync ({exc}); the next scheduled cycle brings the twin back.")
        for line in undone:
            self.runner.warning(f"Undone: {line}.")
        if problems:
            for line in problems:
                self.runner.error(f"Could not undo: {line}. Do it by hand.")
            self.save(status=MigrationStatus.FAILED, finished_at=timezone.now())
            self.runner.summary = f"Failed, and the roll back was incomplete: {'; '.join(problems)}."
        elif cancelled:
            self.save(status=MigrationStatus.CANCELLED, finished_at=timezone.now())
            self.runner.summary = (f"Cancelled and rolled back: {'; '.join(undone)}." if undone
                                   else "Cancelled before anything was changed.")
        elif undone:
            self.save(status=MigrationStatus.ROLLED_BACK, finished_at=timezone.now())
            self.runner.summary = f"Rolled back: {'; '.join(undone)}. Cause: {reason}"
        else:
            self.save(status=MigrationStatus.FAILED, finished_at=timezone.now())
            self.runner.summary = f"Failed before anything was changed: {reason}"
