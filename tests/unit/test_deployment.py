"""Settings from the environment, and docker-compose agreeing with what make runs."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

from portal import stack

ROOT = Path(__file__).resolve().parents[2]


def _settings_in_subprocess(env: dict, expr: str, tmp_path) -> str:
    code = f"import django, os; os.environ['DJANGO_SETTINGS_MODULE']='portal.settings'; " \
           f"from django.conf import settings; print({expr})"
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY", "DEBUG")}
    out = subprocess.run([sys.executable, "-c", code], env={**base, "DIROPS_VAR_DIR": str(tmp_path), **env},
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_secret_key_is_generated_once_into_var_and_kept(tmp_path):
    first = _settings_in_subprocess({}, "settings.SECRET_KEY", tmp_path)
    assert len(first) > 40
    assert (tmp_path / "secret_key").read_text() == first
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"
    assert _settings_in_subprocess({}, "settings.SECRET_KEY", tmp_path) == first


def test_secret_key_from_environment_or_file(tmp_path):
    assert _settings_in_subprocess({"SECRET_KEY": "from-env-" + "x" * 40}, "settings.SECRET_KEY", tmp_path) \
        .startswith("from-env-")
    secret_file = tmp_path / "key"
    secret_file.write_text("from-file-" + "y" * 40 + "\n")
    assert _settings_in_subprocess({"SECRET_KEY_FILE": str(secret_file)}, "settings.SECRET_KEY", tmp_path) \
        .startswith("from-file-")


def test_database_defaults_to_sqlite_under_var_and_takes_postgres_url(tmp_path):
    assert _settings_in_subprocess({}, "settings.DATABASES['default']['NAME']", tmp_path) == \
        str(tmp_path / "portal.sqlite3")
    pg = _settings_in_subprocess({"DATABASE_URL": "postgres://u@db:5432/portal", "DATABASE_PASSWORD": "pw"},
                                 "settings.DATABASES['default']['ENGINE'], settings.DATABASES['default']['HOST'],"
                                 " settings.DATABASES['default']['PASSWORD']", tmp_path)
    assert pg == "django.db.backends.postgresql db pw"


def test_debug_is_off_even_in_the_demo(tmp_path):
    # the demo shows the portal's own error pages, not Django's debug page (templates/404.html etc.)
    assert _settings_in_subprocess({}, "settings.DEBUG", tmp_path) == "False"
    assert _settings_in_subprocess({"LAB_MODE": "1", "LOCAL_ACCOUNTS_TOTP": "0"}, "settings.DEBUG", tmp_path) == "False"
    assert _settings_in_subprocess({"LAB_MODE": "1", "DEBUG": "1"}, "settings.DEBUG", tmp_path) == "True"


def test_compose_services_run_what_make_runs():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "migrate"} <= set(services)
    web = services["web"]["command"]
    assert web[: len(stack.WEB_ARGV)] == stack.WEB_ARGV
    assert services["worker"]["command"] == ["python", *stack.WORKER_ARGV]
    assert services["worker"]["deploy"]["replicas"] >= 2
    for name in ("web", "worker", "migrate"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and env["REDIS_URL"].startswith("redis://")
        assert "SECRET_KEY" not in env, "secrets come from files, not the compose file"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert '"gunicorn", "portal.wsgi:application"' in dockerfile
    makefile = (ROOT / "Makefile").read_text()
    assert "manage.py stack run" in makefile  # which starts stack.WEB_ARGV and stack.WORKER_ARGV


def test_ci_runs_make_test():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert readme.index("make demo") < 800 and "make test" in readme[:1200]
