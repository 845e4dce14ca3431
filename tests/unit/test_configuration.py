"""README's configuration table is true: every variable it lists is read by portal/settings.py into the
setting it names, and the effects this project adds (rather than Django) show where they should.

The settings module is executed afresh per case (runpy, its own globals: Django's live settings are not
touched) with only that variable set over a production-like environment. Effects Django itself gives a
setting (cookies, redirects, HSTS headers) are shown by tests/unit/test_security_headers.py's
`check --deploy` runs; the job timings by the fencing and worker tests that set them.
"""

from __future__ import annotations

import os
import re
import runpy
import stat
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "portal" / "settings.py"

# What each README row's variable becomes: (environment to set, setting name, the value expected).
CASES = {
    "DATABASE_URL": ({"DATABASE_URL": "postgres://portal@db.example:5433/portal_db"},
                     lambda s: (s["DATABASES"]["default"]["ENGINE"], s["DATABASES"]["default"]["HOST"],
                                s["DATABASES"]["default"]["PORT"], s["DATABASES"]["default"]["NAME"]),
                     ("django.db.backends.postgresql", "db.example", 5433, "portal_db")),
    "DATABASE_PASSWORD": ({"DATABASE_URL": "postgres://portal@db/portal", "DATABASE_PASSWORD": "s3cret"},
                          lambda s: s["DATABASES"]["default"]["PASSWORD"], "s3cret"),
    "DATABASE_PASSWORD_FILE": ({"DATABASE_URL": "postgres://portal@db/portal", "DATABASE_PASSWORD_FILE": "{file}"},
                               lambda s: s["DATABASES"]["default"]["PASSWORD"], "from-a-file"),
    "REDIS_URL": ({"REDIS_URL": "redis://cache.example:6400/3"},
                  lambda s: {q["URL"] for q in s["RQ_QUEUES"].values()}, {"redis://cache.example:6400/3"}),
    "SECRET_KEY": ({"SECRET_KEY": "k" * 60}, lambda s: s["SECRET_KEY"], "k" * 60),
    "SECRET_KEY_FILE": ({"SECRET_KEY_FILE": "{file}"}, lambda s: s["SECRET_KEY"], "from-a-file"),
    "ALLOWED_HOSTS": ({"ALLOWED_HOSTS": "portal.example,admin.example"}, lambda s: s["ALLOWED_HOSTS"],
                      ["portal.example", "admin.example"]),
    "CSRF_TRUSTED_ORIGINS": ({"CSRF_TRUSTED_ORIGINS": "https://portal.example"},
                             lambda s: s["CSRF_TRUSTED_ORIGINS"], ["https://portal.example"]),
    "SECURE_COOKIES": ({"SECURE_COOKIES": "false"},
                       lambda s: (s["SESSION_COOKIE_SECURE"], s["CSRF_COOKIE_SECURE"]), (False, False)),
    "SECURE_SSL_REDIRECT": ({"SECURE_SSL_REDIRECT": "false"}, lambda s: s["SECURE_SSL_REDIRECT"], False),
    "SECURE_HSTS_SECONDS": ({"SECURE_HSTS_SECONDS": "600"}, lambda s: s["SECURE_HSTS_SECONDS"], 600),
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": ({"SECURE_HSTS_INCLUDE_SUBDOMAINS": "false"},
                                       lambda s: s["SECURE_HSTS_INCLUDE_SUBDOMAINS"], False),
    "SECURE_HSTS_PRELOAD": ({"SECURE_HSTS_PRELOAD": "false"}, lambda s: s["SECURE_HSTS_PRELOAD"], False),
    "SECURE_PROXY_SSL_HEADER": ({"SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https"},
                                lambda s: s["SECURE_PROXY_SSL_HEADER"], ("HTTP_X_FORWARDED_PROTO", "https")),
    "CONTENT_SECURITY_POLICY": ({"CONTENT_SECURITY_POLICY": "default-src 'none'"},
                                lambda s: s["CONTENT_SECURITY_POLICY"], "default-src 'none'"),
    "DEBUG": ({"DEBUG": "true"}, lambda s: (s["DEBUG"], s["PRODUCTION"]), (True, False)),
    "LAB_MODE": ({"LAB_MODE": "true"}, lambda s: (s["LAB_MODE"], s["PRODUCTION"], s["SECURE_SSL_REDIRECT"]),
                 (True, False, False)),
    "JOB_HEARTBEAT_SECONDS": ({"JOB_HEARTBEAT_SECONDS": "1.5"}, lambda s: s["JOB_HEARTBEAT_SECONDS"], 1.5),
    "JOB_WORKER_LOST_AFTER_SECONDS": ({"JOB_WORKER_LOST_AFTER_SECONDS": "12"},
                                      lambda s: s["JOB_WORKER_LOST_AFTER_SECONDS"], 12.0),
    "JOB_RQ_WORKER_SILENCE_SECONDS": ({"JOB_RQ_WORKER_SILENCE_SECONDS": "45"},
                                      lambda s: s["JOB_RQ_WORKER_SILENCE_SECONDS"], 45.0),
    "JOB_SWEEP_SECONDS": ({"JOB_SWEEP_SECONDS": "5"}, lambda s: s["JOB_SWEEP_SECONDS"], 5),
    "JOB_REQUEUE_AFTER_SECONDS": ({"JOB_REQUEUE_AFTER_SECONDS": "7"}, lambda s: s["JOB_REQUEUE_AFTER_SECONDS"], 7.0),
    "DL_APPROVAL_DEFAULT_VALID_HOURS": ({"DL_APPROVAL_DEFAULT_VALID_HOURS": "6"},
                                        lambda s: s["DL_APPROVAL_DEFAULT_VALID_HOURS"], 6.0),
    "DL_APPROVAL_MAX_VALID_HOURS": ({"DL_APPROVAL_MAX_VALID_HOURS": "48"},
                                    lambda s: s["DL_APPROVAL_MAX_VALID_HOURS"], 48.0),
    "DL_BATCH_SYNC_GATHER_SECONDS": ({"DL_BATCH_SYNC_GATHER_SECONDS": "90"},
                                     lambda s: s["DL_BATCH_SYNC_GATHER_SECONDS"], 90.0),
    "DL_BATCH_RESUME_LOST": ({"DL_BATCH_RESUME_LOST": "0"}, lambda s: s["DL_BATCH_RESUME_LOST"], 0),
    "ENTRA_SIGN_IN": ({"ENTRA_SIGN_IN": "true"}, lambda s: s["ENTRA_SIGN_IN"], True),
    "ENTRA_SIGN_IN_CLIENT_ID": ({"ENTRA_SIGN_IN_CLIENT_ID": "app-1"}, lambda s: s["ENTRA_SIGN_IN_CLIENT_ID"], "app-1"),
    "ENTRA_SIGN_IN_CLIENT_SECRET": ({"ENTRA_SIGN_IN_CLIENT_SECRET": "s3cret"},
                                    lambda s: s["ENTRA_SIGN_IN_CLIENT_SECRET"], "s3cret"),
    "ENTRA_SIGN_IN_REDIRECT_URI": ({"ENTRA_SIGN_IN_REDIRECT_URI": "https://portal.example/login/microsoft/callback/"},
                                   lambda s: s["ENTRA_SIGN_IN_REDIRECT_URI"],
                                   "https://portal.example/login/microsoft/callback/"),
    "ENTRA_APP_ROLE_MAP": ({"ENTRA_APP_ROLE_MAP": "Portal.Ops=Administrator"}, lambda s: s["ENTRA_APP_ROLE_MAP"],
                           {"Portal.Ops": "Administrator"}),
    "ENTRA_GROUP_ROLE_MAP": ({"ENTRA_GROUP_ROLE_MAP": "g-1=Auditor"}, lambda s: s["ENTRA_GROUP_ROLE_MAP"],
                             {"g-1": "Auditor"}),
    "ENTRA_ROLE_RECHECK_SECONDS": ({"ENTRA_ROLE_RECHECK_SECONDS": "600"}, lambda s: s["ENTRA_ROLE_RECHECK_SECONDS"],
                                   600),
    "EMAIL_HOST": ({"EMAIL_HOST": "smtp.example"}, lambda s: s["EMAIL_HOST"], "smtp.example"),
    "EMAIL_PORT": ({"EMAIL_PORT": "587"}, lambda s: s["EMAIL_PORT"], 587),
    "EMAIL_HOST_USER": ({"EMAIL_HOST_USER": "portal"}, lambda s: s["EMAIL_HOST_USER"], "portal"),
    "EMAIL_HOST_PASSWORD": ({"EMAIL_HOST_PASSWORD": "s3cret"}, lambda s: s["EMAIL_HOST_PASSWORD"], "s3cret"),
    "EMAIL_USE_TLS": ({"EMAIL_USE_TLS": "true"}, lambda s: s["EMAIL_USE_TLS"], True),
    "DEFAULT_FROM_EMAIL": ({"DEFAULT_FROM_EMAIL": "ops@example.com"}, lambda s: s["DEFAULT_FROM_EMAIL"],
                           "ops@example.com"),
    "LOCAL_ACCOUNTS_ENABLED": ({"LOCAL_ACCOUNTS_ENABLED": "false"}, lambda s: s["LOCAL_ACCOUNTS_ENABLED"], False),
    "LOCAL_ACCOUNTS_TOTP": ({"LOCAL_ACCOUNTS_TOTP": "false"}, lambda s: s["LOCAL_ACCOUNTS_TOTP"], False),
    "LOGIN_FAILURE_LIMIT": ({"LOGIN_FAILURE_LIMIT": "8"}, lambda s: (s["LOGIN_FAILURE_LIMIT"], s["AXES_FAILURE_LIMIT"]),
                            (8, 8)),
    "LOGIN_LOCKOUT_MINUTES": ({"LOGIN_LOCKOUT_MINUTES": "30"}, lambda s: s["AXES_COOLOFF_TIME"], 0.5),
    "LOGIN_LOCKOUT_BY": ({"LOGIN_LOCKOUT_BY": "username"},
                         lambda s: (s["AXES_LOCKOUT_PARAMETERS"], s["SILENCED_SYSTEM_CHECKS"]),
                         (["username"], ["axes.W006"])),
    "AUDIT_CLIENT_IP_HEADER": ({"AUDIT_CLIENT_IP_HEADER": "X-Forwarded-For"},
                               lambda s: s["AUDIT_CLIENT_IP_HEADER"], "X-Forwarded-For"),
    "DIROPS_VAR_DIR": ({}, lambda s: (s["VAR_DIR"].name, s["DATABASES"]["default"]["NAME"].endswith(
        "var-under-test/portal.sqlite3")), ("var-under-test", True)),
    "POSTGRES_URL": ({"POSTGRES_URL": "postgres://dirops@127.0.0.1:5999/other"},
                     lambda s: s["STACK_POSTGRES_URL"], "postgres://dirops@127.0.0.1:5999/other"),
    "AD_*": ({"AD_HOST": "dc1.corp.example", "AD_PORT": "636", "AD_USE_SSL": "true",
              "AD_BASE_DN": "DC=corp,DC=example"},
             lambda s: (s["AD_HOST"], s["AD_PORT"], s["AD_USE_SSL"], s["AD_BASE_DN"]),
             ("dc1.corp.example", 636, True, "DC=corp,DC=example")),
}


