"""Starting an Entra Connect sync cycle when another one may be running (one helper, used by the DL
migrations, the Lab page's job and `manage.py lab sync`): the running cycle is waited for, an unreachable
server is tried again, and a cycle the server accepted is logged once."""

from __future__ import annotations

import pytest

from migrations_app import engine
from portal.connectors import sync as syncc


class ScriptedSync:
    """A sync server answering Start-ADSyncSyncCycle from a script: an exception to raise, or None to accept."""

    def __init__(self, *answers: Exception | None, idle: bool = True) -> None:
        self.answers, self.idle, self.calls = list(answers), idle, []

    def start_sync_cycle(self, *, policy: str) -> syncc.SyncCycleStart:
        self.calls.append(f"start {policy}")
        answer = self.answers.pop(0)
        if answer is not None:
            raise answer
        return syncc.SyncCycleStart(policy=policy, result="Success")

    def wait_until_idle(self, *, timeout: float, poll: float) -> bool:
        self.calls.append(f"wait {timeout:g}/{poll:g}")
        return self.idle


def running() -> syncc.SyncAlreadyRunning:
    return syncc.SyncAlreadyRunning("Start-ADSyncSyncCycle failed: Sync is already running.")


def unreachable() -> syncc.SyncUnreachable:
    return syncc.SyncUnreachable("the sync server did not answer", cmdlet="Start-ADSyncSyncCycle")


def start(sync: ScriptedSync, **kwargs):
    lines: list[tuple[str, str]] = []
    sleeps: list[float] = []
    checks: list[str] = []
    started = syncc.start_sync_cycle_when_idle(
        sync, log=lambda level, message: lines.append((level, message)), sleep=sleeps.append,
        before_retry=lambda: checks.append("cancel?"), **kwargs)
    return started, lines, sleeps, checks


def test_an_unreachable_server_is_tried_again_after_the_pause_it_was_given() -> None:
    sync = ScriptedSync(unreachable(), syncc.SyncEngineUnavailable("the scheduler is suspended"), None)
    started, lines, sleeps, checks = start(sync, attempts=3, retry_seconds=30)
    assert started.result == "Success"
    assert sync.calls == ["start Delta"] * 3
    assert sleeps == [30, 30] and checks == ["cancel?", "cancel?"]
    assert lines == [("warning", "Sync server: the sync server did not answer (1/3)."),
                     ("warning", "Sync server: the scheduler is suspended (2/3)."),
                     ("info", "Start-ADSyncSyncCycle -PolicyType Delta: started.")]


def test_a_server_unreachable_every_time_gives_up_after_the_attempts_without_a_last_pause() -> None:
    sync = ScriptedSync(unreachable(), unreachable())
    with pytest.raises(syncc.SyncCycleNotStarted,
                       match=r"after 2 attempt\(s\): the sync server did not answer$") as failed:
        start(sync, attempts=2, retry_seconds=5)
    assert failed.value.cmdlet == "Start-ADSyncSyncCycle"
    assert sync.calls == ["start Delta"] * 2


def test_a_running_cycle_is_waited_for_once_and_the_accepted_start_logged_once() -> None:
    sync = ScriptedSync(running(), None)
    _, lines, sleeps, checks = start(sync, policy="Initial", why="after the OU change", wait_timeout=120, poll=2)
    assert sync.calls == ["start Initial", "wait 120/2", "start Initial"]
    assert sleeps == [] and checks == ["cancel?"]
    assert lines == [("info", "A sync cycle is already running; waiting for it to finish, then starting this one "
                              "(1/2)."),
                     ("info", "Start-ADSyncSyncCycle -PolicyType Initial: started (after the OU change).")]


def test_the_last_attempt_refused_for_a_running_cycle_ends_without_a_wait_that_nothing_would_follow() -> None:
    sync = ScriptedSync(running(), running(), running())
    with pytest.raises(syncc.SyncCycleNotStarted, match=r"after 3 attempt\(s\): a sync cycle was running$"):
        start(sync, attempts=3, wait_timeout=2, poll=0.5)
    assert sync.calls == ["start Delta", "wait 2/0.5", "start Delta", "wait 2/0.5", "start Delta"]


def test_a_wait_that_timed_out_is_the_reason_given() -> None:
    sync = ScriptedSync(running(), running(), idle=False)
    with pytest.raises(syncc.SyncCycleNotStarted, match="the running sync cycle did not finish within 10 minutes$"):
        start(sync, wait_timeout=600)


def test_refused_credentials_are_not_retried() -> None:
    sync = ScriptedSync(syncc.SyncAuthFailed("Access is denied", cmdlet="Start-ADSyncSyncCycle"), None)
    with pytest.raises(syncc.SyncAuthFailed, match="Access is denied"):
        start(sync, attempts=5)
    assert sync.calls == ["start Delta"]


class RecordingRunner:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.cancel_checks = 0

    def log(self, message: str, *, level: str = "info") -> None:
        self.lines.append((level, message))

    def check_cancel(self, *, force: bool = False) -> None:
        self.cancel_checks += force


def test_a_migration_sync_retries_through_the_helper_and_fails_as_a_migration_error(settings) -> None:
    settings.DL_SYNC_ATTEMPTS, settings.DL_SYNC_RETRY_SECONDS = 3, 30.0
    runner, sleeps = RecordingRunner(), []
    sync = ScriptedSync(unreachable(), running(), None)
    engine.start_delta_sync(sync, runner, why="so the cloud twin is deleted", sleep=sleeps.append)
    assert sync.calls == ["start Delta", "start Delta", "wait 120/2", "start Delta"]
    assert sleeps == [30.0] and runner.cancel_checks == 2
    assert runner.lines[-1] == ("info", "Start-ADSyncSyncCycle -PolicyType Delta: started (so the cloud twin is "
                                        "deleted).")
    with pytest.raises(engine.MigrationError, match=r"could not start a Delta sync cycle after 3 attempt\(s\)"):
        engine.start_delta_sync(ScriptedSync(unreachable(), unreachable(), unreachable()), runner, why="x",
                                sleep=sleeps.append)
