"""Response headers Django's SecurityMiddleware does not set: Content-Security-Policy, and no-store on the
pages that show directory data, reports, audit records, job logs and backups. A SQLite database file
that only its owner can read. And `check --deploy` checks of the portal's own settings.

Django 6 brings its own CSP middleware (SECURE_CSP); once the portal moves to it, this one's CSP half goes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers


def must_not_be_stored(request: HttpRequest) -> bool:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return False
    return any(namespace in settings.NO_STORE_NAMESPACES for namespace in match.namespaces)


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # Django's own debug pages (DEBUG only) are built from inline style and script.
        debug_page = settings.DEBUG and response.status_code in (404, 500)
        if settings.CONTENT_SECURITY_POLICY and not debug_page:
            response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        if must_not_be_stored(request):
            add_never_cache_headers(response)
        return response


def restrict_sqlite_file(sender, connection, **kwargs) -> None:
    """connection_created: the database holds job logs, backups of directory objects and the audit trail."""
    if connection.vendor != "sqlite":
        return
    name = str(connection.settings_dict["NAME"])
    if name == ":memory:" or name.startswith("file:"):
        return
    for path in (Path(name), Path(f"{name}-wal"), Path(f"{name}-shm"), Path(f"{name}-journal")):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        if stat.st_uid == os.getuid() and stat.st_mode & 0o077:
            path.chmod(0o600)


@register(Tags.security, deploy=True)
def ad_bind_is_encrypted(app_configs, **kwargs) -> list[Error]:
    """The refusal the AD connector raises at its first use, told by `check --deploy` before that."""
    from portal.connectors.registry import ad_bind_refusal

    if not settings.AD_HOST:
        return []
    refusal = ad_bind_refusal()
    return [Error(refusal, id="dirops.E001")] if refusal else []