def readme_variables() -> set[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    names = set()
    for row in rows:
        names |= set(re.findall(r"`([A-Z][A-Z0-9_]*\*?)`", row.split("|")[1]))
    return names


def load_settings(monkeypatch, tmp_path: Path, env: dict[str, str]) -> dict:
    """portal/settings.py executed in a production-like environment (nothing the test run sets) plus env."""
    for name in list(os.environ):
        if name in CASES or name.startswith(("AD_", "LAB_", "JOB_", "DL_", "SECURE_", "DATABASE_", "SECRET_KEY",
                                             "DEBUG", "EMAIL_", "ENTRA_", "LOCAL_ACCOUNTS_",
                                             "LOGIN_")):
            monkeypatch.delenv(name)
    for name in ("ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "CONTENT_SECURITY_POLICY", "AUDIT_CLIENT_IP_HEADER",
                 "REDIS_URL", "POSTGRES_URL"):
        monkeypatch.delenv(name, raising=False)
    tmp_path.mkdir(exist_ok=True)
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("DIROPS_VAR_DIR", str(tmp_path / "var-under-test"))
    for name, value in env.items():
        monkeypatch.setenv(name, value.replace("{file}", str(secret)))
    return runpy.run_path(str(SETTINGS), run_name="settings_under_test")


def test_every_variable_in_the_readme_table_has_a_case():
    listed = readme_variables()
    assert len(listed) >= 25, f"README's table was not found or shrank: {sorted(listed)}"
    assert listed == set(CASES), (f"README lists without a case: {sorted(listed - set(CASES))}; "
                                  f"cases README no longer lists: {sorted(set(CASES) - listed)}")


@pytest.mark.parametrize("variable", sorted(CASES))
def test_each_variable_reaches_its_setting(variable, monkeypatch, tmp_path):
    env, read, expected = CASES[variable]
    assert read(load_settings(monkeypatch, tmp_path, env)) == expected
    if env:  # without it the default is something else: the variable, not the default, gave the value
        assert read(load_settings(monkeypatch, tmp_path / "unset", {})) != expected


def test_production_defaults_are_the_ones_readme_gives(monkeypatch, tmp_path):
    s = load_settings(monkeypatch, tmp_path, {})
    assert s["PRODUCTION"] and not s["DEBUG"] and not s["LAB_MODE"]
    assert (s["SESSION_COOKIE_SECURE"], s["SECURE_SSL_REDIRECT"], s["SECURE_HSTS_SECONDS"],
            s["SECURE_HSTS_INCLUDE_SUBDOMAINS"], s["SECURE_HSTS_PRELOAD"]) == (True, True, 31536000, True, True)
    assert s["REDIS_URL"] == "redis://127.0.0.1:6390/0" and s["ALLOWED_HOSTS"] == ["127.0.0.1", "localhost", "[::1]"]
    assert (s["JOB_HEARTBEAT_SECONDS"], s["JOB_WORKER_LOST_AFTER_SECONDS"], s["JOB_RQ_WORKER_SILENCE_SECONDS"],
            s["JOB_SWEEP_SECONDS"], s["JOB_REQUEUE_AFTER_SECONDS"]) == (2, 30, 90, 60, 30)
    assert (s["DL_APPROVAL_DEFAULT_VALID_HOURS"], s["DL_APPROVAL_MAX_VALID_HOURS"]) == (24, 336)
    assert s["STACK_POSTGRES_URL"] == "postgres://dirops@127.0.0.1:5439/dirops"
    # a web server thread keeps its database connection between requests, checked before reuse (bench/load)
    assert (s["DATABASES"]["default"]["CONN_MAX_AGE"], s["DATABASES"]["default"]["CONN_HEALTH_CHECKS"]) == (60, True)
    assert s["CONTENT_SECURITY_POLICY"].startswith("default-src 'self'; script-src 'self'; style-src 'self';")
    generated = tmp_path / "var-under-test" / "secret_key"
    assert generated.read_text().strip() == s["SECRET_KEY"] and stat.S_IMODE(generated.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "var-under-test").stat().st_mode) == 0o700


def test_the_content_security_policy_sent_is_the_configured_one(client, settings):
    settings.CONTENT_SECURITY_POLICY = "default-src 'none'; form-action 'self'"
    assert client.get("/login/")["Content-Security-Policy"] == "default-src 'none'; form-action 'self'"


def test_the_approval_form_offers_the_configured_default_validity(settings):
    from migrations_app.forms import ApproveForm

    settings.DL_APPROVAL_DEFAULT_VALID_HOURS = 6
    assert ApproveForm.with_defaults()["valid_hours"].value() == 6


def test_the_queues_use_the_configured_redis(settings):
    import django_rq

    url = urlsplit(settings.REDIS_URL)
    for name in settings.RQ_QUEUE_NAMES:
        kwargs = django_rq.get_queue(name).connection.connection_pool.connection_kwargs
        assert (kwargs["host"], kwargs["port"], kwargs["db"]) == (url.hostname, url.port, int(url.path.strip("/")))
