"""App-only tokens from msal (client secret or certificate) for Graph and, through :class:`TokenSource`,
for :mod:`..exchange`; and the Kiota token provider that hands them only to the configured hosts.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import msal
import requests
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
)

from .errors import TokenError, _scrub

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
HELD_MARGIN = 300.0  # seconds: msal renews app tokens about 5 minutes before expiry; so do we


@dataclass(frozen=True)
class AppCredentials:
    """The app registration the portal signs in as, and how to reach its token endpoint.

    Either ``client_secret``, or ``certificate_key`` (PEM private key) with ``certificate_thumbprint``
    (SHA-1 hex of the certificate registered on the app) or ``certificate`` (its PEM, from which
    msal computes the thumbprint and which it sends for subject-name/issuer authentication).
    Secrets never appear in repr().
    """

    tenant_id: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    certificate_key: str | None = field(default=None, repr=False)
    certificate_key_passphrase: str | None = field(default=None, repr=False)
    certificate_thumbprint: str | None = None
    certificate: str | None = field(default=None, repr=False)
    authority_host: str = "https://login.microsoftonline.com"
    ca_file: str | None = None  # CA bundle for the token endpoint and the APIs (the lab's CA)
    proxy: str | None = None  # explicit proxy URL; environment proxies are not used
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if not self.tenant_id or not self.client_id:
            raise ValueError("tenant_id and client_id are required")
        if bool(self.client_secret) == bool(self.certificate_key):
            raise ValueError("give exactly one of client_secret or certificate_key")
        if self.certificate_key and not (self.certificate_thumbprint or self.certificate):
            raise ValueError("a certificate credential needs certificate_thumbprint or certificate (PEM)")
        if not self.authority_host.startswith("https://"):
            raise ValueError("msal accepts only https authorities")

    @property
    def authority(self) -> str:
        return f"{self.authority_host.rstrip('/')}/{self.tenant_id}"

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value, for scrubbing error text."""
        return tuple(s for s in (self.client_secret, self.certificate_key, self.certificate_key_passphrase) if s)


@dataclass(frozen=True)
class AccessToken:
    token: str = field(repr=False)
    expires_at: float
    claims: Mapping[str, Any] = field(default_factory=dict)


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (for display: tenant, roles); {} when it is not a JWT."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
        return claims if isinstance(claims, dict) else {}
    except (IndexError, ValueError):
        return {}


