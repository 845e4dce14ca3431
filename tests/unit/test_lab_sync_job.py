"""The Lab page's sync cycle job and the `lab sync` command when the sync server is busy: they wait for the
running cycle, then start their own."""

from __future__ import annotations

import contextlib
import io
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from portal.connectors.sync import SyncAlreadyRunning
from portal.jobs.choices import JobStatus
from portal.jobs.services import do_start_job, run_job_inline

pytestmark = pytest.mark.django_db(transaction=True)


class BusySync:
    """A sync server running a cycle (the scheduler's) until it is waited for; then idle."""

    def __init__(self, *, finishes: bool = True) -> None:
        self.busy, self.finishes, self.calls = True, finishes, []

    def start_sync_cycle(self, *, policy: str) -> None:
        self.calls.append(f"start {policy}")
        if self.busy:
            raise SyncAlreadyRunning("Start-ADSyncSyncCycle failed: Sync is already running.",
                                     exception_type="InvalidOperationException")
        self.busy = True

    def wait_until_idle(self, *, timeout: float, poll: float) -> bool:
        self.calls.append("wait")
        self.busy = not self.finishes
        return self.finishes

    def run_history(self, *, count: int) -> list[SimpleNamespace]:
        return [SimpleNamespace(result="success", details={"counts": {}, "duration_seconds": 2})]

    def export_errors(self) -> list:
        return []


def _run(monkeypatch, make_user, sync: BusySync):
    monkeypatch.setattr("portal.lab.jobs.entra_connect", lambda: contextlib.nullcontext(sync))
    user = make_user("labadmin", "Administrator")
    return run_job_inline(do_start_job(kind="lab_sync_cycle", user=user, params={"policy": "Delta"}, enqueue=False))


def test_a_cycle_already_running_is_waited_for_and_then_ours_starts(monkeypatch, make_user) -> None:
    sync = BusySync()
    job = _run(monkeypatch, make_user, sync)
    assert job.status == JobStatus.SUCCEEDED, job.summary
    assert sync.calls == ["start Delta", "wait", "start Delta", "wait"]
    log = list(job.log_lines.values_list("message", flat=True))
    assert "A sync cycle is already running; waiting for it to finish, then starting this one (1/2)." in log
    # the cycle the server accepted, once: not the refused attempt too
    assert [line for line in log if line.startswith("Start-ADSyncSyncCycle")] == [
        "Start-ADSyncSyncCycle -PolicyType Delta: started."]
    assert job.summary == "Delta sync cycle finished: success."


def test_a_running_cycle_that_never_ends_fails_the_job_plainly(monkeypatch, make_user) -> None:
    sync = BusySync(finishes=False)
    job = _run(monkeypatch, make_user, sync)
    assert job.status == JobStatus.FAILED
    assert job.summary.endswith("Could not start a Delta sync cycle after 2 attempt(s): the running sync cycle did "
                                "not finish within 10 minutes.")
    assert sync.calls == ["start Delta", "wait", "start Delta"]


def _lab_sync(monkeypatch, sync: BusySync) -> str:
    monkeypatch.setattr("portal.connectors.registry.entra_connect", lambda: contextlib.nullcontext(sync))
    out = io.StringIO()
    call_command("lab", "sync", stdout=out)
    return out.getvalue()


def test_the_lab_sync_command_waits_for_a_running_cycle_then_starts_its_own(monkeypatch) -> None:
    sync = BusySync()
    out = _lab_sync(monkeypatch, sync)
    assert sync.calls == ["start Delta", "wait", "start Delta", "wait"]
    assert "A sync cycle is already running; waiting for it to finish, then starting this one (1/2)." in out
    assert "Start-ADSyncSyncCycle -PolicyType Delta: started." in out
    assert "Delta sync cycle: success in" in out


def test_the_lab_sync_command_says_plainly_when_the_running_cycle_never_ends(monkeypatch) -> None:
    sync = BusySync(finishes=False)
    with pytest.raises(CommandError, match="the running sync cycle did not finish within 10 minutes"):
        _lab_sync(monkeypatch, sync)
    assert sync.calls == ["start Delta", "wait", "start Delta"]


class SchedulerStops(Exception):
    """Ends `lab sync --loop` at its pause between two looks at the schedule."""


def test_the_lab_scheduler_loop_skips_a_due_cycle_while_another_one_runs(monkeypatch) -> None:
    from portal.lab import sync as engine
    from portal.lab.cloud.store import CloudStore
    from portal.lab.management.commands import lab

    def stop(seconds: float) -> None:
        raise SchedulerStops

    sync = BusySync()
    monkeypatch.setattr("portal.connectors.registry.entra_connect", lambda: contextlib.nullcontext(sync))
    monkeypatch.setattr(CloudStore, "open", classmethod(lambda cls, **kwargs: SimpleNamespace(close=lambda: None)))
    monkeypatch.setattr(engine, "due", lambda store: True)
    monkeypatch.setattr(engine, "next_policy", lambda store: "Delta")
    monkeypatch.setattr(lab, "time", SimpleNamespace(monotonic=lambda: 0.0, sleep=stop))
    out = io.StringIO()
    with pytest.raises(SchedulerStops):
        call_command("lab", "sync", "--loop", stdout=out)
    # as a real scheduler: the running cycle is the one that was due, nothing is queued behind it
    assert sync.calls == ["start Delta"]
    assert "skipped: could not start a Delta sync cycle after 1 attempt(s): a sync cycle was running" in out.getvalue()
