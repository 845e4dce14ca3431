"""Every page carries a Content-Security-Policy its own markup obeys; report, audit, job and backup pages are
never stored by the browser; production settings pass `check --deploy`."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from diagnostics_app.mfa.services import do_store_snapshot
from migrations_app.choices import BackupKind, MigrationStatus
from migrations_app.models import Migration, MigrationBackup
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from tests.unit.test_mfa_report_pages import T0, make_result

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
# Inline event handlers (onclick=...), style attributes and htmx features that need eval (hx-on, js: values).
INLINE_MARKUP = re.compile(r"""\sstyle=|<style|\son[a-z]+=|\shx-on|["']js:|["']javascript:""", re.I)


def _argless_page_names(resolver=None, prefix: str = "") -> list[str]:
    names = []
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin":
                continue
            ns = f"{prefix}{entry.namespace}:" if entry.namespace else prefix
            names += _argless_page_names(entry, ns)
        elif isinstance(entry, URLPattern) and entry.name and not entry.pattern.regex.groups:
            names.append(f"{prefix}{entry.name}")
    return names


@pytest.fixture
def admin_client(client, role_users):
    client.force_login(role_users["Administrator"])
    return client


@pytest.fixture(autouse=True)
def _no_directory(monkeypatch):
    from portal.connectors import ad

    def down(**kwargs):
        raise ad.ServerDown("no lab AD in unit tests")
    monkeypatch.setattr("migrations_app.views.directory_object", down)


@pytest.fixture
def report_urls(role_users):
    user = role_users["Administrator"]
    job = Job.objects.create(kind="dl_preflight", name="DL preflight", target="a@contoso.com", user=user,
                             status=JobStatus.FAILED, params={"mail": "a@contoso.com", "options": {}},
                             finished_at=timezone.now(), result={"mail": "a@contoso.com", "ok": False, "checks": []})
    migration = Migration.objects.create(mail="a@contoso.com", status=MigrationStatus.MIGRATED)
    MigrationBackup.objects.create(migration=migration, kind=BackupKind.ONPREM_MEMBERS, data={"members": []})
    snapshot = do_store_snapshot(make_result(when=T0 - timedelta(days=7)))
    do_store_snapshot(make_result())  # a second one, so that the trend chart is drawn
    mfa_user = snapshot.rows.first()
    return [
        reverse("audit:list"),
        reverse("jobs:list"),
        reverse("jobs:detail", args=[job.pk]),
        reverse("jobs:log", args=[job.pk]),
        reverse("jobs:log_txt", args=[job.pk]),
        reverse("jobs:log_json", args=[job.pk]),
        reverse("migrations_app:preflight_report", args=[job.pk]),
        reverse("migrations_app:migration", args=[migration.pk]),
        reverse("migrations_app:backup", args=[migration.pk, BackupKind.ONPREM_MEMBERS]),
        reverse("diagnostics_app:mfa"),
        reverse("diagnostics_app:mfa") + "?export=csv",
        reverse("diagnostics_app:mfa_readiness"),
        reverse("diagnostics_app:mfa_user", args=[mfa_user.pk]),
    ]


def test_every_page_carries_the_policy_and_obeys_it(admin_client, report_urls, no_enqueue):
    urls = {reverse(name) for name in _argless_page_names()} | set(report_urls)
    assert len(urls) > 15
    for url in sorted(urls):
        response = admin_client.get(url)
        # Sign-in with Microsoft answers 503 with the login page while Entra ID (here: the lab cloud) is unreachable.
        assert response.status_code < 500 or (url == reverse("entra_start") and response.status_code == 503), url
        csp = response["Content-Security-Policy"]
        assert "script-src 'self';" in csp and "style-src 'self';" in csp and "frame-ancestors 'none'" in csp, url
        if response.get("Content-Type", "").startswith("text/html") and not response.streaming:
            body = response.content.decode()
            assert not INLINE_SCRIPT.search(body), url
            assert not INLINE_MARKUP.search(body), (url, INLINE_MARKUP.search(body))


def test_signed_out_pages_and_errors_carry_the_policy_too(client):
    for url in (reverse("login"), reverse("home"), "/no/such/page/"):
        assert "default-src 'self'" in client.get(url)["Content-Security-Policy"]


def test_htmx_is_told_not_to_do_what_the_policy_refuses(admin_client):
    import json

    body = admin_client.get(reverse("home")).content.decode()
    config = json.loads(re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", body).group(1))
    assert config == {"includeIndicatorStyles": False, "allowEval": False, "allowScriptTags": False}


def test_no_template_needs_inline_style_script_or_eval():
    offenders = []
    templates = [p for top in ("templates", "portal", "migrations_app", "diagnostics_app")
                 for p in (ROOT / top).glob("**/*.html")]
    assert len(templates) > 20
    for template in templates:
        text = template.read_text()
        if INLINE_SCRIPT.search(text) or INLINE_MARKUP.search(text):
            offenders.append(str(template.relative_to(ROOT)))
    assert offenders == []


def test_report_audit_job_and_backup_pages_are_not_stored(admin_client, report_urls):
    for url in report_urls:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"], url


def test_static_assets_stay_cacheable(admin_client):
    response = admin_client.get("/static/css/portal.css")
    assert "no-store" not in response.get("Cache-Control", "")


def _deploy_env(tmp_path, **extra: str) -> dict[str, str]:
    # A production process's environment: nothing the test run itself sets (the e2e tests allow async-unsafe ORM
    # calls for Playwright, which check --deploy rightly reports) leaks into it.
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("SECURE_", "DEBUG", "DEMO_", "LAB_MODE", "DJANGO_ALLOW_ASYNC_UNSAFE"))}
    return {**keep, "DIROPS_VAR_DIR": str(tmp_path), "DEBUG": "0", "LAB_MODE": "0",
            "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "portal.contoso.com",
            "CSRF_TRUSTED_ORIGINS": "https://portal.contoso.com", **extra}


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)


