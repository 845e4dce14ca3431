"""DirOps Portal settings: one module, every value from the environment, embedded defaults.

The defaults give a working single-machine portal (SQLite under var/, the Redis that `make` starts
on loopback) so that `make demo` and `make test` need no configuration; production sets the
environment (see README, docker-compose.yml).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("DIROPS_VAR_DIR", BASE_DIR / "var"))


def _private_dir(path: Path) -> None:
    """var/ holds the database, the secret key, job backups and the lab's passwords: its owner's only."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    stat = path.stat()
    if stat.st_uid == os.getuid() and stat.st_mode & 0o077:
        path.chmod(0o700)


_private_dir(VAR_DIR)

env = environ.Env()


def _secret_from_file_or_generate(path: Path) -> str:
    """Keep a generated key across restarts without ever committing it (var/ is gitignored)."""
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(50)
    path.touch(mode=0o600)
    path.write_text(key)
    return key


def env_secret(name: str, default: str | None = None) -> str | None:
    """A secret from NAME, or from the file named by NAME_FILE (docker/k8s secrets)."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        return Path(file_name).read_text().strip()
    return os.environ.get(name, default)


LAB_MODE = env.bool("LAB_MODE", default=False)
# Off in the demo too: it shows the portal's own 403/404/500 pages, as production does, never Django's debug
# page (whitenoise serves the static files either way). DEBUG=1 is for developing the portal.
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env_secret("SECRET_KEY") or _secret_from_file_or_generate(VAR_DIR / "secret_key")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_rq",
    "django_tables2",
    "django_filters",
    "axes",
    "portal.accounts",
    "portal.audit",
    "portal.jobs",
    "portal.lab",
    "portal.directory",
    "migrations_app",
    "diagnostics_app",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "portal.security.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.audit.context.AuditRequestMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "portal.accounts.middleware.SignInPolicyMiddleware",
    "portal.accounts.middleware.HtmxAwareLoginRequiredMiddleware",
    "portal.accounts.middleware.PermissionRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into its lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.accounts.context_processors.navigation",
            ],
        },
    },
]

# Widgets written in Python rather than a template per option (portal/form_renderer.py): the same HTML.
FORM_RENDERER = "portal.form_renderer.PortalFormRenderer"

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"),
}
# A web server thread keeps its connection between requests, checked before reuse: opening one (SQLite reads the
# schema again, PostgreSQL shakes hands) was a third of a live-log poll's CPU time. The job worker closes its
# connections before it forks a work horse (portal/jobs/worker.py).
DATABASES["default"]["CONN_MAX_AGE"] = 60
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if env_secret("DATABASE_PASSWORD"):
    # The password apart from the URL, so that it can come from a secrets file.
    DATABASES["default"]["PASSWORD"] = env_secret("DATABASE_PASSWORD")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several RQ workers and the web server write at once (job logs): WAL lets readers go on while
    # one writer commits, IMMEDIATE avoids lock upgrades that fail instead of waiting.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # Tests share one file with the worker processes they start, so it cannot be in memory.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-portal.sqlite3")}
    # SQLite creates the file with the umask's mode: portal.security.restrict_sqlite_file brings it (its
    # -wal/-shm files, and the test database) to 0600 as each connection opens.
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6390/0")
# The local PostgreSQL `manage.py stack up postgres` runs (loopback only): make test runs the tests marked
# `postgres` a second time with DATABASE_URL pointing at it. Not the portal's own database unless
# DATABASE_URL says so.
STACK_POSTGRES_URL = env.str("POSTGRES_URL", default="postgres://dirops@127.0.0.1:5439/dirops")
RQ_QUEUE_NAMES = ["default", "long"]
RQ_QUEUES = {name: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 6 * 3600} for name in RQ_QUEUE_NAMES}
RQ_SHOW_ADMIN_LINK = False
RQ = {"WORKER_CLASS": "portal.jobs.worker.PortalWorker"}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# Local accounts: django-axes first (it counts failures and refuses a locked-out username before the
# password is checked), then the portal's backend, which refuses everyone when local accounts are off.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "portal.accounts.backends.LocalAccountBackend"]
LOCAL_ACCOUNTS_ENABLED = env.bool("LOCAL_ACCOUNTS_ENABLED", default=True)
# A local account's password is followed by a TOTP code (enrolment at the first sign-in) or a recovery code.
LOCAL_ACCOUNTS_TOTP = env.bool("LOCAL_ACCOUNTS_TOTP", default=True)
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_LOCKOUT_MINUTES = env.float("LOGIN_LOCKOUT_MINUTES", default=15.0)
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = LOGIN_LOCKOUT_MINUTES / 60  # hours
# What a run of failures locks. `username+address` (the default): that username from that client address
# only, so behind a reverse proxy without AUDIT_CLIENT_IP_HEADER, or on a shared NAT, where every sign-in
# seems to come from one address, one person's wrong passwords never lock anyone else out. `username`: the
# account from everywhere (a password guessed at from many addresses is stopped too, but anyone who knows
# the name can lock the account). `username,address`: either counts; only where each person's address is
# really seen, since failures from one address then lock every username tried from it.
LOGIN_LOCKOUT_CHOICES = {
    "username+address": [["username", "ip_address"]],
    "username": ["username"],
    "username,address": ["username", "ip_address"],
}
LOGIN_LOCKOUT_BY = env.str("LOGIN_LOCKOUT_BY", default="username+address").replace(" ", "").lower()
if LOGIN_LOCKOUT_BY not in LOGIN_LOCKOUT_CHOICES:
    raise ValueError(f"LOGIN_LOCKOUT_BY must be one of {', '.join(LOGIN_LOCKOUT_CHOICES)}, not {LOGIN_LOCKOUT_BY!r}")
AXES_LOCKOUT_PARAMETERS = LOGIN_LOCKOUT_CHOICES[LOGIN_LOCKOUT_BY]
# axes warns when the address is left out; `username` leaves it out on purpose.
SILENCED_SYSTEM_CHECKS = ["axes.W006"] if LOGIN_LOCKOUT_BY == "username" else []
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_DISABLE_ACCESS_LOG = True  # successful sign-ins are in the audit log already
AXES_VERBOSE = False
AXES_CLIENT_IP_CALLABLE = "portal.audit.services.client_ip"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
# Django's database sessions, read with one SQL statement (portal/accounts/sessions.py).
SESSION_ENGINE = "portal.accounts.sessions"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
# HTTPS hardening is on by default only where the portal is really deployed: `make demo` and `make test`
# serve plain http on loopback in lab mode, where a redirect to https or an HSTS pin would lock them out.
PRODUCTION = not LAB_MODE and not DEBUG
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=PRODUCTION)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=PRODUCTION)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=PRODUCTION)
# Behind a TLS-terminating proxy, e.g. "HTTP_X_FORWARDED_PROTO,https". Never a default: trusting the header
# without a proxy that overwrites it lets any client claim https.
SECURE_PROXY_SSL_HEADER = tuple(env.list("SECURE_PROXY_SSL_HEADER", default=[])) or None
if SECURE_PROXY_SSL_HEADER and len(SECURE_PROXY_SSL_HEADER) != 2:
    raise ValueError("SECURE_PROXY_SSL_HEADER must be 'HEADER,value', e.g. HTTP_X_FORWARDED_PROTO,https")
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# No inline script or style anywhere (portal/security.py sets it on every response).
CONTENT_SECURITY_POLICY = env.str(
    "CONTENT_SECURITY_POLICY",
    default="default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
            "base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
)
# URL namespaces whose pages show directory data, reports, audit records, job logs or backups: a shared
# or back-buttoned browser must not keep a copy of them.
NO_STORE_NAMESPACES = ["audit", "jobs", "migrations_app", "diagnostics_app", "directory", "lab"]

# Behind a reverse proxy: the header it sets with the client's address (e.g. X-Forwarded-For), trusted
# for the audit log's client address. Empty: the socket's peer address is recorded.
AUDIT_CLIENT_IP_HEADER = env.str("AUDIT_CLIENT_IP_HEADER", default="")

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns on every request while collectstatic has not run
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

DJANGO_TABLES2_TEMPLATE = "includes/table.html"
# An unset filter reads "Any" everywhere, not "---------".
FILTERS_EMPTY_CHOICE_LABEL = "Any"
DJANGO_TABLES2_PAGE_RANGE = 7

# Jobs: how often a running job proves its worker is alive, and how long a silence means it died.
JOB_HEARTBEAT_SECONDS = env.float("JOB_HEARTBEAT_SECONDS", default=2.0)
JOB_WORKER_LOST_AFTER_SECONDS = env.float("JOB_WORKER_LOST_AFTER_SECONDS", default=30.0)
JOB_LOG_POLL_MS = env.int("JOB_LOG_POLL_MS", default=300)
# A worker RQ has not heard from for this long is gone (RQ beats every 30 s while a job runs, +60 s grace).
JOB_RQ_WORKER_SILENCE_SECONDS = env.float("JOB_RQ_WORKER_SILENCE_SECONDS", default=90.0)
# Worker processes sweep this often: jobs queued while Redis was down are queued again, jobs whose
# queue entry vanished are marked for an Administrator, running jobs without heartbeat are marked lost.
JOB_SWEEP_SECONDS = env.int("JOB_SWEEP_SECONDS", default=60)
# A queued job without a queue entry older than this was missed by its on-commit enqueue.
JOB_REQUEUE_AFTER_SECONDS = env.float("JOB_REQUEUE_AFTER_SECONDS", default=30.0)
# Called with no argument at every sweep too (dotted paths): e.g. the start of batches whose window began.
JOB_SWEEP_HOOKS = env.list("JOB_SWEEP_HOOKS", default=["migrations_app.batch_run.do_start_due_batches",
                                                        "migrations_app.batch_run.do_recover_lost_batch_runs"])
# Extra modules defining JobRunner kinds (plugins; the tests load their own kinds this way).
JOB_EXTRA_MODULES = env.list("JOB_EXTRA_MODULES", default=[])
# Slows the connectivity check so that its lines can be watched arriving (tests, demo).
CONNECTIVITY_CHECK_STEP_DELAY = env.float("CONNECTIVITY_CHECK_STEP_DELAY", default=0.0)

# On-premises Active Directory (portal/connectors/registry.py). In LAB_MODE, unset values come
# from the rehearsal lab's Samba AD DC (portal/lab), started by `manage.py lab ad up`.
LAB_DIR = Path(env.str("LAB_DIR", default=str(VAR_DIR / "lab")))
LAB_AD_HOST = env.str("LAB_AD_HOST", default="127.0.0.2")  # Samba's ports are fixed: one loopback address a lab
LAB_AD_REALM = env.str("LAB_AD_REALM", default="LAB.EXAMPLE")
LAB_SEED_USERS = env.int("LAB_SEED_USERS", default=200)
LAB_CLOUD_PORT = env.int("LAB_CLOUD_PORT", default=8444)  # the lab's stand-in for Microsoft, HTTPS on 127.0.0.1
# How long a lab sync cycle takes at least: 0 in tests; the demo shows a sync server that is busy a while.
LAB_SYNC_LATENCY_SECONDS = env.float("LAB_SYNC_LATENCY_SECONDS", default=0.0)
AD_HOST = env.str("AD_HOST", default="")
AD_PORT = env.int("AD_PORT", default=0) or None
AD_USE_SSL = env.bool("AD_USE_SSL", default=False)
AD_START_TLS = env.bool("AD_START_TLS", default=False)
AD_VALIDATE_CERT = env.bool("AD_VALIDATE_CERT", default=True)
AD_CA_FILE = env.str("AD_CA_FILE", default="") or None
AD_TLS_SERVER_NAME = env.str("AD_TLS_SERVER_NAME", default="") or None
AD_AUTH = env.str("AD_AUTH", default="simple")
AD_BIND_DN = env.str("AD_BIND_DN", default="") or None
AD_PASSWORD = env_secret("AD_PASSWORD")
AD_BASE_DN = env.str("AD_BASE_DN", default="")
AD_SYNC_OUS = env.list("AD_SYNC_OUS", default=[])  # the OUs Entra Connect synchronises
AD_NON_SYNC_OU = env.str("AD_NON_SYNC_OU", default="")  # where migrated lists leave the sync scope

# DL migration: how long to insist. The field notes' tool retries the move 5 x 5 s and waits for the cloud
# deletion forever; the portal waits DL_DELETION_TIMEOUT_SECONDS, then rolls back.
DL_MOVE_ATTEMPTS = env.int("DL_MOVE_ATTEMPTS", default=5)
DL_MOVE_RETRY_SECONDS = env.float("DL_MOVE_RETRY_SECONDS", default=5.0)
DL_SYNC_ATTEMPTS = env.int("DL_SYNC_ATTEMPTS", default=10)
DL_SYNC_RETRY_SECONDS = env.float("DL_SYNC_RETRY_SECONDS", default=30.0)
DL_DELETION_TIMEOUT_SECONDS = env.float("DL_DELETION_TIMEOUT_SECONDS", default=3600.0)
DL_DELETION_POLL_SECONDS = env.float("DL_DELETION_POLL_SECONDS", default=15.0)
AD_WRITEBACK_OU = env.str("AD_WRITEBACK_OU", default="")  # group writeback target
# Address repair: the AD attribute the sync rule maps to certificateUserIds (empty: not checked), and
# top-level domains to accept beyond country codes, the common generic ones and the tenant's own.
ADDRESS_REPAIR_CERTIFICATE_ATTRIBUTE = env.str("ADDRESS_REPAIR_CERTIFICATE_ATTRIBUTE", default="altSecurityIdentities")
# The lab's made-up partners live under the reserved .example TLD (RFC 2606): accepted in lab mode, or every
# seeded contact is a TopLevelDomain finding and the field notes' cases drown in them.
ADDRESS_REPAIR_EXTRA_TLDS = env.list("ADDRESS_REPAIR_EXTRA_TLDS", default=["example"] if LAB_MODE else [])
# How long a fix's verification waits for the sync server to be idle, then for its delta cycle (seconds).
ADDRESS_REPAIR_VERIFY_SYNC_TIMEOUT = env.float("ADDRESS_REPAIR_VERIFY_SYNC_TIMEOUT", default=600.0)
# How long an approval may wait for its run: the approver picks, up to the maximum (a window days ahead).
DL_APPROVAL_DEFAULT_VALID_HOURS = env.float("DL_APPROVAL_DEFAULT_VALID_HOURS", default=24.0)
DL_APPROVAL_MAX_VALID_HOURS = env.float("DL_APPROVAL_MAX_VALID_HOURS", default=14 * 24.0)
# A running batch's job looks at its lists this often (it starts a parent once its children are done).
DL_BATCH_POLL_SECONDS = env.float("DL_BATCH_POLL_SECONDS", default=5.0)
# A list of a running batch that no free worker took within this time is run by the batch's own worker.
DL_BATCH_TAKE_OVER_SECONDS = env.float("DL_BATCH_TAKE_OVER_SECONDS", default=10.0)
# A batch's lists share one delta sync per wave: it starts once every running list has moved its group
# (their jobs wait, workers free), or this long after the first list asked, whichever comes first.
DL_BATCH_SYNC_GATHER_SECONDS = env.float("DL_BATCH_SYNC_GATHER_SECONDS", default=600.0)
# A batch's list, or its run job, whose worker died is queued again this many times at most (then an Administrator).
DL_BATCH_RESUME_LOST = env.int("DL_BATCH_RESUME_LOST", default=2)

# E-mail for notifications (a batch waits for sign-off, a batch moved on): sent only when EMAIL_HOST is set;
# the portal's inbox gets every notification either way.
EMAIL_HOST = env.str("EMAIL_HOST", default="")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD", "") or ""
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="dirops-portal@localhost")

# The Microsoft cloud (portal/connectors/registry.py): one app registration for Graph and Exchange
# Online, a client secret or a certificate. In LAB_MODE, unset values come from the lab cloud.
ENTRA_TENANT_ID = env.str("ENTRA_TENANT_ID", default="")
ENTRA_CLIENT_ID = env.str("ENTRA_CLIENT_ID", default="")
ENTRA_CLIENT_SECRET = env_secret("ENTRA_CLIENT_SECRET")
ENTRA_CERTIFICATE_KEY_FILE = env.str("ENTRA_CERTIFICATE_KEY_FILE", default="") or None
ENTRA_CERTIFICATE_FILE = env.str("ENTRA_CERTIFICATE_FILE", default="") or None
ENTRA_CERTIFICATE_THUMBPRINT = env.str("ENTRA_CERTIFICATE_THUMBPRINT", default="") or None
ENTRA_CERTIFICATE_PASSPHRASE = env_secret("ENTRA_CERTIFICATE_PASSPHRASE")
ENTRA_AUTHORITY_HOST = env.str("ENTRA_AUTHORITY_HOST", default="https://login.microsoftonline.com")
GRAPH_URL = env.str("GRAPH_URL", default="https://graph.microsoft.com/v1.0")
EXCHANGE_ONLINE_URL = env.str("EXCHANGE_ONLINE_URL", default="https://outlook.office365.com")
EXCHANGE_ORGANIZATION = env.str("EXCHANGE_ORGANIZATION", default="") or None  # e.g. contoso.onmicrosoft.com
CLOUD_CA_FILE = env.str("CLOUD_CA_FILE", default="") or None
CLOUD_PROXY = env.str("CLOUD_PROXY", default="") or None
# Remote PowerShell (WinRM over HTTPS): Exchange on-premises and the Entra Connect server.
EXCHANGE_ONPREM_SERVER = env.str("EXCHANGE_ONPREM_SERVER", default="")
ENTRA_CONNECT_SERVER = env.str("ENTRA_CONNECT_SERVER", default="")
PSRP_AUTH = env.str("PSRP_AUTH", default="kerberos")
PSRP_USERNAME = env.str("PSRP_USERNAME", default="") or None
PSRP_PASSWORD = env_secret("PSRP_PASSWORD")
PSRP_CA_FILE = env.str("PSRP_CA_FILE", default="") or None

# Sign-in with Entra ID (portal/accounts/oidc.py): on by default in lab mode (the lab cloud signs in
# too); in production set ENTRA_SIGN_IN=true. The app registration is ENTRA_CLIENT_ID's unless
# ENTRA_SIGN_IN_CLIENT_ID (and its secret) names another one.
ENTRA_SIGN_IN = env.bool("ENTRA_SIGN_IN", default=LAB_MODE)
ENTRA_SIGN_IN_CLIENT_ID = env.str("ENTRA_SIGN_IN_CLIENT_ID", default="")
ENTRA_SIGN_IN_CLIENT_SECRET = env_secret("ENTRA_SIGN_IN_CLIENT_SECRET")
# The redirect URI registered on the app; by default built from the request (…/login/microsoft/callback/).
ENTRA_SIGN_IN_REDIRECT_URI = env.str("ENTRA_SIGN_IN_REDIRECT_URI", default="")
# App role value (the token's `roles` claim) -> portal role; group object id -> portal role as an alternative.
ENTRA_APP_ROLE_MAP = env.dict("ENTRA_APP_ROLE_MAP", default={
    "DirOps.Helpdesk": "Helpdesk", "DirOps.Administrator": "Administrator", "DirOps.Approver": "Approver",
    "DirOps.Auditor": "Auditor"})
ENTRA_GROUP_ROLE_MAP = env.dict("ENTRA_GROUP_ROLE_MAP", default={})
# A session signed in with Entra ID older than this signs in again, so a removed role takes effect.
ENTRA_ROLE_RECHECK_SECONDS = env.int("ENTRA_ROLE_RECHECK_SECONDS", default=3600)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # django-axes logs every sign-in at INFO; the audit log keeps what matters (logins, lockouts).
    "loggers": {"axes": {"level": "WARNING"}},
}
