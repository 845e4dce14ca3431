"""Builds the connectors from settings: production values from the environment, or the lab's.

The only place that knows where a directory is; everything else asks here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings

from portal.jobs.redaction import register_secret

from .ad.client import ActiveDirectory
from .ad.settings import AdSettings


class NotConfigured(Exception):
    """The portal has no address for this directory: say which settings are missing."""


class InsecureConfiguration(NotConfigured):
    """The settings would send a credential in clear text: refused until they are fixed."""


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
    refusal = ad_bind_refusal()
    if refusal:
        raise InsecureConfiguration(refusal)
    register_secret(settings.AD_PASSWORD)
    return AdSettings(
        host=settings.AD_HOST, port=settings.AD_PORT, base_dn=settings.AD_BASE_DN, bind_dn=settings.AD_BIND_DN,
        password=settings.AD_PASSWORD, use_ssl=settings.AD_USE_SSL, start_tls=settings.AD_START_TLS,
        validate_cert=settings.AD_VALIDATE_CERT, ca_file=settings.AD_CA_FILE,
        tls_server_name=settings.AD_TLS_SERVER_NAME, auth=settings.AD_AUTH,
    )


def ad_bind_refusal() -> str | None:
    """Why the configured AD bind is refused, or None. A simple bind sends the service account's password
    as it is: on the wire it must be inside TLS (the lab's Samba on loopback is the exception)."""
    if settings.AD_AUTH == "simple" and not (settings.AD_USE_SSL or settings.AD_START_TLS) and not settings.LAB_MODE:
        return ("Refusing a simple LDAP bind without TLS: set AD_USE_SSL=true (LDAPS, port 636) or AD_START_TLS=true, "
                "or use Kerberos (AD_AUTH=gssapi).")
    return None


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


# --- the Microsoft cloud --------------------------------------------------------------------------


def _lab_cloud():
    """The running lab cloud's addresses and credentials (LAB_MODE without ENTRA_TENANT_ID)."""
    from portal.lab.cloud import server

    data_dir = _lab().cloud_dir()
    status = server.status(data_dir=data_dir)
    if not status.running:
        raise NotConfigured("The lab cloud is not running: run `manage.py lab cloud up`.")
    creds = server.lab_credentials(data_dir=data_dir)
    for secret in (creds.client_secret, creds.powershell_password):
        register_secret(secret)
    return status, creds


def _use_lab_cloud() -> bool:
    return settings.LAB_MODE and not settings.ENTRA_TENANT_ID


def app_credentials():
    from .graph.auth import AppCredentials

    if _use_lab_cloud():
        status, creds = _lab_cloud()
        return AppCredentials(tenant_id=creds.tenant_id, client_id=creds.client_id, client_secret=creds.client_secret,
                              authority_host=status.base_url, ca_file=str(status.ca_file))
    missing = [n for n in ("ENTRA_TENANT_ID", "ENTRA_CLIENT_ID") if not getattr(settings, n)]
    if not (settings.ENTRA_CLIENT_SECRET or settings.ENTRA_CERTIFICATE_KEY_FILE):
        missing.append("ENTRA_CLIENT_SECRET or ENTRA_CERTIFICATE_KEY_FILE")
    if missing:
        raise NotConfigured(f"The Microsoft cloud is not configured: set {', '.join(missing)} (see README).")
    register_secret(settings.ENTRA_CLIENT_SECRET)
    register_secret(settings.ENTRA_CERTIFICATE_PASSPHRASE)
    key = _read(settings.ENTRA_CERTIFICATE_KEY_FILE)
    return AppCredentials(
        tenant_id=settings.ENTRA_TENANT_ID, client_id=settings.ENTRA_CLIENT_ID,
        client_secret=None if key else settings.ENTRA_CLIENT_SECRET, certificate_key=key,
        certificate_key_passphrase=settings.ENTRA_CERTIFICATE_PASSPHRASE,
        certificate_thumbprint=settings.ENTRA_CERTIFICATE_THUMBPRINT,
        certificate=_read(settings.ENTRA_CERTIFICATE_FILE), authority_host=settings.ENTRA_AUTHORITY_HOST,
        ca_file=settings.CLOUD_CA_FILE, proxy=settings.CLOUD_PROXY,
    )


def _read(path: str | None) -> str | None:
    return open(path).read() if path else None  # noqa: SIM115 - tiny PEM files


@contextmanager
def entra_graph():
    from .graph.client import EntraGraph
    from .graph.settings import GraphSettings

    credentials = app_credentials()
    if _use_lab_cloud():
        status, _ = _lab_cloud()
        graph_settings = GraphSettings(credentials=credentials, graph_url=status.graph_url,
                                       beta_url=status.graph_beta_url)
    else:
        graph_settings = GraphSettings(credentials=credentials, graph_url=settings.GRAPH_URL)
    with EntraGraph(graph_settings) as graph:
        yield graph


@contextmanager
def exchange_online():
    from .exchange import ExchangeOnline, ExchangeOnlineSettings

    credentials = app_credentials()
    if _use_lab_cloud():
        status, creds = _lab_cloud()
        exo = ExchangeOnlineSettings(credentials=credentials, base_url=status.base_url,
                                     organization=creds.initial_domain)
    else:
        exo = ExchangeOnlineSettings(credentials=credentials, base_url=settings.EXCHANGE_ONLINE_URL,
                                     organization=settings.EXCHANGE_ORGANIZATION)
    with ExchangeOnline(exo) as client:
        yield client


def _powershell(*, lab_url: str, server: str, exchange: bool):
    """A transport for remote PowerShell: pypsrp in production, the lab's endpoint in lab mode."""
    from .exchange import LabPowerShellTransport, PsrpSettings, PsrpTransport

    if settings.LAB_MODE and not server:
        status, creds = _lab_cloud()
        return LabPowerShellTransport(getattr(status, lab_url), username=creds.powershell_username,
                                      password=creds.powershell_password, ca_file=str(status.ca_file))
    if not server:
        name = "EXCHANGE_ONPREM_SERVER" if exchange else "ENTRA_CONNECT_SERVER"
        raise NotConfigured(f"{name} is not set (see README).")
    register_secret(settings.PSRP_PASSWORD)
    kwargs = {"username": settings.PSRP_USERNAME, "password": settings.PSRP_PASSWORD, "auth": settings.PSRP_AUTH,
              "ca_file": settings.PSRP_CA_FILE}
    return PsrpTransport(PsrpSettings.exchange(server, **kwargs) if exchange else PsrpSettings(server=server, **kwargs))


@contextmanager
def exchange_onprem():
    from .exchange import ExchangeOnPrem

    with ExchangeOnPrem(_powershell(lab_url="exchange_onprem_url", server=settings.EXCHANGE_ONPREM_SERVER,
                                    exchange=True)) as client:
        yield client


@contextmanager
def entra_connect():
    from .sync import EntraConnect

    with EntraConnect(_powershell(lab_url="entra_connect_url", server=settings.ENTRA_CONNECT_SERVER,
                                  exchange=False)) as client:
        yield client


# --- sign-in with Entra ID ------------------------------------------------------------------------

_sign_in_clients: dict = {}


def entra_sign_in():
    """The msal client that signs people in (portal/accounts/oidc.py), one per app registration and
    process so that the tenant's OpenID configuration and keys are fetched once."""
    from dataclasses import replace

    from portal.accounts.oidc import EntraSignIn

    credentials = app_credentials()
    if settings.ENTRA_SIGN_IN_CLIENT_ID:
        if not settings.ENTRA_SIGN_IN_CLIENT_SECRET:
            raise NotConfigured("ENTRA_SIGN_IN_CLIENT_ID is set without ENTRA_SIGN_IN_CLIENT_SECRET (see README).")
        register_secret(settings.ENTRA_SIGN_IN_CLIENT_SECRET)
        credentials = replace(credentials, client_id=settings.ENTRA_SIGN_IN_CLIENT_ID,
                              client_secret=settings.ENTRA_SIGN_IN_CLIENT_SECRET, certificate_key=None)
    client = _sign_in_clients.get(credentials)
    if client is None:
        client = _sign_in_clients[credentials] = EntraSignIn(credentials)
    return client
