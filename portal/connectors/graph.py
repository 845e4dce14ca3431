"""EntraGraph: the portal's way to Microsoft Graph (msgraph-sdk over httpx, tokens from msal).

No Django here: the connector is configured by :class:`GraphSettings` (built from Django settings by
``connectors/registry.py``) and returns plain dataclasses, never SDK models.

How it talks to Graph:

* Tokens come from an msal ``ConfidentialClientApplication`` (client secret, or a certificate:
  private key + SHA-1 thumbprint) through :class:`TokenSource`, which :mod:`.exchange` shares.
  msal gets its own ``requests.Session`` with ``trust_env=False``: on these machines
  ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` would otherwise override the CA file we pass.
* The SDK's request adapter gets an ``httpx.AsyncClient`` whose ``base_url`` is
  ``GraphSettings.graph_url`` (production ``https://graph.microsoft.com/v1.0``; the lab's URL with
  its CA file), wrapped in the SDK's default middleware with a configured ``RetryHandler`` (429,
  503, 504; honours ``Retry-After``).
* Authentication is our own Kiota ``AccessTokenProvider`` backed by msal. Its allowed hosts are the
  configured Graph host(s) only, so a token never follows a link to another host.
* Requests are built by the SDK's request builders and sent through its request adapter; answers
  are read as Graph's JSON rather than as SDK models (the models cost ~5 ms per object, see
  "converting Graph's JSON" below).
* Paging uses the SDK's ``PageIterator`` (absolute ``@odata.nextLink``), with a fresh header set per
  page so that a token never rides along to a nextLink on another host. ``$batch`` requests are
  built with ``BatchRequestContent`` (at most 20 per batch; larger sets are split) and items that
  come back 429/503 are retried by this module, since the retry middleware only sees the batch.
  The batch answer is parsed here: the SDK's ``BatchResponseContent`` drops JSON bodies.
* The SDK is async; RQ jobs are not. :class:`EntraGraph` is a synchronous facade that owns one
  private event loop in a daemon thread for its lifetime (one httpx connection pool, reused), so it
  works the same from a worker, a management command or a thread with its own running loop.

Errors surface as :class:`GraphError` subclasses that keep the HTTP status, Graph's error code and
message and the request id. Secrets (client secret, private key) never appear in an exception
message or a log line.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import ssl
import sys
import threading
import time
import types
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit
from uuid import UUID

import httpx
import msal
import requests

from .ad import CheckItem


def _ensure_deprecated_module() -> None:
    # msgraph-core 1.5.2 imports the `deprecated` package in its batch module without declaring
    # it as a dependency. It only decorates a class nobody here uses, so when the package is
    # absent a no-op stand-in is enough; with the real package installed this does nothing.
    try:
        import deprecated  # noqa: F401
    except ImportError:
        shim = types.ModuleType("deprecated")
        shim.deprecated = lambda *args, **kwargs: (lambda obj: obj)  # type: ignore[attr-defined]
        sys.modules["deprecated"] = shim


_ensure_deprecated_module()

from kiota_abstractions.api_error import APIError  # noqa: E402
from kiota_abstractions.authentication import (  # noqa: E402
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_abstractions.base_request_configuration import RequestConfiguration  # noqa: E402
from kiota_abstractions.headers_collection import HeadersCollection  # noqa: E402
from kiota_abstractions.method import Method  # noqa: E402
from kiota_abstractions.request_information import RequestInformation  # noqa: E402
from kiota_http.middleware.options import RetryHandlerOption  # noqa: E402
from msgraph import GraphRequestAdapter, GraphServiceClient  # noqa: E402
from msgraph.generated.models.o_data_errors.o_data_error import ODataError  # noqa: E402
from msgraph_core import GraphClientFactory  # noqa: E402
from msgraph_core.models.page_result import PageResult  # noqa: E402
from msgraph_core.requests.batch_request_content import BatchRequestContent  # noqa: E402
from msgraph_core.requests.batch_request_item import BatchRequestItem  # noqa: E402
from msgraph_core.tasks.page_iterator import PageIterator  # noqa: E402

T = TypeVar("T")

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
_ERROR_MAP: dict[str, Any] = {"XXX": ODataError}

# --------------------------------------------------------------------------------------------
# errors


class GraphError(Exception):
    """Base of every error the connector raises. Keeps what Graph said about the failure."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        server_message: str | None = None,
        request_id: str | None = None,
        client_request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.server_message = (server_message or "").strip() or None
        self.request_id = request_id
        self.client_request_id = client_request_id
        self.retry_after = retry_after

    def __str__(self) -> str:
        parts = [self.message]
        tag = " ".join(str(p) for p in (f"HTTP {self.status}" if self.status else None, self.code) if p)
        if tag:
            parts.append(f"[{tag}]")
        if self.server_message and self.server_message != self.message:
            parts.append(self.server_message)
        if self.request_id:
            parts.append(f"(request-id {self.request_id})")
        return " ".join(parts)


class Unauthorized(GraphError):
    """401: the token was refused (expired, wrong audience, revoked)."""


class AuthenticationFailed(Unauthorized):
    """The token endpoint refused the app (wrong secret/certificate, unknown client or tenant)."""


class Forbidden(GraphError):
    """403: the app lacks the permission (application role) or the directory role for this."""


class LicenceRequired(Forbidden):
    """The tenant lacks the Entra ID P1/P2 licence this report needs."""


class NotFound(GraphError):
    """404: no such user, group or resource."""


class BadRequest(GraphError):
    """400: Graph refused the request as written (e.g. a malformed or unsupported $filter)."""


class Throttled(GraphError):
    """429 still answered after every retry; ``retry_after`` says how long Graph asked to wait."""


class ServiceUnavailable(GraphError):
    """5xx still answered after every retry."""


class Unreachable(GraphError):
    """Graph or the token endpoint could not be reached (DNS, TCP, TLS, timeout)."""


