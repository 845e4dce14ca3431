"""Loaded by pytest (-p, see pyproject) before Django reads its settings: test defaults for the
environment, each overridable from outside. Tests get their own Redis database so a running demo's
queues never see them."""

import os

os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6390/15")
os.environ.setdefault("JOB_HEARTBEAT_SECONDS", "0.5")
os.environ.setdefault("JOB_WORKER_LOST_AFTER_SECONDS", "5")
os.environ.setdefault("JOB_EXTRA_MODULES", "tests.support.jobs")
