"""The local processes `make demo` and `make test` run: Redis, RQ workers, the web server, the
PostgreSQL server the tests also run against (and the lab's servers as they arrive). Each is started
detached with a pid file under var/run, so a second `up` reuses what runs and `down` stops exactly what
was started, nothing else.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from django.conf import settings

RUN_DIR = settings.VAR_DIR / "run"
LOG_DIR = settings.VAR_DIR / "log"
MANAGE = str(settings.BASE_DIR / "manage.py")

# The commands docker-compose.yml runs too (tests/unit/test_compose.py keeps the two in agreement).
WEB_ARGV = ["gunicorn", "portal.wsgi:application", "--workers", "2", "--threads", "4", "--timeout", "120"]
WORKER_ARGV = ["manage.py", "rqworker", *settings.RQ_QUEUE_NAMES]


class StackError(Exception):
    pass


# How a server stops cleanly, kept by name: `down` knows a service only by its pid file. PostgreSQL's
# postmaster alone gets SIGINT (fast shutdown: sessions rolled back, a checkpoint, exit); signalling its
# backends and helpers from outside would look like a crash to it.
STOP_OPTIONS: dict[str, dict] = {"postgres": {"stop_signal": signal.SIGINT, "stop_group": False}}
SERVERS = ("redis", "postgres")
# An RQ worker takes a first SIGTERM as "finish the job in hand, then exit" and a second as "kill the job
# (its work-horse) now": a job still running after this long is interrupted, and the portal's sweep shows it
# as worker lost (resumable) at the next start. Ctrl-C on `make demo` must not wait out a migration.
WORKER_WARM_STOP_SECONDS = 10.0


def stop_options(name: str) -> dict:
    if name.startswith("worker"):
        return {"cold_stop_after": WORKER_WARM_STOP_SECONDS}
    return STOP_OPTIONS.get(name, {})


@dataclass
class Service:
    name: str
    argv: list[str]
    ready: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = settings.BASE_DIR
    startup_seconds: float = 20.0
    # Which signal stops it, sent to its whole process group or to its leader alone.
    stop_signal: int = signal.SIGTERM
    stop_group: bool = True
    # Seconds after which the stop signal is sent a second time (RQ's cold shutdown); None: sent once.
    cold_stop_after: float | None = None
    # Each `up` runs these (idempotent): before starting it, what it needs on disk; once it is ready,
    # what it must hold before anyone uses it.
    prepare: Callable[[], None] | None = None
    after_start: Callable[[], None] | None = None

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


# PostgreSQL: started only by name (`stack up postgres`); make test runs its -m postgres tests on it.
# postgres refuses to run as root, so when root starts it, it runs as Debian's `postgres` system user, which
# owns its data directory; started by anyone else, it runs as them.
POSTGRES_SYSTEM_USER = "postgres"


@dataclass(frozen=True)
class PostgresEndpoint:
    host: str
    port: int
    user: str
    password: str
    name: str


def postgres_endpoint() -> PostgresEndpoint:
    url = urlparse(settings.STACK_POSTGRES_URL)
    if url.scheme not in ("postgres", "postgresql", "pgsql"):
        raise StackError(f"POSTGRES_URL must be a postgres:// URL, not {settings.STACK_POSTGRES_URL!r}")
    host = url.hostname or "127.0.0.1"
    if host not in ("127.0.0.1", "localhost"):
        raise StackError(f"The local PostgreSQL listens on loopback only; POSTGRES_URL names {host}")
    return PostgresEndpoint(host="127.0.0.1", port=url.port or 5432, user=unquote(url.username or "dirops"),
                            password=unquote(url.password or ""), name=unquote(url.path.lstrip("/")) or "dirops")


def postgres_bin(program: str) -> str:
    """Debian keeps the server programs out of PATH, one directory per major version: take the newest."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"), key=lambda p: int(p.split("/")[4]))
    if found:
        return found[-1]
    on_path = shutil.which(program)
    if on_path:
        return on_path
    raise StackError(f"PostgreSQL's {program} is not installed (Debian: apt-get install postgresql-15).")