class TokenError(Exception):
    """The token endpoint refused or could not be reached (raised by :class:`TokenSource`).

    Each connector turns it into its own error type; ``unreachable`` tells the two cases apart.
    """

    def __init__(
        self, message: str, *, code: str | None = None, correlation_id: str | None = None, unreachable: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.correlation_id = correlation_id
        self.unreachable = unreachable


# --------------------------------------------------------------------------------------------
# settings and tokens


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


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
            # a PEM key may be echoed line by line; hide every long line of it as well
            for line in secret.splitlines():
                if len(line) >= 16:
                    text = text.replace(line, "***")
    return text


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
        return AccessToken(token=token, expires_at=time.time() + expires_in, claims=jwt_claims(token))

    def token(self, scope: str, *, claims: str | None = None) -> str:
        return self.acquire(scope, claims=claims).token

    def invalidate(self) -> None:
        """Forget cached tokens (the service refused one): the next call asks the authority again."""
        with self._lock:
            self._app = None


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
        # msal is synchronous (requests); keep the event loop free while it talks to the authority
        access = await asyncio.to_thread(self._source.acquire, self._scope, claims=claims)
        return access.token

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return self._validator


@dataclass(frozen=True)
class GraphSettings:
    """How to reach Microsoft Graph for one tenant."""

    credentials: AppCredentials
    graph_url: str = "https://graph.microsoft.com/v1.0"
    beta_url: str | None = None  # default: graph_url with its last segment replaced by "beta"
    scope: str = GRAPH_SCOPE
    timeout: float = 60.0
    max_retries: int = 5  # the SDK's RetryHandler (at most 10)
    retry_delay: float = 1.0  # base delay the RetryHandler adds when the answer has no Retry-After
    batch_item_retries: int = 4  # 429/503 items inside a $batch, retried by this module
    max_retry_wait: float = 120.0  # a longer Retry-After inside a batch ends in Throttled
    batch_concurrency: int = 4  # $batch requests in flight at once
    page_size: int = 999

    def __post_init__(self) -> None:
        if not self.graph_url.startswith(("https://", "http://")):
            raise ValueError("graph_url must be an absolute URL")
        if not 0 <= self.max_retries <= RetryHandlerOption.MAX_MAX_RETRIES:
            raise ValueError(f"max_retries must be between 0 and {RetryHandlerOption.MAX_MAX_RETRIES}")
        if self.batch_concurrency < 1 or self.page_size < 1:
            raise ValueError("batch_concurrency and page_size must be positive")

    @property
    def base(self) -> str:
        return self.graph_url.rstrip("/")

    @property
    def beta(self) -> str:
        if self.beta_url:
            return self.beta_url.rstrip("/")
        head, _, _ = self.base.rpartition("/")
        return f"{head}/beta"


# --------------------------------------------------------------------------------------------
# OData filter values


class ODataFilter:
    """A Graph ``$filter`` built by this module's helpers, every literal quoted.

    Combine with ``&``, ``|`` and ``~``. Callers that need a filter from directory data or from a
    form use the helpers; a raw string is accepted by the methods only for text a programmer wrote.
    """

    __slots__ = ("_text",)

    def __init__(self, text: str, token: object) -> None:
        if token is not _ODATA_TOKEN:
            raise TypeError("build filters with the helper functions (odata_eq, odata_startswith, ...)")
        self._text = text

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"ODataFilter({self._text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ODataFilter) and other._text == self._text

    def __hash__(self) -> int:
        return hash(self._text)

    def __and__(self, other: ODataFilter) -> ODataFilter:
        return _of(f"({self}) and ({_checked_filter(other)})")

    def __or__(self, other: ODataFilter) -> ODataFilter:
        return _of(f"({self}) or ({_checked_filter(other)})")

    def __invert__(self) -> ODataFilter:
        return _of(f"not ({self})")


_ODATA_TOKEN = object()
_ODATA_PROPERTY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*\Z")


def _of(text: str) -> ODataFilter:
    return ODataFilter(text, _ODATA_TOKEN)


def _checked_filter(value: object) -> ODataFilter:
    if not isinstance(value, ODataFilter):
        raise TypeError(f"expected an ODataFilter, got {type(value).__name__}")
    return value


def _odata_property(name: str) -> str:
    if not isinstance(name, str) or not _ODATA_PROPERTY.match(name):
        raise ValueError(f"{name!r} is not a Graph property name")
    return name


def odata_literal(value: str | bool | int | float | datetime | date | UUID | None) -> str:
    """A value as an OData literal: strings single-quoted with quotes doubled, the rest unquoted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("a filter value cannot contain NUL")
        return "'" + value.replace("'", "''") + "'"
    raise ValueError(f"unsupported filter value type {type(value).__name__}")


def odata_eq(prop: str, value: str | bool | int | datetime | UUID | None) -> ODataFilter:
    return _of(f"{_odata_property(prop)} eq {odata_literal(value)}")


def odata_ne(prop: str, value: str | bool | int | datetime | UUID | None) -> ODataFilter:
    return _of(f"{_odata_property(prop)} ne {odata_literal(value)}")


def odata_ge(prop: str, value: str | int | datetime | date) -> ODataFilter:
    return _of(f"{_odata_property(prop)} ge {odata_literal(value)}")


def odata_le(prop: str, value: str | int | datetime | date) -> ODataFilter:
    return _of(f"{_odata_property(prop)} le {odata_literal(value)}")


def odata_startswith(prop: str, prefix: str) -> ODataFilter:
    return _of(f"startswith({_odata_property(prop)},{odata_literal(prefix)})")


def odata_any_eq(collection: str, value: str) -> ODataFilter:
    """``collection/any(x:x eq 'value')``, e.g. ``proxyAddresses``."""
    return _of(f"{_odata_property(collection)}/any(x:x eq {odata_literal(value)})")


def odata_in(prop: str, values: Iterable[str | int | UUID]) -> ODataFilter:
    items = [odata_literal(v) for v in values]
    if not items:
        raise ValueError("odata_in needs at least one value")
    return _of(f"{_odata_property(prop)} in ({','.join(items)})")


def _filter_text(value: ODataFilter | str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, ODataFilter):
        return str(value)
    if isinstance(value, str):
        return value
    raise TypeError(f"filter must be an ODataFilter or text, not {type(value).__name__}")


def _select(fields: Iterable[str] | None) -> list[str] | None:
    if fields is None:
        return None
    out = [_odata_property(f) for f in fields]
    return out or None


# --------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class ProvisioningError:
    category: str | None
    property_causing_error: str | None
    value: str | None
    occurred: datetime | None


@dataclass(frozen=True)
class EntraUser:
    id: str
    user_principal_name: str | None = None
    display_name: str | None = None
    mail: str | None = None
    mail_nickname: str | None = None
    proxy_addresses: tuple[str, ...] = ()
    account_enabled: bool | None = None
    user_type: str | None = None
    on_premises_sync_enabled: bool | None = None
    on_premises_immutable_id: str | None = None
    on_premises_distinguished_name: str | None = None
    on_premises_sam_account_name: str | None = None
    on_premises_domain_name: str | None = None
    on_premises_last_sync: datetime | None = None
    certificate_user_ids: tuple[str, ...] = ()
    provisioning_errors: tuple[ProvisioningError, ...] = ()
    created: datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # properties outside the model, e.g. extensions


@dataclass(frozen=True)
class EntraGroup:
    id: str
    display_name: str | None = None
    mail: str | None = None
    mail_nickname: str | None = None
    mail_enabled: bool | None = None
    security_enabled: bool | None = None
    group_types: tuple[str, ...] = ()
    proxy_addresses: tuple[str, ...] = ()
    description: str | None = None
    on_premises_sync_enabled: bool | None = None
    on_premises_security_identifier: str | None = None
    on_premises_sam_account_name: str | None = None
    on_premises_domain_name: str | None = None
    on_premises_last_sync: datetime | None = None
    provisioning_errors: tuple[ProvisioningError, ...] = ()
    created: datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_microsoft_365_group(self) -> bool:
        return "Unified" in self.group_types


@dataclass(frozen=True)
class GroupMember:
    id: str
    kind: str  # user, group, orgContact, device, servicePrincipal, ...
    display_name: str | None = None
    user_principal_name: str | None = None
    mail: str | None = None


@dataclass(frozen=True)
class RegistrationDetails:
    """One row of ``reports/authenticationMethods/userRegistrationDetails``."""

    id: str
    user_principal_name: str | None
    user_display_name: str | None
    user_type: str | None
    is_admin: bool | None
    is_mfa_capable: bool | None
    is_mfa_registered: bool | None
    is_passwordless_capable: bool | None
    is_sspr_capable: bool | None
    is_sspr_enabled: bool | None
    is_sspr_registered: bool | None
    is_system_preferred_method_enabled: bool | None
    system_preferred_methods: tuple[str, ...]
    methods_registered: tuple[str, ...]
    user_preferred_method_for_secondary_authentication: str | None
    last_updated: datetime | None


@dataclass(frozen=True)
class AuthMethod:
    """One registered authentication method of a user."""

    id: str
    method: str  # short type: phone, microsoftAuthenticator, fido2, password, ...
    odata_type: str | None
    display_name: str | None
    created: datetime | None
    details: Mapping[str, Any] = field(default_factory=dict)  # the remaining properties, as Graph names them


@dataclass(frozen=True)
class UserAuthMethods:
    """The methods of one user from a batched read; ``error`` set instead when that item failed."""

    user_id: str
    methods: tuple[AuthMethod, ...] = ()
    error: GraphError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class AuditTarget:
    id: str | None
    display_name: str | None
    type: str | None
    user_principal_name: str | None
    modified_properties: tuple[tuple[str | None, str | None, str | None], ...] = ()  # (name, old, new)


@dataclass(frozen=True)
class DirectoryAudit:
    id: str
    activity: str | None
    activity_time: datetime | None
    category: str | None
    result: str | None
    result_reason: str | None
    operation_type: str | None
    logged_by_service: str | None
    correlation_id: str | None
    initiated_by_user_id: str | None
    initiated_by_upn: str | None
    initiated_by_app: str | None
    targets: tuple[AuditTarget, ...]
    additional_details: Mapping[str, str | None]


@dataclass(frozen=True)
class GroupWriteback:
    """Group writeback settings of one cloud group (beta ``writebackConfiguration``)."""

    group_id: str
    display_name: str | None
    group_types: tuple[str, ...]
    is_enabled: bool | None  # as Graph returns it; null means "not set"
    on_premises_group_type: str | None

    @property
    def writeback_enabled(self) -> bool:
        """Whether Entra Connect writes the group back: an unset value counts as enabled."""
        return self.is_enabled is not False


@dataclass(frozen=True)
class CloudCheckReport:
    """Connectivity check of a cloud connector (Graph, Exchange, Entra Connect)."""

    ok: bool
    service: str
    endpoint: str
    items: tuple[CheckItem, ...]
    details: Mapping[str, Any] = field(default_factory=dict)

    def failures(self) -> list[CheckItem]:
        return [item for item in self.items if not item.ok]


# --------------------------------------------------------------------------------------------
# converting Graph's JSON
#
# Results are read from Graph's JSON, not from the SDK's models: the generated ``Entity`` model
# runs some 2,400 import statements for every object it deserializes (about 5 ms per user here),
# which turns 10,000 users into 40 s; reading the same pages as JSON takes a fraction of a second.


def _texts(doc: Mapping[str, Any], key: str) -> tuple[str, ...]:
    return tuple(str(v) for v in doc.get(key) or () if v is not None)


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime) or value is None:
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _provisioning_errors(values: Iterable[Any] | None) -> tuple[ProvisioningError, ...]:
    return tuple(
        ProvisioningError(e.get("category"), e.get("propertyCausingError"), e.get("value"),
                          _parse_time(e.get("occurredDateTime")))
        for e in values or () if isinstance(e, dict)
    )


_USER_FIELDS = frozenset({
    "id", "userPrincipalName", "displayName", "mail", "mailNickname", "proxyAddresses", "accountEnabled", "userType",
    "onPremisesSyncEnabled", "onPremisesImmutableId", "onPremisesDistinguishedName", "onPremisesSamAccountName",
    "onPremisesDomainName", "onPremisesLastSyncDateTime", "authorizationInfo", "onPremisesProvisioningErrors",
    "createdDateTime",
})
_GROUP_FIELDS = frozenset({
    "id", "displayName", "mail", "mailNickname", "mailEnabled", "securityEnabled", "groupTypes", "proxyAddresses",
    "description", "onPremisesSyncEnabled", "onPremisesSecurityIdentifier", "onPremisesSamAccountName",
    "onPremisesDomainName", "onPremisesLastSyncDateTime", "onPremisesProvisioningErrors", "createdDateTime",
})


def _extra(doc: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in known and not k.startswith("@odata.")}


def _user(doc: Mapping[str, Any]) -> EntraUser:
    info = doc.get("authorizationInfo") or {}
    return EntraUser(
        id=str(doc.get("id")),
        user_principal_name=doc.get("userPrincipalName"),
        display_name=doc.get("displayName"),
        mail=doc.get("mail"),
        mail_nickname=doc.get("mailNickname"),
        proxy_addresses=_texts(doc, "proxyAddresses"),
        account_enabled=doc.get("accountEnabled"),
        user_type=doc.get("userType"),
        on_premises_sync_enabled=doc.get("onPremisesSyncEnabled"),
        on_premises_immutable_id=doc.get("onPremisesImmutableId"),
        on_premises_distinguished_name=doc.get("onPremisesDistinguishedName"),
        on_premises_sam_account_name=doc.get("onPremisesSamAccountName"),
        on_premises_domain_name=doc.get("onPremisesDomainName"),
        on_premises_last_sync=_parse_time(doc.get("onPremisesLastSyncDateTime")),
        certificate_user_ids=_texts(info, "certificateUserIds") if isinstance(info, dict) else (),
        provisioning_errors=_provisioning_errors(doc.get("onPremisesProvisioningErrors")),
        created=_parse_time(doc.get("createdDateTime")),
        extra=_extra(doc, _USER_FIELDS),
    )


def _group(doc: Mapping[str, Any]) -> EntraGroup:
    return EntraGroup(
        id=str(doc.get("id")),
        display_name=doc.get("displayName"),
        mail=doc.get("mail"),
        mail_nickname=doc.get("mailNickname"),
        mail_enabled=doc.get("mailEnabled"),
        security_enabled=doc.get("securityEnabled"),
        group_types=_texts(doc, "groupTypes"),
        proxy_addresses=_texts(doc, "proxyAddresses"),
        description=doc.get("description"),
        on_premises_sync_enabled=doc.get("onPremisesSyncEnabled"),
        on_premises_security_identifier=doc.get("onPremisesSecurityIdentifier"),
        on_premises_sam_account_name=doc.get("onPremisesSamAccountName"),
        on_premises_domain_name=doc.get("onPremisesDomainName"),
        on_premises_last_sync=_parse_time(doc.get("onPremisesLastSyncDateTime")),
        provisioning_errors=_provisioning_errors(doc.get("onPremisesProvisioningErrors")),
        created=_parse_time(doc.get("createdDateTime")),
        extra=_extra(doc, _GROUP_FIELDS),
    )


def _member(doc: Mapping[str, Any]) -> GroupMember:
    odata_type = str(doc.get("@odata.type") or "")
    return GroupMember(
        id=str(doc.get("id")),
        kind=odata_type.rsplit(".", 1)[-1] if odata_type else "directoryObject",
        display_name=doc.get("displayName"),
        user_principal_name=doc.get("userPrincipalName"),
        mail=doc.get("mail"),
    )


def _registration(doc: Mapping[str, Any]) -> RegistrationDetails:
    return RegistrationDetails(
        id=str(doc.get("id")),
        user_principal_name=doc.get("userPrincipalName"),
        user_display_name=doc.get("userDisplayName"),
        user_type=doc.get("userType"),
        is_admin=doc.get("isAdmin"),
        is_mfa_capable=doc.get("isMfaCapable"),
        is_mfa_registered=doc.get("isMfaRegistered"),
        is_passwordless_capable=doc.get("isPasswordlessCapable"),
        is_sspr_capable=doc.get("isSsprCapable"),
        is_sspr_enabled=doc.get("isSsprEnabled"),
        is_sspr_registered=doc.get("isSsprRegistered"),
        is_system_preferred_method_enabled=doc.get("isSystemPreferredAuthenticationMethodEnabled"),
        system_preferred_methods=_texts(doc, "systemPreferredAuthenticationMethods"),
        methods_registered=_texts(doc, "methodsRegistered"),
        user_preferred_method_for_secondary_authentication=doc.get("userPreferredMethodForSecondaryAuthentication"),
        last_updated=_parse_time(doc.get("lastUpdatedDateTime")),
    )


def _audit(doc: Mapping[str, Any]) -> DirectoryAudit:
    initiator = doc.get("initiatedBy") or {}
    user = initiator.get("user") or {}
    app = initiator.get("app") or {}
    targets = tuple(
        AuditTarget(
            id=t.get("id"), display_name=t.get("displayName"), type=t.get("type"),
            user_principal_name=t.get("userPrincipalName"),
            modified_properties=tuple((p.get("displayName"), p.get("oldValue"), p.get("newValue"))
                                      for p in t.get("modifiedProperties") or () if isinstance(p, dict)),
        )
        for t in doc.get("targetResources") or () if isinstance(t, dict)
    )
    return DirectoryAudit(
        id=str(doc.get("id")),
        activity=doc.get("activityDisplayName"),
        activity_time=_parse_time(doc.get("activityDateTime")),
        category=doc.get("category"),
        result=doc.get("result"),
        result_reason=doc.get("resultReason"),
        operation_type=doc.get("operationType"),
        logged_by_service=doc.get("loggedByService"),
        correlation_id=doc.get("correlationId"),
        initiated_by_user_id=user.get("id"),
        initiated_by_upn=user.get("userPrincipalName"),
        initiated_by_app=app.get("displayName") or app.get("appId"),
        targets=targets,
        additional_details={kv.get("key"): kv.get("value") for kv in doc.get("additionalDetails") or ()
                            if isinstance(kv, dict) and kv.get("key")},
    )


def _auth_method(doc: Mapping[str, Any]) -> AuthMethod:
    odata_type = doc.get("@odata.type")
    method = (odata_type or "").rsplit(".", 1)[-1]
    method = method[: -len("AuthenticationMethod")] if method.endswith("AuthenticationMethod") else method
    details = {k: v for k, v in doc.items() if k not in ("id", "@odata.type", "displayName", "createdDateTime")}
    return AuthMethod(
        id=str(doc.get("id")),
        method=method or "unknown",
        odata_type=odata_type,
        display_name=doc.get("displayName"),
        created=_parse_time(doc.get("createdDateTime")),
        details=details,
    )


DEFAULT_USER_SELECT: tuple[str, ...] = (
    "id", "userPrincipalName", "displayName", "mail", "mailNickname", "proxyAddresses", "accountEnabled", "userType",
    "onPremisesSyncEnabled", "onPremisesImmutableId", "onPremisesDistinguishedName", "onPremisesSamAccountName",
    "onPremisesDomainName", "onPremisesLastSyncDateTime", "createdDateTime",
)
DEFAULT_GROUP_SELECT: tuple[str, ...] = (
    "id", "displayName", "mail", "mailNickname", "mailEnabled", "securityEnabled", "groupTypes", "proxyAddresses",
    "description", "onPremisesSyncEnabled", "onPremisesSecurityIdentifier", "onPremisesSamAccountName",
    "onPremisesDomainName", "onPremisesLastSyncDateTime", "createdDateTime",
)
DEFAULT_MEMBER_SELECT: tuple[str, ...] = ("id", "displayName", "userPrincipalName", "mail")


# --------------------------------------------------------------------------------------------
# error mapping


def _retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    try:
        raw = headers.get("retry-after") or headers.get("Retry-After")
    except AttributeError:
        return None
    if raw is None:
        return None
    text = str(raw).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - datetime.now(moment.tzinfo or UTC)).total_seconds())


def _header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    try:
        value = headers.get(name) or headers.get(name.lower())
    except AttributeError:
        return None
    return str(value) if value else None


_LICENCE_CODES = frozenset({"authentication_requestfromnonpremiumtenantorb2ctenant"})


def _is_licence_error(code: str | None, message: str | None) -> bool:
    text = (message or "").lower()
    return (code or "").lower() in _LICENCE_CODES or ("premium" in text and ("licen" in text or "sku" in text))


def error_for_status(
    what: str,
    status: int | None,
    *,
    code: str | None = None,
    message: str | None = None,
    request_id: str | None = None,
    client_request_id: str | None = None,
    retry_after: float | None = None,
) -> GraphError:
    """The :class:`GraphError` subclass for an HTTP status and Graph error code."""
    cls: type[GraphError] = GraphError
    if status == 400:
        cls = BadRequest
    elif status == 401:
        cls = Unauthorized
    elif status == 403:
        cls = LicenceRequired if _is_licence_error(code, message) else Forbidden
    elif status == 404:
        cls = NotFound
    elif status == 429:
        cls = Throttled
    elif status is not None and status >= 500:
        cls = ServiceUnavailable
    if cls is LicenceRequired:
        what = f"{what}: the tenant needs a Microsoft Entra ID P1 or P2 licence for this report"
    elif cls is Throttled:
        what = f"{what}: still throttled after the retries" + (
            f" (Graph asks to wait {retry_after:.0f}s)" if retry_after else "")
    return cls(what, status=status, code=code, server_message=message, request_id=request_id,
               client_request_id=client_request_id, retry_after=retry_after)


def _map_exception(exc: BaseException, what: str, secrets: Sequence[str]) -> GraphError:
    if isinstance(exc, GraphError):
        return exc
    if isinstance(exc, TokenError):
        if exc.unreachable:
            return Unreachable(f"{what}: {exc.message}")
        return AuthenticationFailed(f"{what}: {exc.message}", status=401, code=exc.code,
                                    request_id=exc.correlation_id)
    if isinstance(exc, ODataError):
        main = exc.error
        inner = getattr(main, "inner_error", None)
        headers = exc.response_headers
        return error_for_status(
            what, exc.response_status_code,
            code=getattr(main, "code", None),
            message=getattr(main, "message", None),
            request_id=getattr(inner, "request_id", None) or _header(headers, "request-id"),
            client_request_id=getattr(inner, "client_request_id", None) or _header(headers, "client-request-id"),
            retry_after=_retry_after(headers),
        )
    if isinstance(exc, APIError):
        headers = exc.response_headers
        return error_for_status(what, exc.response_status_code, message=_scrub(exc.message or "", secrets),
                                request_id=_header(headers, "request-id"), retry_after=_retry_after(headers))
    if isinstance(exc, (httpx.TimeoutException, TimeoutError)):
        return Unreachable(f"{what}: timed out ({type(exc).__name__})")
    if isinstance(exc, (httpx.TransportError, ssl.SSLError, OSError)):
        detail = _scrub(str(exc) or type(exc).__name__, secrets)
        if "certificate" in detail.lower() or isinstance(exc, ssl.SSLError):
            return Unreachable(f"{what}: TLS failed: {detail}")
        return Unreachable(f"{what}: {detail}")
    return GraphError(f"{what}: {type(exc).__name__}: {_scrub(str(exc), secrets)}")


# --------------------------------------------------------------------------------------------
# paging


async def _send_json(adapter: Any, info: RequestInformation) -> Any:
    """Send through the request adapter (auth, retry, redirects) and read the answer as plain JSON."""
    if not info.headers.contains("Accept"):
        info.headers.try_add("Accept", "application/json")
    raw = await adapter.send_primitive_async(info, "bytes", _ERROR_MAP)
    return json.loads(raw) if raw else {}


def _page(doc: Any) -> PageResult:
    if not isinstance(doc, dict):
        raise GraphError("expected a JSON object with a 'value' list")
    values = doc.get("value")
    return PageResult(odata_next_link=doc.get("@odata.nextLink"), value=list(values) if values else [])


class _JsonPageAdapter:
    """What PageIterator calls to fetch a page: the real adapter's request, the page read as JSON."""

    def __init__(self, adapter: Any) -> None:
        self._adapter = adapter

    async def send_async(self, request_info: RequestInformation, parsable_factory: Any, error_map: Any) -> PageResult:
        return _page(await _send_json(self._adapter, request_info))


class _PageIterator(PageIterator):
    """The SDK's PageIterator, each page request with headers of its own.

    The SDK hands one shared HeadersCollection to every page request, so the Authorization header
    added for the first nextLink would travel to every later one, whatever its host, bypassing the
    token provider's allowed hosts. A fresh copy per page keeps that decision per request.
    """

    async def fetch_next_page(self) -> Any:
        shared = self.headers
        fresh = HeadersCollection()
        for name, values in shared.get_all().items():
            fresh.add(name, list(values))
        self.headers = fresh
        try:
            return await super().fetch_next_page()
        finally:
            self.headers = shared


# --------------------------------------------------------------------------------------------
# the private event loop


class _LoopThread:
    """One asyncio loop in a daemon thread; synchronous callers hand it coroutines."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.generation = 0  # bumped when the loop is replaced; clients bound to the old one are stale

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is not None and self._pid != os.getpid():
                # A fork (RQ's work horse) copies the loop object but not the thread that runs it.
                self._loop = self._thread = None
                self.generation += 1
            if self._loop is None:
                self._pid = os.getpid()
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=self._serve, args=(loop,), name=self._name, daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        loop.run_forever()

    def run(self, coro: Awaitable[T]) -> T:
        if self._thread is not None and threading.current_thread() is self._thread:
            raise RuntimeError("the connector's own loop cannot wait for itself")
        future = asyncio.run_coroutine_threadsafe(coro, self._ensure())  # type: ignore[arg-type]
        try:
            return future.result()
        except BaseException:
            if not future.done():
                future.cancel()  # e.g. KeyboardInterrupt or a job being stopped
            raise

    @property
    def started(self) -> bool:
        return self._loop is not None

    def close(self, final: Callable[[], Awaitable[Any]] | None = None) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        if final is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(final(), loop).result(timeout=10)  # type: ignore[arg-type]
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        with contextlib.suppress(Exception):
            loop.close()


# --------------------------------------------------------------------------------------------
# counting the calls made


@dataclass
class GraphCallStats:
    """HTTP requests this connector sent to Graph (retries and ``$batch`` posts each count once),
    the answers that were 429, and the items carried inside ``$batch`` posts."""

    requests: int = 0
    throttled: int = 0
    batch_items: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"requests": self.requests, "throttled": self.throttled, "batch_items": self.batch_items}


class _CountingTransport(httpx.AsyncBaseTransport):
    """Below the SDK's middleware, so every attempt the retry handler makes is counted."""

    def __init__(self, inner: httpx.AsyncBaseTransport, stats: GraphCallStats) -> None:
        self._inner = inner
        self._stats = stats

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._stats.requests += 1
        response = await self._inner.handle_async_request(request)
        if response.status_code == 429:
            self._stats.throttled += 1
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


# --------------------------------------------------------------------------------------------
# the connector


class EntraGraph:
    """Microsoft Graph for one tenant, as a synchronous API. See the module docstring.

    Use as a context manager (or call :meth:`close`) so that its loop thread and connections end.
    Safe to share between threads: all calls run on the instance's one event loop.

    ``token_source`` and ``transport`` replace msal and the network (tests, or a token the caller
    already holds); production code passes only settings.
    """

    def __init__(
        self,
        settings: GraphSettings,
        *,
        token_source: TokenSource | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self._tokens = token_source or TokenSource(settings.credentials)
        self._transport = transport
        self._runner = _LoopThread(f"EntraGraph-{settings.credentials.tenant_id[:8]}")
        self._client: GraphServiceClient | None = None
        self._client_generation = 0
        self._http: httpx.AsyncClient | None = None
        self._closed = False
        self.stats = GraphCallStats()  # what this instance sent, for jobs that report their cost

    # ---- lifecycle

    def __enter__(self) -> EntraGraph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        http = self._http
        self._runner.close((lambda: http.aclose()) if http is not None else None)
        self._client = self._http = None

    def _graph(self) -> GraphServiceClient:
        # built on the loop thread, so httpx binds its pool to the loop that will use it
        if self._client is not None and self._client_generation != self._runner.generation:
            self._client = self._http = None  # made for a loop that no longer runs (forked process)
        if self._client is None:
            self._client_generation = self._runner.generation
            s = self.settings
            verify: ssl.SSLContext | bool = True
            if s.credentials.ca_file:
                verify = ssl.create_default_context(cafile=s.credentials.ca_file)
            client_args: dict[str, Any] = {
                "base_url": s.base,
                "timeout": httpx.Timeout(s.timeout, connect=min(s.timeout, 15.0)),
                "verify": verify,
                "trust_env": False,  # no environment CA bundle or proxy overriding the settings
                "follow_redirects": False,  # the SDK's redirect handler decides
            }
            if s.credentials.proxy:
                client_args["proxy"] = s.credentials.proxy
            if self._transport is not None:
                client_args["transport"] = self._transport
            http = httpx.AsyncClient(**client_args)
            http._transport = _CountingTransport(http._transport, self.stats)  # the SDK's factory wraps it alike
            options = {
                RetryHandlerOption.get_key(): RetryHandlerOption(delay=s.retry_delay, max_retries=s.max_retries),
            }
            http = GraphClientFactory.create_with_default_middleware(client=http, options=options)
            hosts = sorted({urlsplit(s.base).hostname or "", urlsplit(s.beta).hostname or ""} - {""})
            provider = _MsalAccessTokenProvider(self._tokens, s.scope, hosts)
            adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(provider), client=http)
            adapter.base_url = s.base
            self._http = http
            self._client = GraphServiceClient(request_adapter=adapter)
        return self._client

    def _run(self, what: str, factory: Callable[[GraphServiceClient], Awaitable[T]]) -> T:
        if self._closed:
            raise GraphError(f"{what}: the connector is closed")
        secrets = self.settings.credentials.secrets

        async def call() -> T:
            try:
                return await factory(self._graph())
            except Exception as exc:  # noqa: BLE001 - every failure leaves as a GraphError
                mapped = _map_exception(exc, what, secrets)
                raise mapped from (exc if mapped is not exc else None)

        return self._runner.run(call())

    def _get(self, what: str, request: Callable[[GraphServiceClient], RequestInformation]) -> dict[str, Any]:
        """One object, the request built by the SDK's builders, read as JSON."""

        async def fetch(client: GraphServiceClient) -> dict[str, Any]:
            doc = await _send_json(client.request_adapter, request(client))
            if not isinstance(doc, dict) or "id" not in doc:
                raise GraphError(f"{what}: the answer holds no object")
            return doc

        return self._run(what, fetch)

    # ---- paging

    def _pages(
        self,
        what: str,
        first: Callable[[GraphServiceClient], RequestInformation],
        convert: Callable[[Any], T],
        headers: Mapping[str, str] | None = None,
    ) -> Iterator[T]:
        """Fetch the first page now (so errors surface at the call) and return an iterator over all.

        ``first`` builds the request with the SDK's request builders; one page is held at a time;
        following pages come through the SDK's PageIterator.
        """

        async def fetch(client: GraphServiceClient) -> PageResult:
            return _page(await _send_json(client.request_adapter, first(client)))

        page = self._run(what, fetch)
        iterator = self._runner.run(self._make_iterator(page, headers))
        return self._iterate(what, iterator, convert)

    async def _make_iterator(self, page: PageResult, headers: Mapping[str, str] | None) -> _PageIterator:
        adapter = _JsonPageAdapter(self._graph().request_adapter)
        iterator = _PageIterator(page, adapter, error_mapping=_ERROR_MAP)  # type: ignore[arg-type]
        for name, value in (headers or {}).items():
            # PageIterator.set_headers passes the dict as keywords, which HeadersCollection refuses
            iterator.headers.add(name, value)
        return iterator

    def _iterate(self, what: str, iterator: _PageIterator, convert: Callable[[Any], T]) -> Iterator[T]:
        while True:
            for item in iterator.current_page.value or ():
                yield convert(item)
            next_page = self._run(what, lambda _client: iterator.next())
            if next_page is None:
                return
            iterator.current_page = next_page

    @staticmethod
    def _config(
        query: Any | None = None, headers: Mapping[str, str] | None = None
    ) -> RequestConfiguration:
        config: RequestConfiguration = RequestConfiguration(query_parameters=query)
        if headers:
            config.headers.add_all(dict(headers))
        return config

    # ---- users

    def iter_users(
        self,
        *,
        select: Iterable[str] | None = DEFAULT_USER_SELECT,
        filter: ODataFilter | str | None = None,  # noqa: A002 - Graph's term
        advanced: bool = False,
        page_size: int | None = None,
    ) -> Iterator[EntraUser]:
        """Every user (matching ``filter``), one page in memory at a time.

        ``advanced=True`` sends ``ConsistencyLevel: eventual`` and ``$count=true``, which Graph
        requires for advanced queries (``endsWith``, ``ne``, ``not``, filters on some properties).
        """
        from msgraph.generated.users.users_request_builder import UsersRequestBuilder

        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            select=_select(select), filter=_filter_text(filter), top=page_size or self.settings.page_size,
            count=True if advanced else None,
        )
        headers = {"ConsistencyLevel": "eventual"} if advanced else None
        config = self._config(query, headers)
        return self._pages("list users", lambda c: c.users.to_get_request_information(config), _user, headers)

    def get_user(self, user_id_or_upn: str, *, select: Iterable[str] | None = DEFAULT_USER_SELECT) -> EntraUser:
        from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

        key = _path_key(user_id_or_upn)
        config = self._config(UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=_select(select)))
        return _user(self._get(f"read user {user_id_or_upn}",
                               lambda c: c.users.by_user_id(key).to_get_request_information(config)))

    def count_users(self, *, filter: ODataFilter | str | None = None) -> int:  # noqa: A002
        """The number of users (``/users/$count``, which needs ``ConsistencyLevel: eventual``)."""
        from msgraph.generated.users.count.count_request_builder import CountRequestBuilder

        query = CountRequestBuilder.CountRequestBuilderGetQueryParameters(filter=_filter_text(filter))
        config = self._config(query, {"ConsistencyLevel": "eventual"})
        value = self._run("count users", lambda c: c.users.count.get(request_configuration=config))
        return int(value or 0)

    # ---- groups

    def iter_groups(
        self,
        *,
        select: Iterable[str] | None = DEFAULT_GROUP_SELECT,
        filter: ODataFilter | str | None = None,  # noqa: A002
        advanced: bool = False,
        page_size: int | None = None,
    ) -> Iterator[EntraGroup]:
        from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder

        query = GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(
            select=_select(select), filter=_filter_text(filter), top=page_size or self.settings.page_size,
            count=True if advanced else None,
        )
        headers = {"ConsistencyLevel": "eventual"} if advanced else None
        config = self._config(query, headers)
        return self._pages("list groups", lambda c: c.groups.to_get_request_information(config), _group, headers)

    def get_group(self, group_id: str, *, select: Iterable[str] | None = DEFAULT_GROUP_SELECT) -> EntraGroup:
        from msgraph.generated.groups.item.group_item_request_builder import GroupItemRequestBuilder

        key = _path_key(group_id)
        config = self._config(GroupItemRequestBuilder.GroupItemRequestBuilderGetQueryParameters(select=_select(select)))
        return _group(self._get(f"read group {group_id}",
                                lambda c: c.groups.by_group_id(key).to_get_request_information(config)))

    def iter_group_members(
        self,
        group_id: str,
        *,
        transitive: bool = False,
        select: Iterable[str] | None = DEFAULT_MEMBER_SELECT,
        page_size: int | None = None,
    ) -> Iterator[GroupMember]:
        """Direct members of a group, or every member through nested groups (``transitive``)."""
        from msgraph.generated.groups.item.members.members_request_builder import MembersRequestBuilder
        from msgraph.generated.groups.item.transitive_members.transitive_members_request_builder import (
            TransitiveMembersRequestBuilder,
        )

        key = _path_key(group_id)
        if transitive:
            query: Any = TransitiveMembersRequestBuilder.TransitiveMembersRequestBuilderGetQueryParameters(
                select=_select(select), top=page_size or self.settings.page_size)
        else:
            query = MembersRequestBuilder.MembersRequestBuilderGetQueryParameters(
                select=_select(select), top=page_size or self.settings.page_size)
        config = self._config(query)

        def first(c: GraphServiceClient) -> RequestInformation:
            item = c.groups.by_group_id(key)
            return (item.transitive_members if transitive else item.members).to_get_request_information(config)

        kind = "transitive members" if transitive else "members"
        return self._pages(f"list {kind} of group {group_id}", first, _member)

    def iter_group_transitive_members(
        self, group_id: str, *, select: Iterable[str] | None = DEFAULT_MEMBER_SELECT
    ) -> Iterator[GroupMember]:
        return self.iter_group_members(group_id, transitive=True, select=select)

    def delete_group(self, group_id: str) -> None:
        """Delete a cloud group (it stays restorable in deleted items for 30 days)."""
        key = _path_key(group_id)
        self._run(f"delete group {group_id}", lambda c: c.groups.by_group_id(key).delete())

    def group_writeback(self, group_id: str) -> GroupWriteback:
        """The group's writeback settings, read from the beta endpoint (v1.0 does not have them)."""
        key = _path_key(group_id)
        url = f"{self.settings.beta}/groups/{key}?$select=id,displayName,groupTypes,writebackConfiguration"
        doc = self._get_json(f"read writeback settings of group {group_id}", url)
        config = doc.get("writebackConfiguration") or {}
        return GroupWriteback(
            group_id=str(doc.get("id") or group_id),
            display_name=doc.get("displayName"),
            group_types=tuple(doc.get("groupTypes") or ()),
            is_enabled=config.get("isEnabled"),
            on_premises_group_type=config.get("onPremisesGroupType"),
        )

    # ---- reports and audit log

    def user_registration_details(
        self,
        *,
        filter: ODataFilter | str | None = None,  # noqa: A002
        select: Iterable[str] | None = None,
        top: int | None = None,
    ) -> Iterator[RegistrationDetails]:
        """The authentication-methods registration report (Entra ID P1/P2), one row per user.

        ``top`` sets the page size (fewer calls for a large tenant). Raises :class:`LicenceRequired`
        at the call when the tenant lacks the licence.
        """
        from msgraph.generated.reports.authentication_methods.user_registration_details.user_registration_details_request_builder import (  # noqa: E501
            UserRegistrationDetailsRequestBuilder,
        )

        query = UserRegistrationDetailsRequestBuilder.UserRegistrationDetailsRequestBuilderGetQueryParameters(
            filter=_filter_text(filter), select=_select(select), top=top)
        config = self._config(query)
        return self._pages(
            "read the userRegistrationDetails report",
            lambda c: c.reports.authentication_methods.user_registration_details.to_get_request_information(config),
            _registration,
        )

    def directory_audits(
        self,
        *,
        filter: ODataFilter | str | None = None,  # noqa: A002
        top: int | None = None,
        orderby: str | None = None,
    ) -> Iterator[DirectoryAudit]:
        """Directory audit events (``auditLogs/directoryAudits``), newest first unless ``orderby``."""
        from msgraph.generated.audit_logs.directory_audits.directory_audits_request_builder import (
            DirectoryAuditsRequestBuilder,
        )

        if orderby is not None and not re.fullmatch(r"[A-Za-z/]+( (asc|desc))?", orderby):
            raise ValueError(f"orderby {orderby!r} is not 'property [asc|desc]'")
        query = DirectoryAuditsRequestBuilder.DirectoryAuditsRequestBuilderGetQueryParameters(
            filter=_filter_text(filter), top=top, orderby=[orderby] if orderby else None)
        config = self._config(query)
        return self._pages("read the directory audit log",
                           lambda c: c.audit_logs.directory_audits.to_get_request_information(config), _audit)

    # ---- authentication methods

    def user_auth_methods(self, user_id: str) -> tuple[AuthMethod, ...]:
        """The registered methods of one user (Microsoft advises against this for a whole tenant)."""
        key = _path_key(user_id)
        return tuple(self._pages(
            f"read authentication methods of {user_id}",
            lambda c: c.users.by_user_id(key).authentication.methods.to_get_request_information(),
            _auth_method,
        ))

    def user_auth_methods_many(self, user_ids: Iterable[str]) -> dict[str, UserAuthMethods]:
        """Methods of many users through ``$batch``; one failing user does not fail the others."""
        return {item.user_id: item for item in self.iter_user_auth_methods(user_ids)}

    def iter_user_auth_methods(self, user_ids: Iterable[str]) -> Iterator[UserAuthMethods]:
        """Methods of many users, 20 per ``$batch`` and ``batch_concurrency`` batches at a time.

        Yields one :class:`UserAuthMethods` per user id, in input order, as each group of batches
        completes; 429/503 items are retried after their ``Retry-After``.
        """
        ids = list(dict.fromkeys(user_ids))
        group = BatchRequestContent.MAX_REQUESTS * self.settings.batch_concurrency
        for start in range(0, len(ids), group):
            chunk = ids[start:start + group]
            results = self._run(f"read authentication methods of {len(chunk)} users",
                                lambda c, chunk=chunk: self._auth_methods_batched(c, chunk))
            for user_id in chunk:
                yield results[user_id]

    async def _auth_methods_batched(
        self, client: GraphServiceClient, user_ids: list[str]
    ) -> dict[str, UserAuthMethods]:
        results: dict[str, UserAuthMethods] = {}
        pending = list(user_ids)
        size = BatchRequestContent.MAX_REQUESTS
        attempt = 0
        while pending:
            chunks = [pending[i:i + size] for i in range(0, len(pending), size)]
            answers = await asyncio.gather(*(self._post_batch(client, chunk) for chunk in chunks))
            retry: list[str] = []
            wait = 0.0
            for answer in answers:
                for user_id, (status, headers, body) in answer.items():
                    if status in (429, 503, 504) and attempt < self.settings.batch_item_retries:
                        after = _retry_after(headers)
                        if after is None or after <= self.settings.max_retry_wait:
                            retry.append(user_id)
                            wait = max(wait, after if after is not None else self.settings.retry_delay * 2 ** attempt)
                            continue
                    results[user_id] = await self._auth_item(client, user_id, status, headers, body)
            pending = retry
            if pending:
                attempt += 1
                await asyncio.sleep(wait)
        return results

    async def _post_batch(
        self, client: GraphServiceClient, user_ids: list[str]
    ) -> dict[str, tuple[int, Mapping[str, Any], Any]]:
        content = BatchRequestContent()
        by_request: dict[str, str] = {}
        base = self.settings.base
        for number, user_id in enumerate(user_ids, start=1):
            info = client.users.by_user_id(_path_key(user_id)).authentication.methods.to_get_request_information()
            info.path_parameters["baseurl"] = base
            item = BatchRequestItem(info, id=str(number))
            # Graph wants URLs relative to the version root; the SDK's own stripping misses it
            item.url = _relative_url(info.url, base)
            content.add_request(str(number), item)
            by_request[str(number)] = user_id
        self.stats.batch_items += len(by_request)
        request = RequestInformation()
        request.http_method = Method.POST
        request.url = f"{base}/$batch"
        request.headers = HeadersCollection()
        request.headers.try_add("Accept", "application/json")
        request.set_content_from_parsable(client.request_adapter, "application/json", content)
        # The SDK's BatchResponseContent drops JSON object bodies (kiota-python #737): read the raw
        # answer through the same adapter (auth, retry middleware) and parse it here.
        raw = await client.request_adapter.send_primitive_async(request, "bytes", _ERROR_MAP)
        answer = json.loads(raw or b"{}")
        out: dict[str, tuple[int, Mapping[str, Any], Any]] = {}
        for response in answer.get("responses") or ():
            user_id = by_request.get(str(response.get("id")))
            if user_id is not None:
                out[user_id] = (int(response.get("status") or 0), response.get("headers") or {}, response.get("body"))
        for request_id, user_id in by_request.items():
            if user_id not in out:
                out[user_id] = (0, {}, {"error": {"code": "missingResponse",
                                                   "message": f"the batch returned no response for item {request_id}"}})
        return out

    async def _auth_item(
        self, client: GraphServiceClient, user_id: str, status: int, headers: Mapping[str, Any], body: Any
    ) -> UserAuthMethods:
        what = f"read authentication methods of {user_id}"
        if isinstance(body, str):
            with contextlib.suppress(ValueError):
                body = json.loads(base64.b64decode(body))
        if 200 <= status < 300 and isinstance(body, dict):
            methods = [_auth_method(doc) for doc in body.get("value") or ()]
            next_link = body.get("@odata.nextLink")
            while next_link:
                page = await self._get_json_async(client, what, next_link)
                methods.extend(_auth_method(doc) for doc in page.get("value") or ())
                next_link = page.get("@odata.nextLink")
            return UserAuthMethods(user_id=user_id, methods=tuple(methods))
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        inner = error.get("innerError") or {}
        return UserAuthMethods(user_id=user_id, error=error_for_status(
            what, status or None, code=error.get("code"), message=error.get("message"),
            request_id=inner.get("request-id") or _header(headers, "request-id"), retry_after=_retry_after(headers),
        ))

    # ---- raw requests (endpoints the v1.0 SDK does not model)

    async def _get_json_async(self, client: GraphServiceClient, what: str, url: str) -> dict[str, Any]:
        request = RequestInformation()
        request.http_method = Method.GET
        request.url = url
        request.headers = HeadersCollection()
        doc = await _send_json(client.request_adapter, request)
        if not isinstance(doc, dict):
            raise GraphError(f"{what}: expected a JSON object")
        return doc

    def _get_json(self, what: str, url: str) -> dict[str, Any]:
        return self._run(what, lambda c: self._get_json_async(c, what, url))

    # ---- address repair: the tenant's domains (one self-contained method, easy to move)

    def verified_domains(self) -> tuple[tuple[str, ...], str | None]:
        """The tenant's verified domain names and its initial (``*.onmicrosoft.com``) domain (``/organization``)."""
        orgs = self._run("read the organization", lambda c: c.organization.get())
        names: list[str] = []
        initial: str | None = None
        for org in (orgs.value if orgs is not None else None) or ():
            for domain in org.verified_domains or ():
                if domain.name:
                    names.append(domain.name)
                    if domain.is_initial:
                        initial = domain.name
        return tuple(names), initial

    # ---- connectivity check

    def check(self) -> CloudCheckReport:
        """Token obtained, tenant id, one cheap read (``/organization``); never raises."""
        s = self.settings
        items: list[CheckItem] = []
        details: dict[str, Any] = {"authority": s.credentials.authority, "graph_url": s.base,
                                   "client_id": s.credentials.client_id}
        try:
            access = self._tokens.acquire(s.scope)
        except TokenError as exc:
            items.append(CheckItem("token", False, exc.message))
            return CloudCheckReport(False, "Microsoft Graph", s.base, tuple(items), details)
        roles = sorted(str(r) for r in access.claims.get("roles") or ())
        details["roles"] = roles
        items.append(CheckItem("token", True, f"token for {s.scope} from {s.credentials.authority}"
                                              + (f"; app roles: {', '.join(roles)}" if roles else "")))
        tid = access.claims.get("tid")
        details["tenant_id"] = tid
        if tid and _looks_like_guid(s.credentials.tenant_id) and str(tid).lower() != s.credentials.tenant_id.lower():
            items.append(CheckItem("tenant", False, f"the token is for tenant {tid}, not {s.credentials.tenant_id}"))
        elif tid:
            items.append(CheckItem("tenant", True, f"tenant {tid}"))
        try:
            orgs = self._run("read the organization", lambda c: c.organization.get())
            org = (getattr(orgs, "value", None) or [None])[0]
            if org is None:
                items.append(CheckItem("read", False, "/organization returned nothing"))
            else:
                details["tenant_id"] = details.get("tenant_id") or org.id
                details["tenant_name"] = org.display_name
                items.append(CheckItem("read", True, f"read /organization: {org.display_name} ({org.id})"))
        except GraphError as exc:
            items.append(CheckItem("read", False, str(exc)))
        return CloudCheckReport(all(i.ok for i in items), "Microsoft Graph", s.base, tuple(items), details)


