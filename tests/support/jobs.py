"""Job kinds that exist only for the tests (loaded through JOB_EXTRA_MODULES)."""

import threading
import time

from django.db import connection

from portal.jobs.runner import JobFailed, JobRunner


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
