"""Shared fixtures: users per role, and real RQ worker processes working on the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from django.conf import settings

from portal.accounts.roles import ROLE_PERMISSIONS

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Real hashing is deliberately slow; the tests create hundreds of users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _empty_cache():
    # The portal caches figures of stored snapshots per process; a test's database rolled back must not
    # leave them to the next test.
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def make_user(django_user_model):
    from django.contrib.auth.models import Group

    from portal.accounts.services import do_sync_roles

    do_sync_roles()

    def make(username: str, *roles: str, password: str = "pw-for-tests-only-1"):
        user = django_user_model.objects.create_user(username=username, password=password)
        user.groups.set(Group.objects.filter(name__in=roles))
        return user

    return make


@pytest.fixture
def helpdesk(make_user):
    return make_user("hd", "Helpdesk")


@pytest.fixture
def role_users(make_user):
    return {role: make_user(role.lower(), role) for role in ROLE_PERMISSIONS}


@pytest.fixture
def no_enqueue(monkeypatch):
    """Unit tests run jobs inline; nothing goes to Redis."""
    calls = []
    monkeypatch.setattr("portal.jobs.services._enqueue", lambda pk, queue: calls.append(pk))
    return calls


def _test_database_url() -> str:
    """The database pytest-django made for this session, as a URL for the worker processes' settings."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    assert db["ENGINE"].endswith("postgresql"), f"worker fixtures support SQLite and PostgreSQL, not {db['ENGINE']}"
    # The session's URL with its database swapped for test_<name>; its password (in the URL or in
    # DATABASE_PASSWORD(_FILE), which the workers inherit) and options stay as they are.
    return urlsplit(os.environ["DATABASE_URL"])._replace(path="/" + quote(db["NAME"])).geturl()


@pytest.fixture
def rq_workers(transactional_db, request):
    """Start real `manage.py rqworker` processes on the test database; yields a starter.

    Each worker is a separate process (forked work horse per job, as in production), so a test can
    kill one and watch the portal notice.
    """
    procs: list[subprocess.Popen] = []
    ARTIFACTS.mkdir(exist_ok=True)

    def start(count: int = 1, **extra_env: str) -> list[subprocess.Popen]:
        env = {**os.environ, "DATABASE_URL": _test_database_url(), **{k: str(v) for k, v in extra_env.items()}}
        started = []
        for _ in range(count):
            log = open(ARTIFACTS / f"worker-{request.node.name}-{len(procs)}.log", "wb")  # noqa: SIM115
            proc = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "rqworker", *settings.RQ_QUEUE_NAMES,
                                     "--name", f"test-{os.getpid()}-{len(procs)}-{time.monotonic_ns()}"],
                                    cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            procs.append(proc)
            started.append(proc)
        _wait_for_workers(len(procs))
        return started

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _wait_for_workers(count: int, timeout: float = 20) -> None:
    import django_rq
    from rq import Worker

    conn = django_rq.get_connection("default")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len([w for w in Worker.all(connection=conn) if w.name.startswith(f"test-{os.getpid()}-")]) >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"{count} RQ worker(s) did not register within {timeout}s")


@pytest.fixture(autouse=True, scope="session")
def _audit_triggers_lifted_only_for_the_test_flush():
    """Between transactional tests pytest-django empties every table (flush), which the audit table's
    append-only triggers rightly refuse. Only that flush lifts them, and puts them back at once."""
    from portal.audit import db as audit_db

    patched = []
    for module in ("django.db.backends.sqlite3.operations", "django.db.backends.postgresql.operations"):
        try:
            ops = __import__(module, fromlist=["DatabaseOperations"]).DatabaseOperations
        except Exception:  # noqa: BLE001 - a backend whose driver is not installed
            continue
        original = ops.sql_flush

        def sql_flush(self, style, tables, *args, _original=original, **kwargs):
            statements = _original(self, style, tables, *args, **kwargs)
            if audit_db.TABLE not in tables:
                return statements
            vendor = self.connection.vendor
            return [*audit_db.drop_statements(vendor), *statements, *audit_db.create_statements(vendor)]

        ops.sql_flush = sql_flush
        patched.append((ops, original))
    yield
    for ops, original in patched:
        ops.sql_flush = original