def _looks_like_guid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True


def _path_key(value: str) -> str:
    """An id or UPN as one URL path segment.

    Kiota percent-encodes it (a guest's ``#EXT#`` becomes ``%23EXT%23``); slashes are refused all
    the same, since a server that decodes ``%2F`` would read a different path.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError("an object id or user principal name is required")
    if any(ch in value for ch in "/\\") or any(ord(ch) < 0x20 for ch in value):
        raise ValueError(f"{value!r} is not an object id or user principal name")
    return value


def _relative_url(url: str, base: str) -> str:
    if url.startswith(base):
        rest = url[len(base):]
        return rest if rest.startswith("/") else "/" + rest
    parts = urlsplit(url)
    return quote(parts.path) + (f"?{parts.query}" if parts.query else "")


__all__ = [
    "AccessToken", "AppCredentials", "AuditTarget", "AuthMethod", "AuthenticationFailed", "BadRequest",
    "CloudCheckReport", "DirectoryAudit", "EntraGraph", "EntraGroup", "EntraUser", "Forbidden", "GraphCallStats",
    "GraphError", "GraphSettings", "GroupMember", "GroupWriteback", "LicenceRequired", "NotFound", "ODataFilter",
    "ProvisioningError", "RegistrationDetails", "ServiceUnavailable", "Throttled", "TokenError", "TokenSource",
    "Unauthorized", "Unreachable", "UserAuthMethods", "error_for_status", "jwt_claims", "odata_any_eq", "odata_eq",
    "odata_ge", "odata_in", "odata_le", "odata_literal", "odata_ne", "odata_startswith",
]
