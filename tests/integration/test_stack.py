"""`manage.py stack up|down|status` really starts and stops the local servers (README, "Jobs from the command
line"): Redis here, in a var dir and on a port of this test's own, so the run's own Redis is never touched."""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from portal.stack import pid_alive
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