def _as_postgres_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    try:
        pwd.getpwnam(POSTGRES_SYSTEM_USER)
    except KeyError as exc:
        raise StackError(f"No {POSTGRES_SYSTEM_USER!r} system user (Debian's postgresql package creates it).") from exc
    # setpriv execs (no fork, unlike runuser), so the pid file names the postmaster itself.
    return ["setpriv", f"--reuid={POSTGRES_SYSTEM_USER}", f"--regid={POSTGRES_SYSTEM_USER}", "--init-groups",
            "--reset-env", *argv]


def _postgres_user_can_reach(path: Path) -> bool:
    return subprocess.run(["setpriv", f"--reuid={POSTGRES_SYSTEM_USER}", f"--regid={POSTGRES_SYSTEM_USER}",
                           "--init-groups", "test", "-x", str(path)]).returncode == 0


def postgres_data_dir() -> Path:
    """Under the var dir; but a checkout in a directory others cannot enter (/root is 700) keeps the postgres
    user out of it, and then the cluster lives in that user's home, one per var dir."""
    preferred = settings.VAR_DIR / "postgres" / "data"
    if os.geteuid() != 0:
        return preferred
    try:
        home = Path(pwd.getpwnam(POSTGRES_SYSTEM_USER).pw_dir)
    except KeyError:
        return preferred  # _as_postgres_user says what is missing
    if _postgres_user_can_reach(settings.VAR_DIR):
        return preferred
    return home / "dirops" / hashlib.sha256(str(settings.VAR_DIR).encode()).hexdigest()[:16] / "data"


def _postgres_initdb(data: Path) -> None:
    """Create the cluster once; a data directory holding PG_VERSION is reused as it is."""
    if (data / "PG_VERSION").exists():
        return
    data.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        entry = pwd.getpwnam(POSTGRES_SYSTEM_USER)
        for path in (data, *data.parents):
            if path == Path(entry.pw_dir) or path == settings.VAR_DIR:
                break
            os.chown(path, entry.pw_uid, entry.pw_gid)
        if not _postgres_user_can_reach(data):
            raise StackError(f"The {POSTGRES_SYSTEM_USER} user cannot enter {data}: every directory above it must "
                             "be searchable by others (chmod o+x), or set DIROPS_VAR_DIR elsewhere.")
    data.chmod(0o700)
    # Loopback TCP only (no Unix socket to share), trust there: a test and development server on this
    # machine, never a production database.
    argv = _as_postgres_user([postgres_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                              "--encoding=UTF8", "--locale=C", "--no-instructions"])
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise StackError(f"initdb failed (code {done.returncode}):\n{done.stdout}{done.stderr}")


def _postgres_connect(endpoint: PostgresEndpoint, dbname: str = "postgres", user: str = "postgres"):
    import psycopg

    return psycopg.connect(host=endpoint.host, port=endpoint.port, user=user, dbname=dbname, connect_timeout=2,
                           autocommit=True)


def _postgres_ready(endpoint: PostgresEndpoint) -> bool:
    # The port opens before the server accepts sessions ("the database system is starting up").
    if not port_open(endpoint.host, endpoint.port):
        return False
    try:
        with _postgres_connect(endpoint):
            return True
    except Exception:  # noqa: BLE001 - not ready yet, whatever the reason
        return False


def _postgres_ensure_database(endpoint: PostgresEndpoint) -> None:
    """The portal's role (allowed to create databases: pytest-django creates test_<name>) and database."""
    from psycopg import sql

    with _postgres_connect(endpoint) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [endpoint.user]).fetchone():
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB").format(sql.Identifier(endpoint.user)))
        if endpoint.password:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(endpoint.user),
                                                                    sql.Literal(endpoint.password)))
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [endpoint.name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(endpoint.name),
                                                                       sql.Identifier(endpoint.user)))


def postgres_service() -> Service:
    endpoint = postgres_endpoint()
    data = postgres_data_dir()
    # synchronous_commit off: a crash of the machine may lose the last commits, never corrupts; the tests
    # commit every job log line and this machine's disk is shared.
    argv = [postgres_bin("postgres"), "-D", str(data), "-p", str(endpoint.port),
            "-c", f"listen_addresses={endpoint.host}", "-c", "unix_socket_directories=",
            "-c", "synchronous_commit=off"]
    return Service("postgres", _as_postgres_user(argv), ready=lambda: _postgres_ready(endpoint),
                   startup_seconds=60.0, prepare=lambda: _postgres_initdb(data),
                   after_start=lambda: _postgres_ensure_database(endpoint), **STOP_OPTIONS.get("postgres", {}))


