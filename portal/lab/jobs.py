"""Lab jobs: a sync cycle started the way an admin starts one, through the Entra Connect connector."""

from __future__ import annotations

from typing import Any

from portal.connectors.registry import entra_connect
from portal.connectors.sync import SyncCycleNotStarted, start_sync_cycle_when_idle
from portal.jobs.runner import JobFailed, JobRunner

WAIT_SECONDS = 600
POLL_SECONDS = 0.5  # a lab cycle takes seconds: the admin watching it sees it end at once


class LabSyncCycleJob(JobRunner):
    kind = "lab_sync_cycle"
    name = "Sync cycle (lab)"
    permission = "accounts.manage_lab"

    def run(self) -> dict[str, Any]:
        policy = self.job.params.get("policy", "Delta")
        self.progress(0, 3)
        with entra_connect() as sync:
            try:
                start_sync_cycle_when_idle(sync, policy=policy, wait_timeout=WAIT_SECONDS, poll=POLL_SECONDS,
                                           log=lambda level, message: self.log(message, level=level),
                                           before_retry=lambda: self.check_cancel(force=True))
            except SyncCycleNotStarted as exc:
                raise JobFailed(f"{str(exc)[:1].upper()}{str(exc)[1:]}.") from None
            self.progress(1)
            self.info("Waiting for the sync server to finish the cycle…")
            self._wait(sync)
            self.progress(2)
            history = sync.run_history(count=1)
            errors = sync.export_errors()
        last = history[0] if history else None
        details = dict(last.details) if last else {}
        # What an admin compares between cycles; the full run report stays on the sync server.
        result = {"policy": policy, "result": last.result if last else None, "export_errors": len(errors),
                  "counts": details.get("counts"), "writebacks": details.get("writebacks"),
                  "seconds": details.get("duration_seconds")}
        for error in errors[:50]:
            self.warning(f"Export error {error.error_code}: {error.distinguished_name}",
                         data={"message": error.message, "attribute": error.attribute})
        self.progress(3)
        self.summary = (f"{policy} sync cycle finished: {result['result'] or 'no result reported'}"
                        + (f", {len(errors)} export error(s)." if errors else "."))
        return result

    def _wait(self, sync: Any) -> None:
        if not sync.wait_until_idle(timeout=WAIT_SECONDS, poll=0.5):
            raise JobFailed(f"The sync cycle did not finish within {WAIT_SECONDS // 60} minutes.")
