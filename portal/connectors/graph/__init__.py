"""EntraGraph: the portal's way to Microsoft Graph (msgraph-sdk over httpx, tokens from msal).

The connector is :class:`EntraGraph` (:mod:`.client`). Errors in :mod:`.errors`, tokens in :mod:`.auth`,
its settings in :mod:`.settings`, OData filters in :mod:`.query`, the values it returns in :mod:`.types`
(read from Graph's JSON by :mod:`.convert`), paging, its event loop and call counting in
:mod:`.transport`. Everything public is importable from this package, as it was from the single module
it grew out of.

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

# first: msgraph-core needs it in place before anything imports it
from . import compat  # noqa: F401

# isort: split

from .auth import GRAPH_SCOPE, AccessToken, AppCredentials, TokenSource, jwt_claims
from .client import EntraGraph
from .convert import (
    DEFAULT_GROUP_SELECT,
    DEFAULT_MEMBER_SELECT,
    DEFAULT_USER_SELECT,
    MEMBER_ADDRESS_SELECT,
    MEMBER_KIND_SELECT,
)
from .errors import (
    AuthenticationFailed,
    BadRequest,
    Forbidden,
    GraphError,
    LicenceRequired,
    NotFound,
    ServiceUnavailable,
    Throttled,
    TokenError,
    Unauthorized,
    Unreachable,
    error_for_status,
)
from .policies import AuthStrength, ConditionalAccessPolicy, DirectoryRole, SignIn
from .query import (
    ODataFilter,
    odata_any_eq,
    odata_eq,
    odata_ge,
    odata_in,
    odata_le,
    odata_literal,
    odata_ne,
    odata_startswith,
)
from .settings import GraphSettings
from .transport import GraphCallStats
from .types import (
    AuditTarget,
    AuthMethod,
    CloudCheckReport,
    DirectoryAudit,
    EntraGroup,
    EntraUser,
    GroupMember,
    GroupWriteback,
    ProvisioningError,
    RegistrationDetails,
    SyncBehavior,
    UserAuthMethods,
)

__all__ = [
    "AccessToken",
    "AppCredentials",
    "AuditTarget",
    "AuthenticationFailed",
    "AuthMethod",
    "AuthStrength",
    "ConditionalAccessPolicy",
    "DirectoryRole",
    "BadRequest",
    "CloudCheckReport",
    "DEFAULT_GROUP_SELECT",
    "DEFAULT_MEMBER_SELECT",
    "MEMBER_ADDRESS_SELECT",
    "MEMBER_KIND_SELECT",
    "DEFAULT_USER_SELECT",
    "DirectoryAudit",
    "EntraGraph",
    "EntraGroup",
    "EntraUser",
    "error_for_status",
    "Forbidden",
    "GRAPH_SCOPE",
    "GraphCallStats",
    "GraphError",
    "GraphSettings",
    "GroupMember",
    "GroupWriteback",
    "SyncBehavior",
    "jwt_claims",
    "LicenceRequired",
    "NotFound",
    "odata_any_eq",
    "odata_eq",
    "odata_ge",
    "odata_in",
    "odata_le",
    "odata_literal",
    "odata_ne",
    "odata_startswith",
    "ODataFilter",
    "ProvisioningError",
    "RegistrationDetails",
    "ServiceUnavailable",
    "SignIn",
    "Throttled",
    "TokenError",
    "TokenSource",
    "Unauthorized",
    "Unreachable",
    "UserAuthMethods",
]
