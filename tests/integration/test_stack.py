"""`manage.py stack up|down|status` really starts and stops the local servers (README, "Jobs from the command
line"): Redis here, in a var dir and on a port of this test's own, so the run's own Redis is never touched."""

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from portal.stack import pid_alive
from tests.conftest import wait_for
from tests.support import labs

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def stack(tmp_path):
    port = labs.own_port(labs.STACK_REDIS)
    env = {**os.environ, "DIROPS_VAR_DIR": str(tmp_path / "var"), "REDIS_URL": f"redis://127.0.0.1:{port}/0"}

    def manage(*args: str) -> str:
        done = subprocess.run([sys.executable, "manage.py", "stack", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    manage.port = port
    yield manage
    if _redis_answers(port):  # what a failed assertion left running
        manage("down")


def test_stack_up_status_and_down_start_and_stop_redis(stack):
    assert not _redis_answers(stack.port), f"something already answers on {stack.port}"
    started = stack("up", "redis")
    pid = int(re.search(r"redis: started \(pid (\d+)\)", started).group(1))
    assert _redis_answers(stack.port)
    assert stack("status").strip().splitlines() == [f"redis: running (pid {pid})"]

    assert stack("down").strip().splitlines() == ["redis: stopped"]
    assert not _redis_answers(stack.port)
    # Gone, or a zombie its new parent has not reaped yet (`stack down` waits for exactly that).
    assert not pid_alive(pid)


def test_ctrl_c_on_stack_run_stops_the_workers_and_the_jobs_they_run(tmp_path):
    """`make demo` ends with Ctrl-C: a job running at that moment (RQ forks it a work-horse in a process
    group of its own) must not keep running after the stack says it stopped, on any worker."""
    from redis import Redis
    from rq import Queue

    port = labs.own_port(labs.STACK_REDIS)
    assert not _redis_answers(port), f"something already answers on {port}"
    var = tmp_path / "var"
    env = {**os.environ, "DIROPS_VAR_DIR": str(var), "REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    run = subprocess.Popen([sys.executable, "manage.py", "stack", "run", "redis", "workers", "--workers", "2"],
                           cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)
    pids: list[int] = []
    try:
        workers = [var / "run" / f"worker{i}.pid" for i in (1, 2)]
        wait_for(lambda: all(w.exists() for w in workers) and _redis_answers(port), timeout=60,
                 message="the stack's Redis and workers")
        pids += [int(w.read_text()) for w in workers]
        queue = Queue("default", connection=Redis.from_url(env["REDIS_URL"]))
        pid_files = [tmp_path / f"horse{i}.pid" for i in (1, 2)]
        for pid_file in pid_files:  # one long job per worker
            queue.enqueue("tests.support.horse.record_pid_and_sleep", str(pid_file), 300, job_timeout=600)
        wait_for(lambda: all(f.exists() and f.read_text() for f in pid_files), timeout=60,
                 message="both jobs to start")
        horses = [int(f.read_text()) for f in pid_files]
        pids += horses
        assert all(pid_alive(h) for h in horses)

        run.send_signal(signal.SIGINT)  # Ctrl-C
        output, _ = run.communicate(timeout=90)

        assert "worker1: stopped" in output and "worker2: stopped" in output, output
        assert output.index("worker1: stopped") < output.index("redis: stopped"), "Redis outlives its clients"
        assert [p for p in pids if pid_alive(p)] == [], "a worker or a job's work-horse outlived the stack"
        assert not _redis_answers(port)
    finally:
        for pid in pids:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        if run.poll() is None:
            run.kill()
            run.wait(timeout=10)
        if _redis_answers(port):
            subprocess.run([sys.executable, "manage.py", "stack", "down"], cwd=ROOT, env=env, timeout=60)
