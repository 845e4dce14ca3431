"""Builds the connectors from settings: production values from the environment, or the lab's.

The only place that knows where a directory is; everything else asks here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings

from portal.jobs.redaction import register_secret

from .ad import ActiveDirectory, AdSettings


class NotConfigured(Exception):
    """The portal has no address for this directory: say which settings are missing."""


@dataclass(frozen=True)
class AdLayout:
    """Where things are in this organisation's AD, as the sync scope defines it."""

    base_dn: str
    sync_ous: tuple[str, ...]
    non_sync_ou: str
    writeback_ou: str


def _lab():
    from portal.lab import config

    return config


def ad_settings() -> AdSettings:
    if settings.LAB_MODE and not settings.AD_HOST:
        lab = _lab()
        try:
            password = lab.ad_admin_password(create=False)
        except FileNotFoundError:
            raise NotConfigured("The lab's Active Directory is not set up yet: run `manage.py lab ad up`.") from None
        register_secret(password)
        return AdSettings(host=settings.LAB_AD_HOST, base_dn=lab.base_dn(), bind_dn=lab.admin_dn(),
                          password=password, retries=2, retry_backoff=0.2)
    missing = [name for name in ("AD_HOST", "AD_BASE_DN") if not getattr(settings, name)]
    if settings.AD_AUTH == "simple" and not settings.AD_BIND_DN:
        missing.append("AD_BIND_DN")
    if missing:
        raise NotConfigured(f"Active Directory is not configured: set {', '.join(missing)} (see README).")
    register_secret(settings.AD_PASSWORD)
    return AdSettings(
        host=settings.AD_HOST, port=settings.AD_PORT, base_dn=settings.AD_BASE_DN, bind_dn=settings.AD_BIND_DN,
        password=settings.AD_PASSWORD, use_ssl=settings.AD_USE_SSL, start_tls=settings.AD_START_TLS,
        validate_cert=settings.AD_VALIDATE_CERT, ca_file=settings.AD_CA_FILE,
        tls_server_name=settings.AD_TLS_SERVER_NAME, auth=settings.AD_AUTH,
    )


def ad_layout() -> AdLayout:
    if settings.LAB_MODE and not settings.AD_HOST:
        from portal.lab import layout

        base = _lab().base_dn()
        return AdLayout(base_dn=base, sync_ous=tuple(layout.sync_ous(base)), non_sync_ou=layout.non_sync_ou(base),
                        writeback_ou=layout.writeback_ou(base))
    return AdLayout(base_dn=settings.AD_BASE_DN, sync_ous=tuple(settings.AD_SYNC_OUS),
                    non_sync_ou=settings.AD_NON_SYNC_OU, writeback_ou=settings.AD_WRITEBACK_OU)


@contextmanager
def active_directory() -> Iterator[ActiveDirectory]:
    """A connection for one request or one job step; closed on the way out."""
    with ActiveDirectory(ad_settings()) as directory:
        yield directory
