"""Loaded by pytest (-p, see pyproject) before Django reads its settings: test defaults for the
environment, each overridable from outside. Tests get their own Redis database so a running demo's
queues never see them.

Under pytest-xdist (`-n N`) every worker process gets a lab of its own, derived from the base
environment and the worker's index k, so workers never share a Samba, a cloud service, a var dir or a
queue (pytest-django already gives each worker its own test database):

- LAB_AD_HOST 127.a.b.c becomes 127.0.<k+1>.c: Samba's ports are fixed, so one loopback address per lab,
  and two checkouts with different base addresses never meet;
- LAB_CLOUD_PORT p becomes p + 1000 * (k+1);
- DIROPS_VAR_DIR d becomes d/gw<k> (its lab, its secret key, its stack's run files; static files are
  shared: collectstatic runs once, in d);
- REDIS_URL .../n becomes .../(n+k+1) mod 16 (Redis's default 16 databases): its own RQ queues and workers.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

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

REDIS_DATABASES = 16


def worker_environment(env: dict[str, str], worker: str) -> dict[str, str]:
    """The variables an xdist worker (``gw0``, ``gw1``…) overrides so that its lab is its own."""
    k = int(worker.removeprefix("gw"))
    *_, last = env["LAB_AD_HOST"].split(".")
    var_dir = Path(env["DIROPS_VAR_DIR"])
    redis = urlsplit(env["REDIS_URL"])
    base_db = int(redis.path.strip("/") or 0)
    derived = {
        "LAB_AD_HOST": f"127.0.{k + 1}.{last}",
        "LAB_CLOUD_PORT": str(int(env["LAB_CLOUD_PORT"]) + 1000 * (k + 1)),
        "DIROPS_VAR_DIR": str(var_dir / worker),
        "REDIS_URL": redis._replace(path=f"/{(base_db + k + 1) % REDIS_DATABASES}").geturl(),
    }
    if env.get("LAB_DIR"):
        derived["LAB_DIR"] = str(Path(env["LAB_DIR"]) / worker)
    return derived


def _share_static_files(base: Path, worker_dir: Path) -> None:
    worker_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    link = worker_dir / "staticfiles"
    if not link.exists() and not link.is_symlink():
        (base / "staticfiles").mkdir(parents=True, exist_ok=True)
        link.symlink_to(base / "staticfiles")


if os.environ.get("PYTEST_XDIST_WORKER"):  # set by xdist in each worker before its plugins load
    _base_var_dir = Path(os.environ["DIROPS_VAR_DIR"])
    os.environ.update(worker_environment(dict(os.environ), os.environ["PYTEST_XDIST_WORKER"]))
    _share_static_files(_base_var_dir, Path(os.environ["DIROPS_VAR_DIR"]))


def pytest_report_header(config):
    if config.getoption("numprocesses", None):
        return "lab: each xdist worker derives its own from " + (
            f"AD {os.environ['LAB_AD_HOST']}, cloud port {os.environ['LAB_CLOUD_PORT']}, "
            f"var {os.environ['DIROPS_VAR_DIR']}, redis {os.environ['REDIS_URL']} (portal/pytest_defaults.py)")
    return (f"lab: AD {os.environ['LAB_AD_HOST']}, cloud port {os.environ['LAB_CLOUD_PORT']}, "
            f"var {os.environ['DIROPS_VAR_DIR']}, redis {os.environ['REDIS_URL']}")
