"""Job kinds that exist only for the tests (loaded through JOB_EXTRA_MODULES)."""

import os
import threading
import time

from django.db import connection

from portal.jobs.models import Job
from portal.jobs.runner import JobCancelled, JobFailed, JobRunner


class StepsJob(JobRunner):
    """Runs params['steps'] named steps with checkpoints; can warn, fail, or sleep per step."""

    kind = "test_steps"
    name = "Test steps"
    permission = "jobs.run_connectivity_check"

    def run(self):
        steps = self.job.params.get("steps", ["one", "two", "three"])
        fail_at = self.job.params.get("fail_at")
        self.progress(0, len(steps))
        for i, step in enumerate(steps, start=1):
            with self.step(step) as todo:
                if todo:
                    if step == self.job.params.get("cancel_at"):
                        # As if someone pressed Cancel while this step runs.
                        Job.objects.filter(pk=self.job.pk).update(cancel_requested=True)
                    if step == fail_at:
                        raise RuntimeError(f"boom in {step}")
                    if step == self.job.params.get("expected_failure_at"):
                        raise JobFailed(f"{step} could not be done")
                    self.info(f"doing {step}")
                    if step in self.job.params.get("warn_at", []):
                        self.warning(f"{step} needs a look")
                    time.sleep(self.job.params.get("sleep", 0))
            self.progress(i)
        self.summary = f"Did {len(steps)} steps."
        return {"steps": steps}


class ChattyJob(JobRunner):
    """Many threads logging at once into one job."""

    kind = "test_chatty"
    name = "Test chatty"
    permission = "jobs.run_connectivity_check"

    def run(self):
        threads, per_thread = self.job.params.get("threads", 8), self.job.params.get("lines", 50)

        def talk(t):
            try:
                for n in range(per_thread):
                    self.info(f"t{t} n{n}")
            finally:
                # Each thread has its own connection: a PostgreSQL session left open keeps the test database
                # from being dropped.
                connection.close()

        workers = [threading.Thread(target=talk, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return {}


class SleepyJob(JobRunner):
    """Logs a line every params['interval'] seconds until cancelled or params['lines'] are written."""

    kind = "test_sleepy"
    name = "Test sleepy"
    permission = "jobs.run_connectivity_check"

    def run(self):
        total = self.job.params.get("lines", 100)
        self.progress(0, total)
        for n in range(total):
            if n == self.job.params.get("checkpoint_at"):
                self.checkpoint("halfway", {"n": n})
            self.info(f"line {n}")
            time.sleep(self.job.params.get("interval", 0.1))
            self.progress(n + 1)
            self.check_cancel(force=True)
        return {}


class UndoingJob(JobRunner):
    """Does params['steps']; cancelled, it undoes the done ones in reverse, one log line each, shielded
    as every rollback is (the migration engine's pattern)."""

    kind = "test_undoing"
    name = "Test undoing"
    permission = "jobs.run_connectivity_check"

    def run(self):
        done = []
        try:
            for step in self.job.params.get("steps", ["one", "two", "three"]):
                with self.step(step) as todo:
                    if todo:
                        self.info(f"doing {step}")
                        if step == self.job.params.get("cancel_at"):
                            Job.objects.filter(pk=self.job.pk).update(cancel_requested=True)
                        done.append(step)
        except JobCancelled:
            with self.shield():
                for step in reversed(done):
                    self.warning(f"Undone: {step}")
                    self.progress(len(done))
                    self.check_cancel(force=True)
            raise
        return {"done": done}


class GatedJob(JobRunner):
    """Logs, then waits until the test sets GATES[job pk]: lets a test act while a runner is mid-job."""

    kind = "test_gated"
    name = "Test gated"
    permission = "jobs.run_connectivity_check"
    GATES: dict[int, threading.Event] = {}
    STARTED: dict[int, threading.Event] = {}

    def run(self):
        self.info("before the gate")
        self.STARTED.setdefault(self.job.pk, threading.Event()).set()
        if not self.GATES.setdefault(self.job.pk, threading.Event()).wait(timeout=30):
            raise RuntimeError("the test never opened the gate")
        self.info("after the gate")
        self.checkpoint("after")
        self.progress(1, 1)
        return {"ran": True}


# -- worker processes a test is about to SIGKILL ---------------------------------------------------
# A worker started with TEST_PAUSE_AFTER_CHECKPOINT=<step> stops dead after writing that checkpoint,
# and with TEST_FAIL_STEP=<step> + TEST_PAUSE_IN_ROLLBACK=1 it fails that step and stops dead half-way
# through the rollback, so the test can SIGKILL the real worker at exactly that point.


def _pause_forever() -> None:
    while True:
        time.sleep(3600)


if os.environ.get("TEST_PAUSE_AFTER_CHECKPOINT"):
    _real_checkpoint = JobRunner.checkpoint

    def _checkpoint_then_pause(self, name, data=None):
        _real_checkpoint(self, name, data)
        if name == os.environ["TEST_PAUSE_AFTER_CHECKPOINT"]:
            _pause_forever()

    JobRunner.checkpoint = _checkpoint_then_pause

if os.environ.get("TEST_FAIL_STEP"):
    from migrations_app import engine as _engine
    from portal.connectors import exchange as _exo

    _step = os.environ["TEST_FAIL_STEP"]
    _real_step = getattr(_engine.MigrationProcess, f"step_{_step}")

    def _work_then_fail(self):
        _real_step(self)
        raise _exo.ServiceUnavailable(f"injected failure in {_step} (test)")

    setattr(_engine.MigrationProcess, f"step_{_step}", _work_then_fail)
    if os.environ.get("TEST_PAUSE_IN_ROLLBACK"):
        _real_remove = _exo.ExchangeOnline.remove_distribution_group

        def _remove_then_pause(self, *args, **kwargs):
            _real_remove(self, *args, **kwargs)
            _pause_forever()

        _exo.ExchangeOnline.remove_distribution_group = _remove_then_pause

if os.environ.get("TEST_PAUSE_AT_SHARED_SYNC"):
    # The batch's run job stops dead as it starts the wave's shared sync (its round marked, no cycle yet).
    from migrations_app import engine as _engine_sync

    _engine_sync.start_delta_sync = lambda *args, **kwargs: _pause_forever()