class TokenSource:
    """App-only tokens from msal for one app registration. Thread-safe; tokens cached in memory.

    The msal application is created on first use: its constructor already fetches the authority's
    OpenID configuration, and a connector must be constructible without the network.
    """

    def __init__(self, credentials: AppCredentials) -> None:
        self.credentials = credentials
        self._app: msal.ConfidentialClientApplication | None = None
        self._lock = threading.Lock()
        self._held: dict[str, AccessToken] = {}  # the last token per scope, for :meth:`held`

    def _session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # the environment's CA bundle would override verify=
        session.verify = self.credentials.ca_file or True
        if self.credentials.proxy:
            session.proxies = {"https": self.credentials.proxy, "http": self.credentials.proxy}
        return session

    def _credential(self) -> str | dict[str, Any]:
        c = self.credentials
        if c.client_secret:
            return c.client_secret
        cred: dict[str, Any] = {"private_key": c.certificate_key}
        if c.certificate_thumbprint:
            cred["thumbprint"] = c.certificate_thumbprint.replace(":", "").strip()
        if c.certificate:
            cred["public_certificate"] = c.certificate
        if c.certificate_key_passphrase:
            cred["passphrase"] = c.certificate_key_passphrase
        return cred

    def _application(self) -> msal.ConfidentialClientApplication:
        with self._lock:
            if self._app is None:
                c = self.credentials
                try:
                    self._app = msal.ConfidentialClientApplication(
                        c.client_id,
                        client_credential=self._credential(),
                        authority=c.authority,
                        instance_discovery=False,  # do not ask Microsoft about a lab or sovereign host
                        http_client=self._session(),
                        timeout=c.timeout,
                        token_cache=msal.TokenCache(),
                    )
                except (requests.RequestException, OSError) as exc:
                    raise TokenError(
                        f"cannot reach the token authority {c.authority}: {self._clean(exc)}", unreachable=True
                    ) from None
                except ValueError as exc:
                    # msal raises ValueError both for an unreachable/odd authority and a bad key
                    raise TokenError(f"cannot set up the token client for {c.authority}: {self._clean(exc)}",
                                     unreachable="authority" in str(exc).lower()) from None
            return self._app

    def _clean(self, exc: BaseException) -> str:
        return _scrub(f"{type(exc).__name__}: {exc}", self.credentials.secrets)

    def acquire(self, scope: str, *, claims: str | None = None) -> AccessToken:
        """A token for ``scope`` (e.g. ``https://graph.microsoft.com/.default``); cached until near expiry."""
        app = self._application()
        try:
            result = app.acquire_token_for_client(scopes=[scope], claims_challenge=claims)
        except (requests.RequestException, OSError) as exc:
            raise TokenError(f"cannot reach the token endpoint of {self.credentials.authority}: {self._clean(exc)}",
                             unreachable=True) from None
        except ValueError as exc:
            raise TokenError(f"token request for {scope} failed: {self._clean(exc)}") from None
        if not isinstance(result, dict) or "access_token" not in result:
            result = result if isinstance(result, dict) else {}
            code = str(result.get("error") or "unknown_error")
            description = _scrub(str(result.get("error_description") or ""), self.credentials.secrets)
            raise TokenError(
                f"the token endpoint refused client {self.credentials.client_id} for {scope}: {code}"
                + (f": {description.splitlines()[0]}" if description else ""),
                code=code, correlation_id=result.get("correlation_id"),
            )
        token = str(result["access_token"])
        expires_in = float(result.get("expires_in") or 3600)
        access = AccessToken(token=token, expires_at=time.time() + expires_in, claims=jwt_claims(token))
        if claims is None:
            self._held[scope] = access
        return access

    def held(self, scope: str) -> AccessToken | None:
        """The token last acquired for ``scope`` while it has more than :data:`HELD_MARGIN` seconds left.

        msal caches tokens too, but asking it means a thread hop per request (it may talk to the
        authority); a paged read of a large tenant asks once per page, so the token in hand is used."""
        access = self._held.get(scope)
        return access if access is not None and access.expires_at - time.time() > HELD_MARGIN else None

    def token(self, scope: str, *, claims: str | None = None) -> str:
        return self.acquire(scope, claims=claims).token

    def invalidate(self) -> None:
        """Forget cached tokens (the service refused one): the next call asks the authority again."""
        with self._lock:
            self._app = None
            self._held.clear()


class _MsalAccessTokenProvider(AccessTokenProvider):
    """Kiota's token hook, backed by :class:`TokenSource`; tokens only go to the configured hosts."""

    def __init__(self, source: TokenSource, scope: str, allowed_hosts: Sequence[str]) -> None:
        self._source = source
        self._scope = scope
        self._validator = AllowedHostsValidator(list(allowed_hosts))

    async def get_authorization_token(self, uri: str, additional_authentication_context: dict[str, Any] = {}) -> str:  # noqa: B006 - Kiota's signature
        if not uri or not self._validator.is_url_host_valid(uri):
            return ""
        parts = urlsplit(uri)
        if parts.scheme != "https":
            return ""
        claims = additional_authentication_context.get("claims") if additional_authentication_context else None
        access = self._source.held(self._scope) if claims is None else None
        if access is None:
            # msal is synchronous (requests); keep the event loop free while it talks to the authority
            access = await asyncio.to_thread(self._source.acquire, self._scope, claims=claims)
        return access.token

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return self._validator