@pytest.fixture(autouse=True, scope="session")
def _clean_test_queues():
    """Jobs left in the test Redis by an earlier, interrupted run must not run in this one."""
    try:
        import django_rq

        for name in settings.RQ_QUEUE_NAMES:
            django_rq.get_queue(name).empty()
    except Exception:  # noqa: BLE001 - unit tests run without Redis
        pass
    yield


@pytest.fixture
def graph_retry_waits(monkeypatch):
    """The waits msgraph's retry middleware (kiota's RetryHandler, which honours Retry-After) asks
    for, recorded instead of slept: a test asserts the waits, not the wall time they would take."""
    import asyncio
    import types

    from kiota_http.middleware import retry_handler

    waits: list[float] = []

    async def sleep(delay: float) -> None:
        waits.append(delay)
        await asyncio.sleep(0)

    monkeypatch.setattr(retry_handler, "asyncio", types.SimpleNamespace(sleep=sleep))
    return waits


def wait_for(predicate, timeout: float = 20, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


@pytest.fixture(scope="session")
def lab_ad(django_db_blocker):
    """The lab's Samba AD DC, up for the whole session (started here if needed, stopped if we started it)."""
    from portal.lab import config, samba

    was_running = samba.status(base_dir=config.ad_dir()).running
    status = samba.ensure_up(base_dir=config.ad_dir(), admin_password=config.ad_admin_password(create=True),
                             realm=settings.LAB_AD_REALM, host=settings.LAB_AD_HOST)
    yield status
    if not was_running:
        samba.stop(base_dir=config.ad_dir())


@pytest.fixture(scope="session")
def seeded_lab(lab_ad):
    """The lab AD holding the default scenario seed; yields its manifest."""
    from portal.lab import config

    manifest = config.ensure_seeded(users=settings.LAB_SEED_USERS, seed=1)
    yield manifest


@pytest.fixture(scope="session")
def lab_cloud(lab_ad):
    """The lab's stand-in for the Microsoft cloud, with its hooks into the lab AD (started here if needed)."""
    from portal.lab import config
    from portal.lab.cloud import server

    was_running = server.status(data_dir=config.cloud_dir()).running
    status = server.ensure_up(data_dir=config.cloud_dir(), port=settings.LAB_CLOUD_PORT, **config.cloud_hooks())
    yield status
    if not was_running:
        server.stop(data_dir=config.cloud_dir())


@pytest.fixture(scope="session")
def lab(seeded_lab, lab_cloud):
    """The whole rehearsal lab: seeded AD and the cloud service."""
    return seeded_lab


@pytest.fixture
def lab_scheduling(lab):
    """The shared lab's sync server scheduling cycles and out of staging mode, as a connectivity check expects
    to find it, whatever an earlier test on this worker left (a rehearsed runbook suspends the scheduler); put
    back as it was afterwards."""
    from portal.lab import config
    from portal.lab.cloud.store import CloudStore

    store = CloudStore.open(data_dir=config.cloud_dir())
    try:
        before = store.scheduler()
        store.update_scheduler(SyncCycleEnabled=True, StagingModeEnabled=False, SchedulerSuspended=False)
        yield lab
        store.update_scheduler(**{k: before[k] for k in ("SyncCycleEnabled", "StagingModeEnabled",
                                                         "SchedulerSuspended")})
    finally:
        store.close()


@pytest.fixture(scope="session")
def lab_tenant(lab):
    """The whole lab with its cloud side seeded too (first full sync, licences, MFA states, cloud-only
    groups, a full cycle): an organisation a migration can run in. Yields the cloud manifest."""
    from portal.lab import config

    yield config.ensure_cloud_seeded(manifest=lab, seed=1)
