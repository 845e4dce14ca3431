"""The local processes `make demo` and `make test` run: Redis, RQ workers, the web server (and the
lab's servers as they arrive). Each is started detached with a pid file under var/run, so a second
`up` reuses what runs and `down` stops exactly what was started, nothing else.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings

RUN_DIR = settings.VAR_DIR / "run"
LOG_DIR = settings.VAR_DIR / "log"
MANAGE = str(settings.BASE_DIR / "manage.py")

# The commands docker-compose.yml runs too (tests/unit/test_compose.py keeps the two in agreement).
WEB_ARGV = ["gunicorn", "portal.wsgi:application", "--workers", "2", "--threads", "4", "--timeout", "120"]
WORKER_ARGV = ["manage.py", "rqworker", *settings.RQ_QUEUE_NAMES]


class StackError(Exception):
    pass


@dataclass
class Service:
    name: str
    argv: list[str]
    ready: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = settings.BASE_DIR
    startup_seconds: float = 20.0

    @property
    def pidfile(self) -> Path:
        return RUN_DIR / f"{self.name}.pid"

    @property
    def logfile(self) -> Path:
        return LOG_DIR / f"{self.name}.log"


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _redis_endpoint() -> tuple[str, int]:
    url = urlparse(settings.REDIS_URL)
    return url.hostname or "127.0.0.1", url.port or 6379


def redis_service() -> Service:
    host, port = _redis_endpoint()
    data = settings.VAR_DIR / "redis"
    data.mkdir(parents=True, exist_ok=True)
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    # Loopback only, no persistence to disk: the queue is a work list, the database keeps the jobs.
    argv = [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data), "--save", "",
            "--appendonly", "no", "--protected-mode", "yes", "--daemonize", "no"]
    return Service("redis", argv, ready=lambda: port_open(host, port))


def worker_service(index: int) -> Service:
    argv = [sys.executable, MANAGE, *WORKER_ARGV[1:], "--name", f"{socket.gethostname()}-w{index}-{os.getpid()}"]
    return Service(f"worker{index}", argv, ready=lambda: True)


def web_service(bind: str) -> Service:
    host, _, port = bind.rpartition(":")
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    argv = [gunicorn, *WEB_ARGV[1:], "--bind", bind, "--access-logfile", "-"]
    return Service("web", argv, ready=lambda: port_open(host, int(port)))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); it is gone for our purposes.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def running_pid(service: Service) -> int | None:
    try:
        pid = int(service.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def start(service: Service, *, env: dict[str, str] | None = None) -> tuple[int, bool]:
    """Start the service unless it runs already; returns (pid, started_now)."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    pid = running_pid(service)
    if pid:
        return pid, False
    if service.name == "redis" and service.ready():
        raise StackError(f"Something else already listens on Redis's port ({settings.REDIS_URL}); "
                         "stop it or set REDIS_URL to another port.")
    log = open(service.logfile, "ab")  # noqa: SIM115 - handed to the child, closed below
    try:
        proc = subprocess.Popen(service.argv, cwd=service.cwd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env={**os.environ, **(env or {}), **service.env},
                                start_new_session=True)
    finally:
        log.close()
    service.pidfile.write_text(str(proc.pid))
    deadline = time.monotonic() + service.startup_seconds
    while not service.ready():
        if proc.poll() is not None:
            raise StackError(f"{service.name} exited at start (code {proc.returncode}); see {service.logfile}:\n"
                             + tail(service.logfile))
        if time.monotonic() > deadline:
            raise StackError(f"{service.name} did not become ready in {service.startup_seconds:.0f}s; see "
                             f"{service.logfile}:\n" + tail(service.logfile))
        time.sleep(0.1)
    return proc.pid, True


def stop(service: Service, *, timeout: float = 15.0) -> bool:
    pid = running_pid(service)
    service.pidfile.unlink(missing_ok=True)
    if not pid:
        return False
    try:
        os.killpg(pid, signal.SIGTERM)  # its own session: the whole group (gunicorn's workers too)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _pid_alive(pid):
        os.killpg(pid, signal.SIGKILL)
    return True


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def lab_scheduler_service() -> Service:
    """The lab sync server's scheduler: a delta cycle whenever its interval says one is due."""
    return Service("lab-scheduler", [sys.executable, MANAGE, "lab", "sync", "--loop"], ready=lambda: True)


def known_services(*, workers: int = 2, bind: str = "127.0.0.1:8000") -> list[Service]:
    services = [redis_service(), *(worker_service(i) for i in range(1, workers + 1)), web_service(bind)]
    if settings.LAB_MODE:
        services.append(lab_scheduler_service())
    return services


def all_pidfile_services() -> list[Service]:
    """Every service with a pid file, whatever started it, so `down` stops everything `up` started."""
    names = sorted(p.stem for p in RUN_DIR.glob("*.pid")) if RUN_DIR.exists() else []
    # Stop the servers' clients first: Redis last, once no worker needs it.
    names.sort(key=lambda n: n == "redis")
    return [Service(name, [], ready=lambda: True) for name in names]
