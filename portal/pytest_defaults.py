"""Loaded by pytest (-p, see pyproject) before Django reads its settings: test defaults for the
environment, each overridable from outside. Tests get their own Redis database so a running demo's
queues never see them."""

import os
from pathlib import Path

# Everything the tests write (database, lab, secret key) lives apart from a developer's demo.
os.environ.setdefault("DIROPS_VAR_DIR", str(Path(__file__).resolve().parent.parent / "var" / "test"))

os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6390/15")
os.environ.setdefault("JOB_HEARTBEAT_SECONDS", "0.5")
os.environ.setdefault("JOB_WORKER_LOST_AFTER_SECONDS", "5")
os.environ.setdefault("JOB_EXTRA_MODULES", "tests.support.jobs")
# The tests' own rehearsal lab: Samba on a loopback address of its own, beside any demo's lab.
os.environ.setdefault("LAB_MODE", "1")
os.environ.setdefault("LAB_AD_HOST", "127.0.0.5")
os.environ.setdefault("LAB_CLOUD_PORT", "8445")
# Tests sign local users in with a password alone; the second factor's own tests switch it on.
os.environ.setdefault("LOCAL_ACCOUNTS_TOTP", "0")
# Migrations in the lab need not wait as long as production does.
os.environ.setdefault("DL_MOVE_RETRY_SECONDS", "0.2")
os.environ.setdefault("DL_SYNC_RETRY_SECONDS", "0.5")
os.environ.setdefault("DL_DELETION_POLL_SECONDS", "0.3")
os.environ.setdefault("DL_DELETION_TIMEOUT_SECONDS", "60")
