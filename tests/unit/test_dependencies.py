"""Installs are reproducible: the hashed lock files pin what pyproject.toml declares, production's lock
leaves the lab out, and the portal runs without the lab's packages."""

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# One requirement of a lock: `name==version \` and its `--hash=sha256:…` lines.
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(?P<version>\S+)(?P<hashes>(?:[ \t]*\\\n"
                 r"[ \t]+--hash=sha256:[0-9a-f]{64})*)", re.MULTILINE)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(requirements: list[str]) -> set[str]:
    return {canonical(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", req).group(0)) for req in requirements}


def pins(lock: str) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes), after checking that every requirement line is a pin."""
    text = (ROOT / "requirements" / lock).read_text()
    found = {canonical(m["name"]): (m["version"], m["hashes"].count("--hash=")) for m in PIN.finditer(text)}
    requirement_lines = [line for line in text.splitlines() if line and not line[0].isspace() and line[0] != "#"]
    assert len(requirement_lines) == len(found), f"{lock}: a requirement that is not `name==version` with hashes"
    return found


BASE = declared(PYPROJECT["project"]["dependencies"])
LAB = declared(PYPROJECT["project"]["optional-dependencies"]["lab"])
TEST = declared(PYPROJECT["project"]["optional-dependencies"]["test"])


def test_locks_pin_every_declared_dependency_with_hashes():
    base, dev = pins("base.lock"), pins("dev.lock")
    assert BASE <= set(base), f"base.lock lacks {sorted(BASE - set(base))}: run make lock"
    assert BASE | LAB | TEST <= set(dev), f"dev.lock lacks {sorted((BASE | LAB | TEST) - set(dev))}: run make lock"
    for lock, pinned in (("base.lock", base), ("dev.lock", dev)):
        unhashed = sorted(name for name, (_, hashes) in pinned.items() if not hashes)
        assert not unhashed, f"{lock} pins without a hash: {unhashed}"



def test_locked_versions_satisfy_what_pyproject_asks():
    from packaging.requirements import Requirement

    extras = PYPROJECT["project"]["optional-dependencies"]
    for lock, requirements in (("base.lock", PYPROJECT["project"]["dependencies"]),
                               ("dev.lock", [r for group in extras.values() for r in group])):
        pinned = pins(lock)
        stale = [req for req in map(Requirement, requirements)
                 if not req.specifier.contains(pinned[canonical(req.name)][0], prereleases=True)]
        assert not stale, f"{lock} pins versions pyproject.toml no longer admits: {stale}; run make lock"


def test_production_lock_leaves_the_lab_and_the_test_tools_out():
    base, dev = pins("base.lock"), pins("dev.lock")
    assert LAB and not LAB & set(base), f"lab-only packages in base.lock: {sorted(LAB & set(base))}"
    assert not (TEST - BASE) & set(base)
    # The tests run on the versions production runs.
    assert {name: dev[name][0] for name in base} == {name: version for name, (version, _) in base.items()}


def test_make_and_the_image_install_from_the_locks():
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r requirements/dev.lock" in makefile and "--no-deps -e ." in makefile
    assert re.search(r"^\$\(STAMP\):.*\$\(LOCKS\)", makefile, re.MULTILINE), "a lock change reinstalls"
    assert re.search(r"^lock:", makefile, re.MULTILINE)
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes -r requirements/base.lock" in dockerfile and "--no-deps ." in dockerfile
    assert "dev.lock" not in dockerfile
    # The locks are compiled for the machines' Python; the image runs the same one.
    assert "--python-version 3.11" in makefile and re.search(r"^FROM python:3\.11-", dockerfile, re.MULTILINE)


LAB_PACKAGES_GONE = """
import sys
for name in {lab!r}:
    sys.modules[name] = None  # as if not installed: importing it raises ImportError
import django
django.setup()
from django.contrib.auth import get_user_model
from django.test import Client
from django.test.utils import setup_test_environment
from django.core.management import call_command
call_command("migrate", verbosity=0)
setup_test_environment()
user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-for-tests-only-1")
client = Client()
client.force_login(user)
for url in ("/", "/jobs/", "/audit/", "/dl/", "/diagnostics/mfa/", "/diagnostics/writeback/"):
    assert client.get(url).status_code == 200, url
print("ok")
"""


def test_portal_runs_without_the_lab_packages(tmp_path):
    # The production image has no starlette, uvicorn or trustme; nothing outside the lab's own server may
    # import them when the portal starts or serves pages.
    modules = ["starlette", "uvicorn", "trustme"]
    assert set(modules) == LAB
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    # The test client speaks plain http: without this, production's https redirect would answer every page.
    env.update(DIROPS_VAR_DIR=str(tmp_path), LAB_MODE="0", DJANGO_SETTINGS_MODULE="portal.settings",
               ALLOWED_HOSTS="testserver", SECURE_SSL_REDIRECT="0")
    out = subprocess.run([sys.executable, "-c", LAB_PACKAGES_GONE.format(lab=modules)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]