def test_check_deploy_is_clean_with_the_documented_production_settings(tmp_path):
    # README's production table: secrets and hosts set, everything else left to its production default.
    env = _deploy_env(tmp_path, SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https")
    result = _manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_compose_files_environment_passes_check_deploy(tmp_path):
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = {name: re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value))
           for name, value in compose["x-portal"]["environment"].items()}
    # Compose reads the secrets from files and uses PostgreSQL; here _deploy_env gives the key, SQLite the database.
    for name in ("SECRET_KEY_FILE", "DATABASE_PASSWORD_FILE", "DATABASE_URL"):
        env.pop(name)
    result = _manage(_deploy_env(tmp_path, **env), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert env["SECURE_PROXY_SSL_HEADER"] == "HTTP_X_FORWARDED_PROTO,https"


def test_check_deploy_complains_when_production_turns_https_off(tmp_path):
    env = _deploy_env(tmp_path, SECURE_SSL_REDIRECT="0", SECURE_HSTS_SECONDS="0", SECURE_COOKIES="0")
    result = _manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr


def _settings(env: dict[str, str], expr: str) -> str:
    code = f"import os; os.environ['DJANGO_SETTINGS_MODULE']='portal.settings'; " \
           f"from django.conf import settings; print({expr})"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_https_hardening_is_off_in_lab_and_demo_and_settable(tmp_path):
    expr = "settings.SECURE_SSL_REDIRECT, settings.SECURE_HSTS_SECONDS, settings.SESSION_COOKIE_SECURE"
    assert _settings(_deploy_env(tmp_path, LAB_MODE="1"), expr) == "False 0 False"
    assert _settings(_deploy_env(tmp_path, DEBUG="1"), expr) == "False 0 False"
    assert _settings(_deploy_env(tmp_path), expr) == "True 31536000 True"
    assert _settings(_deploy_env(tmp_path, LAB_MODE="1", SECURE_SSL_REDIRECT="1", SECURE_HSTS_SECONDS="60",
                                 SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https"),
                     expr + ", settings.SECURE_PROXY_SSL_HEADER") == \
        "True 60 False ('HTTP_X_FORWARDED_PROTO', 'https')"