def worker_service(index: int) -> Service:
    argv = [sys.executable, MANAGE, *WORKER_ARGV[1:], "--name", f"{socket.gethostname()}-w{index}-{os.getpid()}"]
    return Service(f"worker{index}", argv, ready=lambda: True, **stop_options(f"worker{index}"))


def web_service(bind: str) -> Service:
    host, _, port = bind.rpartition(":")
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    argv = [gunicorn, *WEB_ARGV[1:], "--bind", bind, "--access-logfile", "-"]
    return Service("web", argv, ready=lambda: port_open(host, int(port)))


def pid_alive(pid: int) -> bool:
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
    return pid if pid_alive(pid) else None


def start(service: Service, *, env: dict[str, str] | None = None) -> tuple[int, bool]:
    """Start the service unless it runs already; returns (pid, started_now)."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    pid = running_pid(service)
    if pid:
        if service.after_start:
            service.after_start()
        return pid, False
    if service.name == "redis" and service.ready():
        raise StackError(f"Something else already listens on Redis's port ({settings.REDIS_URL}); "
                         "stop it or set REDIS_URL to another port.")
    if service.name == "postgres" and port_open(postgres_endpoint().host, postgres_endpoint().port):
        raise StackError(f"Something else already listens on PostgreSQL's port ({settings.STACK_POSTGRES_URL}); "
                         "stop it or set POSTGRES_URL to another port.")
    if service.prepare:
        service.prepare()
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
    if service.after_start:
        service.after_start()
    return proc.pid, True


def session_members(sid: int) -> list[int]:
    """The live processes of session `sid`. Every service leads a session of its own (start_new_session), and
    what it forks stays in it even after moving to a process group of its own, as RQ's work-horse does
    (setpgrp): signalling the service's group alone would leave such a child running."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # After the command name in parentheses: state, ppid, pgrp, session, ...
            state, _ppid, _pgrp, session = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:4]
        except (OSError, ValueError):
            continue
        if int(session) == sid and state != "Z":
            members.append(int(entry.name))
    return members


def _signal(service: Service, pid: int, signum: int) -> None:
    try:
        if service.stop_group:
            os.killpg(pid, signum)  # its own session: the whole group (gunicorn's workers too)
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _wait_gone(pids: list[int], deadline: float) -> None:
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)


def stop(service: Service, *, timeout: float = 15.0) -> bool:
    pid = running_pid(service)
    service.pidfile.unlink(missing_ok=True)
    if not pid:
        return False
    _signal(service, pid, service.stop_signal)
    start = time.monotonic()
    if service.cold_stop_after is not None:
        _wait_gone([pid], start + service.cold_stop_after)
        if pid_alive(pid):
            _signal(service, pid, service.stop_signal)
    _wait_gone([pid], start + timeout)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    # Whatever it forked and left behind (a work-horse whose worker was killed): stopped the same way.
    leftovers = [p for p in session_members(pid) if p != pid]
    for member in leftovers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGTERM)
    _wait_gone(leftovers, time.monotonic() + 5.0)
    for member in leftovers:
        if pid_alive(member):
            with contextlib.suppress(ProcessLookupError):
                os.kill(member, signal.SIGKILL)
    return True


def stop_all(services: list[Service]) -> list[str]:
    """Stop the services, the servers' clients together (two busy workers wait out their jobs' grace at the
    same time, not one after the other), then Redis and PostgreSQL; returns the names of those stopped."""
    from concurrent.futures import ThreadPoolExecutor

    clients = [s for s in services if s.name not in SERVERS]
    servers = [s for s in services if s.name in SERVERS]
    with ThreadPoolExecutor(max_workers=max(1, len(clients))) as pool:
        stopped = [s.name for s, done in zip(clients, pool.map(stop, clients), strict=True) if done]
    return stopped + [s.name for s in servers if stop(s)]


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
    # Stop the servers' clients first: Redis and PostgreSQL last, once no worker needs them.
    names.sort(key=lambda n: n in SERVERS)
    return [Service(name, [], ready=lambda: True, **stop_options(name)) for name in names]
