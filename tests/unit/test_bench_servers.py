"""`make bench` leaves no server behind: the benchmarks that bring a lab up stop what they started, in
their own lab (never the tests' or the demo's), also when they fail or are terminated."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Runs a benchmark's lab handling with the lab servers faked: they report `running` as given, and
# stopping one prints which directory it was asked to stop.
FAKE_LAB = """
import json, os, signal, sys, time
from types import SimpleNamespace
sys.path.insert(0, {root!r})
import bench.{bench} as bench
from portal.lab import samba
from portal.lab.cloud import server
running = json.loads({running!r})
samba.status = lambda base_dir: SimpleNamespace(running=running["ad"])
server.status = lambda data_dir: SimpleNamespace(running=running["cloud"])
samba.stop = lambda base_dir, **kw: print("stopped ad", base_dir, flush=True)
server.stop = lambda data_dir, **kw: print("stopped cloud", data_dir, flush=True)
"""

DL_MIGRATION = FAKE_LAB + """
import django
django.setup()
from django.conf import settings
bench.setup_lab = lambda: "manifest"
with bench.bench_lab() as manifest:
    print("lab", settings.LAB_AD_HOST, settings.LAB_CLOUD_PORT, flush=True)
    if {how!r} == "terminated":
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)
    elif {how!r} == "failed":
        raise RuntimeError("the migration failed")
"""

AD_SCAN = FAKE_LAB + """
bench.prepare = lambda: print("prepared", flush=True)
bench._in_subprocess = lambda mode: {{"objects": bench.USERS, "seconds": 1.0, "peak_mb": 10.0}}
bench.main()
"""


def _run(code: str) -> subprocess.CompletedProcess:
    # As make bench runs them: its var dir and Redis, nothing of the tests' lab settings.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "DATABASE_URL", "DIROPS_VAR_DIR"))}
    env.update(DIROPS_VAR_DIR=str(ROOT / "var" / "bench"), REDIS_URL="redis://127.0.0.1:6392/0")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


def _stopped(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("stopped")]


@pytest.mark.parametrize("how", ["finished", "failed", "terminated"])
def test_dl_migration_stops_the_lab_servers_it_started_in_its_own_lab(how):
    done = _run(DL_MIGRATION.format(root=str(ROOT), bench="dl_migration", how=how,
                                    running=json.dumps({"ad": False, "cloud": False})))
    assert done.returncode == {"finished": 0, "failed": 1, "terminated": 128 + signal.SIGTERM}[how], done.stderr
    assert "lab 127.0.0.10 8467" in done.stdout
    lab = ROOT / "var" / "bench" / "dl" / "lab"
    # The cloud first (its hooks call the lab AD), then the AD; in the bench's own lab, not ad_scan's.
    assert _stopped(done.stdout) == [f"stopped cloud {lab / 'cloud'}", f"stopped ad {lab / 'ad'}"]


def test_dl_migration_leaves_running_what_ran_before():
    done = _run(DL_MIGRATION.format(root=str(ROOT), bench="dl_migration", how="finished",
                                    running=json.dumps({"ad": True, "cloud": False})))
    assert done.returncode == 0, done.stderr
    assert _stopped(done.stdout) == [f"stopped cloud {ROOT / 'var' / 'bench' / 'dl' / 'lab' / 'cloud'}"]


def test_ad_scan_stops_the_lab_ad_it_started():
    done = _run(AD_SCAN.format(root=str(ROOT), bench="ad_scan", running=json.dumps({"ad": False, "cloud": False})))
    assert done.returncode == 0, done.stderr
    assert "prepared" in done.stdout
    lab = ROOT / "var" / "bench" / "lab"
    assert f"stopped ad {lab / 'ad'}" in _stopped(done.stdout)
