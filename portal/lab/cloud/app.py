"""The lab cloud service: one ASGI application answering as the Microsoft cloud does, so that the
portal's real client code (msal, msgraph-sdk, the Exchange ``InvokeCommand`` call, a pypsrp-shaped
PowerShell client) runs against it unchanged.

Endpoints (``{tenant}`` is the tenant id or its initial domain):

- OAuth 2.0 (Entra ID): ``GET /{tenant}/v2.0/.well-known/openid-configuration``,
  ``POST /{tenant}/oauth2/v2.0/token`` (client credentials with a secret, HTTP Basic or a signed
  client assertion), ``GET /{tenant}/discovery/v2.0/keys``.
- Microsoft Graph ``/v1.0`` and ``/beta``: users, groups, contacts, members, transitive members,
  memberOf, ``$batch``, authentication methods, ``reports/authenticationMethods/userRegistrationDetails``,
  ``auditLogs/directoryAudits``, ``organization``; the query options ``$select``, ``$filter``,
  ``$top``, ``$count``, ``$orderby`` and ``$skiptoken`` paging with absolute ``@odata.nextLink``.
- Exchange Online: ``POST /adminapi/beta/{tenant}/InvokeCommand`` with the cmdlets the portal uses.
- PowerShell-shaped: ``POST /powershell/entra-connect`` (ADSync cmdlets) and
  ``POST /powershell/exchange-onprem`` (handed to an injected runner), body
  ``{"cmdlet": ..., "parameters": {...}}``, answer ``{"output": [...], "errors": [...], "warnings": [...]}``
  -- one pypsrp ``PowerShell`` invocation each, with its output and error streams.

Error bodies follow what each service returns (Graph's ``{"error": {"code", "message",
"innerError"}}``, the token service's AADSTS errors, Exchange's ``details`` carrying
``<id>|<exception type>|<message>``). Each shape's source is named where it is built; where the
real text could not be confirmed the comment says so.

Request handling is synchronous code run in Starlette's thread pool: SQLite calls block, and one
process with a few threads is what the lab needs. No Django here.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import hashlib
import hmac
import json
import re
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .oidc import LabSignIn, sign_in_endpoint
from .store import (
    CONTACT_RECIPIENT_TYPES,
    EXCHANGE_SERVER_FQDN,
    GROUP_RECIPIENT_TYPES,
    MAIL_RECIPIENT_TYPES,
    MAIL_USER_RECIPIENT_TYPES,
    MAILBOX_RECIPIENT_TYPES,
    RECIPIENT_LINK_PROPERTIES,
    AnyOf,
    CloudStore,
    Compare,
    Condition,
    ConflictError,
    In,
    Not,
    Or,
    Page,
    StringMatch,
    UnsupportedQueryError,
    iso,
    parse_datetime,
    utc_now,
)
from .store import And as AndCondition

SyncRunner = Callable[[str], dict]
OnPremRunner = Callable[[str, dict], dict]

GRAPH_RESOURCE = "https://graph.microsoft.com"
EXCHANGE_RESOURCE = "https://outlook.office365.com"
# Well-known application ids of the two resources; a scope may name either form.
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
_RESOURCES = {
    GRAPH_RESOURCE: GRAPH_RESOURCE,
    GRAPH_APP_ID: GRAPH_RESOURCE,
    "https://graph.microsoft.com/": GRAPH_RESOURCE,
    EXCHANGE_RESOURCE: EXCHANGE_RESOURCE,
    "https://outlook.office365.com/": EXCHANGE_RESOURCE,
    EXCHANGE_APP_ID: EXCHANGE_RESOURCE,
    "https://outlook.office.com": EXCHANGE_RESOURCE,
}

MAX_BATCH = 20
DEFAULT_PAGE = 100
MAX_PAGE = 999
EXCHANGE_DEFAULT_PAGE = 1000
EXCHANGE_DEFAULT_RESULT_SIZE = 1000

# Graph's list of default properties for users (learn.microsoft.com, "List users": without
# $select only these come back).
USER_DEFAULT = ("businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone", "officeLocation",
                "preferredLanguage", "surname", "userPrincipalName", "id")
USER_PROPERTIES = frozenset(USER_DEFAULT) | {
    "accountEnabled", "ageGroup", "assignedLicenses", "assignedPlans", "authorizationInfo", "city", "companyName",
    "consentProvidedForMinor", "country", "createdDateTime", "creationType", "deletedDateTime", "department",
    "employeeHireDate", "employeeId", "employeeLeaveDateTime", "employeeOrgData", "employeeType",
    "externalUserState", "externalUserStateChangeDateTime", "faxNumber", "identities", "imAddresses",
    "isResourceAccount", "lastPasswordChangeDateTime", "legalAgeGroupClassification", "licenseAssignmentStates",
    "mailNickname", "onPremisesDistinguishedName", "onPremisesDomainName", "onPremisesExtensionAttributes",
    "onPremisesImmutableId", "onPremisesLastSyncDateTime", "onPremisesProvisioningErrors",
    "onPremisesSamAccountName", "onPremisesSecurityIdentifier", "onPremisesSyncEnabled",
    "onPremisesUserPrincipalName", "otherMails", "passwordPolicies", "postalCode", "preferredDataLocation",
    "provisionedPlans", "proxyAddresses", "securityIdentifier", "showInAddressList", "signInSessionsValidFromDateTime",
    "state", "streetAddress", "usageLocation", "userType",
}
# Groups come back with (nearly) all their properties by default.
GROUP_DEFAULT = (
    "id", "deletedDateTime", "classification", "createdDateTime", "creationOptions", "description", "displayName",
    "expirationDateTime", "groupTypes", "isAssignableToRole", "mail", "mailEnabled", "mailNickname",
    "membershipRule", "membershipRuleProcessingState", "onPremisesDomainName", "onPremisesLastSyncDateTime",
    "onPremisesNetBiosName", "onPremisesSamAccountName", "onPremisesSecurityIdentifier", "onPremisesSyncEnabled",
    "preferredDataLocation", "preferredLanguage", "proxyAddresses", "renewedDateTime", "resourceBehaviorOptions",
    "resourceProvisioningOptions", "securityEnabled", "securityIdentifier", "theme", "visibility",
    "onPremisesProvisioningErrors", "serviceProvisioningErrors",
)
GROUP_PROPERTIES = frozenset(GROUP_DEFAULT) | {"onPremisesGroupType"}
# Only beta has these (lab-cloud.md: group writeback configuration is beta).
GROUP_BETA_ONLY = frozenset({"writebackConfiguration"})
CONTACT_DEFAULT = ("id", "addresses", "companyName", "department", "displayName", "givenName", "jobTitle", "mail",
                   "mailNickname", "onPremisesLastSyncDateTime", "onPremisesSyncEnabled", "phones", "proxyAddresses",
                   "surname", "onPremisesProvisioningErrors", "serviceProvisioningErrors")
CONTACT_PROPERTIES = frozenset(CONTACT_DEFAULT) | {"createdDateTime", "deletedDateTime"}
_COLLECTIONS = frozenset({
    "businessPhones", "proxyAddresses", "groupTypes", "otherMails", "imAddresses", "identities", "assignedLicenses",
    "assignedPlans", "provisionedPlans", "onPremisesProvisioningErrors", "serviceProvisioningErrors",
    "resourceBehaviorOptions", "resourceProvisioningOptions", "creationOptions", "addresses", "phones",
    "licenseAssignmentStates",
})
_ODATA_TYPES = {"user": "#microsoft.graph.user", "group": "#microsoft.graph.group",
                "contact": "#microsoft.graph.orgContact"}
_CASTS = {"microsoft.graph.user": "user", "microsoft.graph.group": "group", "microsoft.graph.orgcontact": "contact"}
_TYPE_NAMES = {"user": "microsoft.graph.user", "group": "microsoft.graph.group",
               "contact": "microsoft.graph.orgContact"}

ON_PREM_PROPERTIES_ERROR = (
    "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects "
    "currently undergoing migration."
)
# Graph refuses to change distribution lists and mail-enabled security groups (only Exchange can).
DL_UPDATE_ERROR = "Cannot Update a mail-enabled security groups and or distribution list."
WRITEBACK_GROUP_TYPES = ("universalDistributionGroup", "universalSecurityGroup", "universalMailEnabledSecurityGroup")


# --------------------------------------------------------------------------------------------
# request / response model, independent of Starlette so that $batch reuses the same handlers


@dataclass
class ApiRequest:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    base_url: str
    claims: dict[str, Any] | None = None
    version: str = "v1.0"

    def param(self, name: str) -> str | None:
        """A query option; Graph accepts them with or without ``$`` (and case-insensitively)."""
        wanted = {name.lower(), name.lower().lstrip("$")}
        for key, value in self.query:
            if key.lower() in wanted:
                return value
        return None

    def json(self) -> Any:
        if not self.body:
            return None
        return json.loads(self.body)


@dataclass
class ApiResponse:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None


class ApiError(Exception):
    """Raised by handlers; carries the ready response."""

    def __init__(self, response: ApiResponse) -> None:
        super().__init__(response.status)
        self.response = response


def _request_ids(req: ApiRequest | None) -> tuple[str, str]:
    request_id = str(uuid.uuid4())
    client_id = (req.headers.get("client-request-id") if req else None) or request_id
    return request_id, client_id


def graph_error(status: int, code: str, message: str, req: ApiRequest | None = None,
                headers: Mapping[str, str] | None = None) -> ApiError:
    """Graph's error body: ``{"error": {"code", "message", "innerError": {date, request-id,
    client-request-id}}}`` (as in every Graph error quoted in microsoft-graph-docs issues)."""
    request_id, client_id = _request_ids(req)
    body = {"error": {"code": code, "message": message, "innerError": {
        "date": utc_now().strftime("%Y-%m-%dT%H:%M:%S"), "request-id": request_id, "client-request-id": client_id}}}
    return ApiError(ApiResponse(status, body, {"request-id": request_id, "client-request-id": client_id,
                                               **(headers or {})}))


# --------------------------------------------------------------------------------------------
# tokens


class TokenError(Exception):
    pass


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_access_token(
    *,
    key: bytes,
    tenant_id: str,
    client_id: str,
    audience: str,
    roles: Sequence[str] = (),
    lifetime: int = 3599,
    now: datetime | None = None,
    issuer_host: str = "https://sts.windows.net",
) -> str:
    """An app-only access token in Entra ID's claim layout, signed with the lab's HMAC key.

    Real tokens are RS256-signed; clients never validate access tokens, so HS256 is enough for the
    lab and keeps the key out of any published JWKS. Tests use this to mint expired tokens or
    tokens of another tenant.
    """
    moment = int((now or utc_now()).timestamp())
    header = {"typ": "JWT", "alg": "HS256", "kid": "lab-cloud"}
    claims = {
        "aud": audience, "iss": f"{issuer_host}/{tenant_id}/", "iat": moment, "nbf": moment,
        "exp": moment + lifetime, "aio": "lab", "app_displayname": "lab", "appid": client_id, "appidacr": "1",
        "azp": client_id, "idp": f"{issuer_host}/{tenant_id}/", "idtyp": "app", "oid": client_id, "rh": "lab",
        "roles": list(roles), "sub": client_id, "tid": tenant_id, "uti": _b64url(uuid.uuid4().bytes), "ver": "1.0",
    }
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"


def verify_access_token(token: str, *, key: bytes, now: datetime | None = None) -> dict[str, Any]:
    """Claims of a lab token; TokenError carries the message Graph gives for that failure."""
    parts = token.split(".")
    if len(parts) != 3:
        # Graph's wording for a token that is not a JWS (IDX14100, from Microsoft.IdentityModel).
        raise TokenError("IDX14100: JWT is not well formed, there are no dots (.).\n"
                         "The token needs to be in JWS or JWE Compact Serialization Format. (JWS): "
                         "'EncodedHeader.EncodedPayload.EncodedSignature'. (JWE): "
                         "'EncodedProtectedHeader.EncodedEncryptedKey.EncodedInitializationVector.EncodedCiphertext."
                         "EncodedAuthenticationTag'.")
    try:
        header = json.loads(_b64url_decode(parts[0]))
        claims = json.loads(_b64url_decode(parts[1]))
        signature = _b64url_decode(parts[2])
    except (ValueError, TypeError) as exc:
        raise TokenError("IDX14102: Unable to decode the header as Base64Url encoded string.") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict) or header.get("alg") != "HS256":
        raise TokenError("IDX10511: Signature validation failed.")
    expected = hmac.new(key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise TokenError("IDX10511: Signature validation failed.")
    moment = (now or utc_now()).timestamp()
    if not isinstance(claims.get("exp"), int | float) or claims["exp"] < moment:
        raise TokenError("Lifetime validation failed, the token is expired.")
    if isinstance(claims.get("nbf"), int | float) and claims["nbf"] > moment + 300:
        raise TokenError("Access token has expired or is not yet valid.")
    return claims


# --------------------------------------------------------------------------------------------
# OData $filter parser (subset Graph accepts on directory objects, reports and audit logs)


class FilterSyntaxError(ValueError):
    def __init__(self, position: int) -> None:
        super().__init__(position)
        self.position = position


_FILTER_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>'(?:[^']|'')*')
  | (?P<dt>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?(?:Z|[+-]\d{2}:\d{2})?)?)(?![\w-])
  | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})
  | (?P<num>-?\d+(?:\.\d+)?)
  | (?P<path>[A-Za-z_@][A-Za-z0-9_@.]*(?:/[A-Za-z_@][A-Za-z0-9_@.]*)*)
  | (?P<punct>[(),:])
""", re.VERBOSE)

_COMPARE_OPS = {"eq", "ne", "gt", "ge", "lt", "le"}


@dataclass
class FilterInfo:
    condition: Condition
    advanced: set[str] = field(default_factory=set)  # features Graph only allows as advanced queries


class _FilterParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            match = _FILTER_TOKEN.match(text, pos)
            if not match:
                raise FilterSyntaxError(pos)
            kind = match.lastgroup or ""
            if kind != "ws":
                self.tokens.append((kind, match.group(), pos))
            pos = match.end()
        self.index = 0
        self.advanced: set[str] = set()

    def parse(self) -> FilterInfo:
        if not self.tokens:
            raise FilterSyntaxError(0)
        cond = self._or()
        if self.index != len(self.tokens):
            raise FilterSyntaxError(self.tokens[self.index][2])
        return FilterInfo(cond, self.advanced)

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _take(self) -> tuple[str, str, int]:
        token = self._peek()
        if token is None:
            raise FilterSyntaxError(len(self.text))
        self.index += 1
        return token

    def _expect(self, text: str) -> None:
        kind, value, pos = self._take()
        if value != text:
            raise FilterSyntaxError(pos)

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        if token and token[0] == "path" and token[1].lower() == word:
            self.index += 1
            return True
        return False

    def _or(self) -> Condition:
        items = [self._and()]
        while self._keyword("or"):
            items.append(self._and())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def _and(self) -> Condition:
        items = [self._unary()]
        while self._keyword("and"):
            items.append(self._unary())
        return items[0] if len(items) == 1 else AndCondition(tuple(items))

    def _unary(self) -> Condition:
        if self._keyword("not"):
            self.advanced.add("not")
            return Not(self._unary())
        return self._primary()

    def _primary(self) -> Condition:
        kind, value, pos = self._take()
        if value == "(":
            cond = self._or()
            self._expect(")")
            return cond
        if kind != "path":
            raise FilterSyntaxError(pos)
        nxt = self._peek()
        lowered = value.lower()
        if nxt and nxt[1] == "(" and lowered in {"startswith", "endswith", "contains"}:
            self.index += 1
            path = self._path()
            self._expect(",")
            literal = self._value()
            self._expect(")")
            if not isinstance(literal, str):
                raise FilterSyntaxError(pos)
            if lowered == "endswith":
                self.advanced.add("endsWith")
            if lowered == "contains":
                self.advanced.add("contains")
            return StringMatch(path, lowered, literal)  # type: ignore[arg-type]
        segments = tuple(value.split("/"))
        if nxt and nxt[1] == "(" and segments[-1].lower() in {"any", "all"} and len(segments) > 1:
            self.index += 1
            collection = segments[:-1]
            if self._peek() and self._peek()[1] == ")":  # type: ignore[index]
                self.index += 1
                return AnyOf(collection, "_", None)
            var_kind, variable, var_pos = self._take()
            if var_kind != "path" or "/" in variable:
                raise FilterSyntaxError(var_pos)
            self._expect(":")
            body = self._or()
            self._expect(")")
            if segments[-1].lower() == "all":
                return Not(AnyOf(collection, variable, Not(body)))
            return AnyOf(collection, variable, body)
        op_kind, op, op_pos = self._take()
        op = op.lower()
        if op_kind != "path" or op not in _COMPARE_OPS | {"in"}:
            raise FilterSyntaxError(op_pos)
        if op == "in":
            self._expect("(")
            values = [self._value()]
            while self._peek() and self._peek()[1] == ",":  # type: ignore[index]
                self.index += 1
                values.append(self._value())
            self._expect(")")
            return In(segments, tuple(values))
        if op == "ne":
            self.advanced.add("ne")
        return Compare(segments, op, self._value())  # type: ignore[arg-type]

    def _path(self) -> tuple[str, ...]:
        kind, value, pos = self._take()
        if kind != "path":
            raise FilterSyntaxError(pos)
        return tuple(value.split("/"))

    def _value(self) -> Any:
        kind, value, pos = self._take()
        if kind == "str":
            return value[1:-1].replace("''", "'")
        if kind == "dt":
            try:
                return parse_datetime(value)
            except ValueError as exc:
                raise FilterSyntaxError(pos) from exc
        if kind == "guid":
            return value.lower()
        if kind == "num":
            return float(value) if "." in value else int(value)
        if kind == "path" and value.lower() in {"true", "false", "null"}:
            return {"true": True, "false": False, "null": None}[value.lower()]
        raise FilterSyntaxError(pos)


def parse_filter(text: str) -> FilterInfo:
    return _FilterParser(text).parse()


# --------------------------------------------------------------------------------------------
# Exchange OPATH (-Filter) subset


class OpathError(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


_OPATH_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<var>\$(?:true|false|null))
  | (?P<op>-(?:and|or|not|eq|ne|like|notlike|gt|ge|lt|le|ceq|clike)\b)
  | (?P<punct>[()])
  | (?P<word>[^\s()'"]+)
""", re.VERBOSE | re.IGNORECASE)


@dataclass(frozen=True)
class _OpathTerm:
    prop: str
    op: str
    value: Any


@dataclass(frozen=True)
class _OpathBool:
    op: str  # and | or
    left: Any
    right: Any


@dataclass(frozen=True)
class _OpathNot:
    item: Any


def parse_opath(text: str, *, known: Callable[[str], str | None]) -> Any:
    """Parse an OPATH filter. ``-and`` and ``-or`` have equal precedence and group left to right,
    as PowerShell's operators do; parentheses decide otherwise. ``known`` maps a property name
    (any case) to its canonical name, or None when it is not filterable."""
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        match = _OPATH_TOKEN.match(text, pos)
        if not match:
            raise OpathError(_opath_syntax(text, pos))
        if match.lastgroup != "ws":
            tokens.append((match.lastgroup or "", match.group(), pos))
        pos = match.end()
    index = 0

    def peek() -> tuple[str, str, int] | None:
        return tokens[index] if index < len(tokens) else None

    def take() -> tuple[str, str, int]:
        nonlocal index
        if index >= len(tokens):
            raise OpathError(_opath_syntax(text, len(text)))
        index += 1
        return tokens[index - 1]

    def expression() -> Any:
        left = unary()
        while (tok := peek()) and tok[0] == "op" and tok[1].lower() in {"-and", "-or"}:
            take()
            left = _OpathBool(tok[1].lower()[1:], left, unary())
        return left

    def unary() -> Any:
        tok = peek()
        if tok and tok[0] == "op" and tok[1].lower() == "-not":
            take()
            return _OpathNot(unary())
        return primary()

    def primary() -> Any:
        kind, value, at = take()
        if value == "(":
            inner = expression()
            kind2, value2, at2 = take()
            if value2 != ")":
                raise OpathError(_opath_syntax(text, at2))
            return inner
        if kind != "word":
            raise OpathError(_opath_syntax(text, at))
        canonical = known(value)
        if canonical is None:
            raise OpathError(
                f'Cannot bind parameter \'Filter\' to the target. Exception setting "Filter": "\"{value}\" is not a '
                'recognized filterable property. For a description of the filterable properties see the command '
                f'help.\n"{text}" at position {at + 1}."'
            )
        op_kind, op, op_at = take()
        if op_kind != "op" or op.lower() in {"-and", "-or", "-not"}:
            raise OpathError(_opath_syntax(text, op_at))
        val_kind, raw, _val_at = take()
        if val_kind == "str":
            literal: Any = raw[1:-1].replace(raw[0] * 2, raw[0])
        elif val_kind == "var":
            literal = {"$true": True, "$false": False, "$null": None}[raw.lower()]
        elif val_kind == "word":
            literal = raw
        else:
            raise OpathError(_opath_syntax(text, _val_at))
        return _OpathTerm(canonical, op.lower().lstrip("-").replace("ceq", "eq").replace("clike", "like"), literal)

    if not tokens:
        raise OpathError(_opath_syntax(text, 0))
    tree = expression()
    if index != len(tokens):
        raise OpathError(_opath_syntax(text, tokens[index][2]))
    return tree


def _opath_syntax(text: str, position: int) -> str:
    # Exchange's wording for an unparsable -Filter (ParameterBindingException around the OPATH parser).
    return ('Cannot bind parameter \'Filter\' to the target. Exception setting "Filter": "Invalid filter syntax. '
            f'For a description of the filter parameter syntax see the command help.\n"{text}" at position '
            f'{position + 1}."')


def _opath_match(tree: Any, get: Callable[[str], Any]) -> bool:
    if isinstance(tree, _OpathBool):
        if tree.op == "and":
            return _opath_match(tree.left, get) and _opath_match(tree.right, get)
        return _opath_match(tree.left, get) or _opath_match(tree.right, get)
    if isinstance(tree, _OpathNot):
        return not _opath_match(tree.item, get)
    term: _OpathTerm = tree
    actual = get(term.prop)
    values = actual if isinstance(actual, list) else [actual]
    if term.value is None:
        empty = actual is None or actual == "" or actual == []
        return empty if term.op == "eq" else not empty if term.op == "ne" else False

    def one(candidate: Any) -> bool:
        if candidate is None:
            return False
        if isinstance(candidate, bool) or isinstance(term.value, bool):
            left = str(candidate).lower()
            right = str(term.value).lower().lstrip("$")
            return _cmp(left, right, term.op)
        return _cmp(str(candidate).lower(), str(term.value).lower(), term.op)

    if term.op in {"ne", "notlike"}:
        positive = "eq" if term.op == "ne" else "like"
        return not any(_cmp(str(v).lower(), str(term.value).lower(), positive) for v in values if v is not None)
    return any(one(v) for v in values)


def _cmp(left: str, right: str, op: str) -> bool:
    if op == "eq":
        return left == right
    if op == "like":
        return fnmatch.fnmatchcase(left, right.replace("[", "[[]"))
    if op == "gt":
        return left > right
    if op == "ge":
        return left >= right
    if op == "lt":
        return left < right
    if op == "le":
        return left <= right
    return False


# --------------------------------------------------------------------------------------------
# Exchange errors


class ExchangeError(Exception):
    """A cmdlet failure: ``exception`` is the .NET type Exchange names in ``details[].message``."""

    def __init__(self, exception: str, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.exception = exception
        self.message = message
        self.status = status


# The id Exchange prefixes to a ManagementObjectNotFoundException (seen in every such message
# quoted in the field notes and on Microsoft Q&A); other ids are the lab's own, stable per type.
_EXCHANGE_ERROR_IDS = {"Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException": "Ex6F9304"}


def _exchange_error_id(exception: str) -> str:
    return _EXCHANGE_ERROR_IDS.get(exception) or "Ex" + hashlib.sha1(exception.encode()).hexdigest()[:6].upper()


def not_found(identity: str) -> ExchangeError:
    return ExchangeError(
        "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
        f"The operation couldn't be performed because object '{identity}' couldn't be found on "
        f"'{EXCHANGE_SERVER_FQDN}'.",
        status=404,
    )


def member_not_found(identity: str) -> ExchangeError:
    return ExchangeError(
        "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
        f'Couldn\'t find object "{identity}". Please make sure that it was spelled correctly or specify a different '
        "object.",
        status=404,
    )


def ambiguous(identity: str) -> ExchangeError:
    return ExchangeError(
        "Microsoft.Exchange.Configuration.Tasks.ManagementObjectAmbiguousException",
        f"The operation couldn't be performed because '{identity}' matches multiple entries.",
    )


def synced_object(cmdlet: str, prop: str | None, name: str) -> ExchangeError:
    # Exchange Online's refusal to change a dir-synced object (quoted in Microsoft Q&A threads and
    # admin blogs: "The action 'Set-DistributionGroup', 'ManagedBy', can't be performed on the object
    # ... because the object is being synchronized from your on-premises organization.").
    action = f"'{cmdlet}', '{prop}'," if prop else f"'{cmdlet}',"
    return ExchangeError(
        "System.InvalidOperationException",
        f"The action {action} can't be performed on the object '{name}' because the object is being synchronized "
        "from your on-premises organization. This action should be performed on the object in your on-premises "
        "organization.",
    )


def parameter_not_found(name: str) -> ExchangeError:
    return ExchangeError("System.Management.Automation.ParameterBindingException",
                         f"A parameter cannot be found that matches parameter name '{name}'.")


def missing_parameter(names: Iterable[str]) -> ExchangeError:
    return ExchangeError("System.Management.Automation.ParameterBindingException",
                         "Cannot process command because of one or more missing mandatory parameters: "
                         f"{' '.join(names)}.")


def command_not_found(name: str) -> str:
    return (f"The term '{name}' is not recognized as a name of a cmdlet, function, script file, or executable "
            "program.\nCheck the spelling of the name, or if a path was included, verify that the path is correct "
            "and try again.")


def exchange_error_response(error: ExchangeError, req: ApiRequest) -> ApiResponse:
    """The admin API's error body: a generic ``message`` and the cmdlet's own error in
    ``details[0].message`` as ``<id>|<exception type>|<text>``, with ``innererror`` naming the
    service exception (shape of the bodies quoted by ExoHelper and Exchange proxy errors)."""
    request_id, client_id = _request_ids(req)
    code = "NotFound" if error.status == 404 else "BadRequest"
    body = {"error": {
        "code": code,
        "message": "Error executing cmdlet",
        "details": [{"code": "Client", "target": "",
                     "message": f"{_exchange_error_id(error.exception)}|{error.exception}|{error.message}"}],
        "innererror": {"message": "Error executing cmdlet",
                       "type": "Microsoft.Exchange.Admin.OData.Core.ODataServiceException",
                       "stacktrace": ""},
    }}
    return ApiResponse(error.status, body, {"request-id": request_id, "client-request-id": client_id})


# --------------------------------------------------------------------------------------------
# the service


@dataclass(frozen=True)
class _Route:
    methods: frozenset[str]
    pattern: re.Pattern[str]
    handler: Callable[[ApiRequest, re.Match[str]], ApiResponse]




class LabCloud:
    """Holds the store and answers requests; ``create_app`` wraps it in Starlette."""

    def __init__(
        self,
        *,
        data_dir: Path,
        tenant_id: str,
        initial_domain: str,
        sync_runner: SyncRunner | None,
        onprem_runner: OnPremRunner | None,
        public_base_url: str | None,
        token_lifetime: int,
        sync_in_background: bool,
    ) -> None:
        self.store = CloudStore.open(data_dir=data_dir)
        self.store.set_tenant(tenant_id=tenant_id, initial_domain=initial_domain)
        self.store.abandon_running_sync_runs()
        self.tenant_id = tenant_id.lower()
        self.initial_domain = initial_domain.lower()
        self.sync_runner = sync_runner
        self.onprem_runner = onprem_runner
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.token_lifetime = token_lifetime
        self.sync_in_background = sync_in_background
        self._key = self.store.signing_key()
        self.sign_in = LabSignIn(  # OpenID Connect sign-in (oidc.py): authorize page, code exchange, JWKS
            data_dir=data_dir, tenant_id=tenant_id, store=self.store, aadsts=self._aadsts,
            access_token=lambda user_id, client_id: issue_access_token(
                key=self._key, tenant_id=self.tenant_id, client_id=client_id, audience=GRAPH_RESOURCE,
                lifetime=self.token_lifetime))
        self._sync_threads: list[threading.Thread] = []
        self.graph_routes = self._graph_routes()

    # -- entry point

    def handle(self, req: ApiRequest) -> ApiResponse:
        if self.public_base_url:
            req.base_url = self.public_base_url
        path = req.path
        try:
            if path.startswith(("/v1.0/", "/beta/")) or path in {"/v1.0", "/beta"}:
                return self._graph_entry(req)
            if path.startswith("/adminapi/"):
                return self._exchange_entry(req)
            if path.startswith("/powershell/"):
                return self._powershell_entry(req)
            if path == "/lab/health":
                return ApiResponse(200, {"status": "ok", "tenantId": self.tenant_id})
            return self._login_entry(req)
        except ApiError as error:
            return error.response

    # -- faults

    def _apply_faults(self, service: str, req: ApiRequest) -> None:
        fault = self.store.take_fault(service=service)
        if fault.latency_ms:
            time.sleep(fault.latency_ms / 1000)
        if fault.status is None:
            return
        headers = {"Retry-After": str(fault.retry_after)}
        if service == "graph":
            if fault.status == 429:
                # Graph's throttling answer (learn.microsoft.com, "Microsoft Graph throttling guidance").
                request_id, client_id = _request_ids(req)
                body = {"error": {"code": "TooManyRequests", "message": "Please retry again later.", "innerError": {
                    "code": "429", "date": utc_now().strftime("%Y-%m-%dT%H:%M:%S"), "message": "Please retry after",
                    "request-id": request_id, "status": "429"}}}
                raise ApiError(ApiResponse(429, body, {**headers, "request-id": request_id,
                                                       "client-request-id": client_id}))
            raise graph_error(503, "serviceNotAvailable",
                              "The service is temporarily unavailable for maintenance or is overloaded. You may "
                              "repeat the request after a delay, the length of which may be specified in a "
                              "Retry-After header.", req, headers)
        if service == "exchange":
            code = "TooManyRequests" if fault.status == 429 else "ServiceUnavailable"
            # Lab wording: the admin API's throttling text was not found in a citable source.
            message = ("You have reached the maximum number of concurrent requests per tenant. Please wait and "
                       "try again." if fault.status == 429 else "The service is temporarily unavailable.")
            raise ApiError(ApiResponse(fault.status, {"error": {"code": code, "message": message}}, headers))
        raise ApiError(ApiResponse(fault.status, {"output": [], "warnings": [], "errors": [_ps_error(
            "System.Net.WebException", "The WinRM service is busy; retry the request later.", "ResourceUnavailable",
            "Invoke-Command")], "had_errors": True}, headers))

    # ------------------------------------------------------------------------------------------
    # OAuth 2.0 / OpenID Connect

    def _login_entry(self, req: ApiRequest) -> ApiResponse:
        match = re.fullmatch(r"/([^/]+)/(v2\.0/\.well-known/openid-configuration|oauth2/v2\.0/token|"
                             r"discovery/v2\.0/keys|\.well-known/openid-configuration|oauth2/v2\.0/authorize|"
                             r"oauth2/v2\.0/logout)", req.path)
        if not match:
            raise self._not_found_path(req)
        tenant, endpoint = match.groups()
        if not self._is_our_tenant(tenant) and tenant.lower() not in {"organizations", "common"}:
            raise self._aadsts(400, "invalid_request", 90002,
                               f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and "
                               "are signing into the correct cloud. Check with your subscription administrator, this "
                               "may happen if there are no active subscriptions for the tenant.")
        if endpoint.endswith("openid-configuration"):
            if req.method != "GET":
                raise self._not_found_path(req)
            return ApiResponse(200, self._openid_configuration(req))
        if endpoint.endswith(("keys", "authorize", "logout")):
            return sign_in_endpoint(self.sign_in, req, endpoint, issuer=self._openid_configuration(req)["issuer"])
        if req.method != "POST":
            raise self._aadsts(400, "invalid_request", 900561,
                               "The endpoint only accepts POST requests. Received a GET request.")
        return self._token(req)

    def _is_our_tenant(self, tenant: str) -> bool:
        return tenant.lower() in {self.tenant_id, self.initial_domain}

    def _openid_configuration(self, req: ApiRequest) -> dict[str, Any]:
        base = f"{req.base_url}/{self.tenant_id}"
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{req.base_url}/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
                                 "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr",
                                 "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
            "kerberos_endpoint": f"{base}/kerberos",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }

    def _aadsts(self, status: int, error: str, code: int, description: str) -> ApiError:
        """The token service's error body (error, error_description with AADSTS code and trace
        lines, error_codes, timestamp, trace_id, correlation_id, error_uri)."""
        trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = utc_now().strftime("%Y-%m-%d %H:%M:%SZ")
        body = {
            "error": error,
            "error_description": f"AADSTS{code}: {description} Trace ID: {trace_id} Correlation ID: "
                                 f"{correlation_id} Timestamp: {stamp}",
            "error_codes": [code], "timestamp": stamp, "trace_id": trace_id, "correlation_id": correlation_id,
            "error_uri": f"https://login.microsoftonline.com/error?code={code}",
        }
        return ApiError(ApiResponse(status, body))

    def _token(self, req: ApiRequest) -> ApiResponse:
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(req.body.decode(errors="replace"),
                                                            keep_blank_values=True).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = req.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
                client_id = client_id or urllib.parse.unquote(user)
                client_secret = client_secret or urllib.parse.unquote(password)
        if form.get("grant_type") not in {"client_credentials", "authorization_code"}:
            raise self._aadsts(400, "unsupported_grant_type", 70003,
                               "The app requested an unsupported grant type "
                               f"'{form.get('grant_type', '')}'. The lab supports client_credentials and "
                               "authorization_code only.")
        if not client_id:
            raise self._aadsts(400, "invalid_request", 900144,
                               "The request body must contain the following parameter: 'client_id'.")
        app = self.store.get_app(client_id=client_id)
        if app is None:
            raise self._aadsts(400, "unauthorized_client", 700016,
                               f"Application with identifier '{client_id}' was not found in the directory "
                               f"'{self.tenant_id}'. This can happen if the application has not been installed by the "
                               "administrator of the tenant or consented to by any user in the tenant. You may have "
                               "sent your authentication request to the wrong tenant.")
        assertion = form.get("client_assertion")
        if assertion:
            self._check_assertion(assertion, form.get("client_assertion_type"), client_id, app, req)
        elif client_secret:
            if not self.store.verify_client_secret(client_id=client_id, client_secret=client_secret):
                raise self._aadsts(401, "invalid_client", 7000215,
                                   "Invalid client secret provided. Ensure the secret being sent in the request is "
                                   "the client secret value, not the client secret ID, for a secret added to app "
                                   f"'{client_id}'.")
        else:
            raise self._aadsts(401, "invalid_client", 7000218,
                               "The request body must contain the following parameter: 'client_assertion' or "
                               "'client_secret'.")
        if form.get("grant_type") == "authorization_code":
            return ApiResponse(200, self.sign_in.redeem(form=form, client_id=client_id, lifetime=self.token_lifetime,
                                                        issuer=self._openid_configuration(req)["issuer"]),
                               {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})
        scope = form.get("scope", "")
        scopes = [s for s in scope.split() if s not in {"openid", "profile", "offline_access", "email"}]
        if not scopes:
            raise self._aadsts(400, "invalid_request", 900144,
                               "The request body must contain the following parameter: 'scope'.")
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            raise self._aadsts(400, "invalid_scope", 1002012,
                               f"The provided value for scope {scope} is not valid. Client credential flows must have "
                               "a scope value with /.default suffixed to the resource identifier (application ID "
                               "URI).")
        resource = scopes[0][: -len("/.default")]
        audience = _RESOURCES.get(resource) or _RESOURCES.get(resource.rstrip("/"))
        if audience is None:
            raise self._aadsts(400, "invalid_resource", 500011,
                               f"The resource principal named {resource} was not found in the tenant named "
                               f"{self.tenant_id}. This can happen if the application has not been installed by the "
                               "administrator of the tenant or consented to by any user in the tenant. You might have "
                               "sent your authentication request to the wrong tenant.")
        token = issue_access_token(key=self._key, tenant_id=self.tenant_id, client_id=client_id.lower(),
                                   audience=audience, roles=app["roles"], lifetime=self.token_lifetime)
        return ApiResponse(200, {"token_type": "Bearer", "expires_in": self.token_lifetime,
                                 "ext_expires_in": self.token_lifetime, "access_token": token},
                           {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})

    def _check_assertion(self, assertion: str, assertion_type: str | None, client_id: str, app: Mapping[str, Any],
                         req: ApiRequest) -> None:
        if assertion_type != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            raise self._aadsts(400, "invalid_request", 50027,
                               "Invalid JWT token. The client_assertion_type must be "
                               "'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.")
        parts = assertion.split(".")
        try:
            header = json.loads(_b64url_decode(parts[0]))
            claims = json.loads(_b64url_decode(parts[1]))
        except (ValueError, IndexError) as exc:
            raise self._aadsts(400, "invalid_request", 50027, "Invalid JWT token. Token format not valid.") from exc
        if str(claims.get("iss", "")).lower() != client_id.lower() or str(claims.get("sub", "")).lower() != \
                client_id.lower():
            raise self._aadsts(401, "invalid_client", 700023,
                               "Client assertion audience claim does not match Realm issuer, or the iss/sub claims "
                               f"are not the client id '{client_id}'.")
        if not isinstance(claims.get("exp"), int | float) or claims["exp"] < time.time():
            raise self._aadsts(401, "invalid_client", 700024,
                               "Client assertion is not within its valid time range.")
        if not app["certificates"]:
            raise self._aadsts(401, "invalid_client", 700027,
                               "Client assertion contains an invalid signature. [Reason - The key was not found., "
                               f"Thumbprint of key used by client: '{header.get('x5t', '')}']")
        # Verify with PyJWT (a dependency of msal) against the registered certificates.
        import jwt
        from cryptography import x509

        for pem in app["certificates"]:
            certificate = x509.load_pem_x509_certificate(pem.encode())
            try:
                jwt.decode(assertion, certificate.public_key(), algorithms=["RS256", "PS256"],  # type: ignore[arg-type]
                           options={"verify_aud": False})
                return
            except jwt.PyJWTError:
                continue
        raise self._aadsts(401, "invalid_client", 700027,
                           "Client assertion contains an invalid signature. [Reason - The key used is not registered "
                           f"for the app., Thumbprint of key used by client: '{header.get('x5t', '')}']")

    # ------------------------------------------------------------------------------------------
    # Graph

    def _graph_entry(self, req: ApiRequest) -> ApiResponse:
        version, _, rest = req.path.lstrip("/").partition("/")
        req.version = version
        req.claims = self._graph_auth(req)
        self._apply_faults("graph", req)
        response = self._graph_dispatch(req, "/" + rest)
        request_id, client_id = _request_ids(req)
        response.headers.setdefault("request-id", request_id)
        response.headers.setdefault("client-request-id", client_id)
        return response

    def _graph_auth(self, req: ApiRequest) -> dict[str, Any]:
        header = req.headers.get("authorization", "")
        challenge = {"WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/'
                                         f'common/oauth2/authorize", client_id="{GRAPH_APP_ID}"'}
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            raise graph_error(401, "InvalidAuthenticationToken", "Access token is empty.", req, challenge)
        try:
            claims = verify_access_token(header[7:].strip(), key=self._key)
        except TokenError as exc:
            raise graph_error(401, "InvalidAuthenticationToken", str(exc), req, challenge) from exc
        if str(claims.get("tid", "")).lower() != self.tenant_id:
            raise graph_error(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid issuer.",
                              req, challenge)
        if claims.get("aud") not in {GRAPH_RESOURCE, GRAPH_APP_ID}:
            raise graph_error(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.",
                              req, challenge)
        return claims

    def _require(self, req: ApiRequest, *roles: str) -> None:
        granted = set((req.claims or {}).get("roles") or [])
        if not granted.intersection(roles):
            raise graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.",
                              req)

    def _graph_dispatch(self, req: ApiRequest, sub_path: str) -> ApiResponse:
        path = urllib.parse.unquote(sub_path).rstrip("/") or "/"
        for route in self.graph_routes:
            match = route.pattern.fullmatch(path)
            if match:
                if req.method not in route.methods:
                    raise graph_error(405, "Request_BadRequest",
                                      "Specified HTTP method is not allowed for the request target.", req)
                return route.handler(req, match)
        first = path.strip("/").split("/", 1)[0] or path
        # Graph answers an unknown segment with 400 (e.g. "Resource not found for the segment 'x'.").
        raise graph_error(400, "BadRequest", f"Resource not found for the segment '{first}'.", req)

    def _graph_routes(self) -> list[_Route]:
        def route(methods: str, pattern: str, handler: Callable[[ApiRequest, re.Match[str]], ApiResponse]) -> _Route:
            return _Route(frozenset(methods.split()), re.compile(pattern, re.IGNORECASE), handler)

        seg = r"([^/]+)"
        cast = r"(?:/(microsoft\.graph\.(?:user|group|orgContact)))?"
        return [
            route("POST", r"/\$batch", self._batch),
            route("GET", r"/organization", self._organization),
            route("GET", r"/users", lambda r, m: self._list_kind(r, "user")),
            route("GET", r"/users/\$count", lambda r, m: self._count_kind(r, "user")),
            route("GET", rf"/users/{seg}/(memberOf|transitiveMemberOf){cast}", self._member_of),
            route("GET", rf"/users/{seg}/authentication/methods", self._auth_methods),
            route("GET", rf"/users/{seg}/authentication/methods/{seg}", self._auth_method),
            route("GET DELETE PATCH", rf"/users/{seg}", self._user_item),
            route("GET", r"/groups", lambda r, m: self._list_kind(r, "group")),
            route("GET", r"/groups/\$count", lambda r, m: self._count_kind(r, "group")),
            route("GET", rf"/groups/{seg}/(members|transitiveMembers){cast}/\$count", self._members_count),
            route("GET", rf"/groups/{seg}/(members|transitiveMembers){cast}", self._members),
            route("POST", rf"/groups/{seg}/members/\$ref", self._add_member_ref),
            route("DELETE", rf"/groups/{seg}/members/{seg}/\$ref", self._remove_member_ref),
            route("GET", rf"/groups/{seg}/(memberOf|transitiveMemberOf){cast}", self._member_of),
            route("GET DELETE PATCH", rf"/groups/{seg}", self._group_item),
            route("GET", r"/contacts", lambda r, m: self._list_kind(r, "contact")),
            route("GET", rf"/contacts/{seg}", self._contact_item),
            route("GET", r"/directoryObjects/" + seg, self._directory_object),
            route("GET", r"/reports/authenticationMethods/userRegistrationDetails", self._registration_list),
            route("GET", rf"/reports/authenticationMethods/userRegistrationDetails/{seg}", self._registration_item),
            route("GET", r"/auditLogs/directoryAudits", self._audit_list),
            route("GET", rf"/auditLogs/directoryAudits/{seg}", self._audit_item),
        ]

    # -- query options

    def _context(self, req: ApiRequest, fragment: str) -> str:
        return f"{req.base_url}/{req.version}/$metadata#{fragment}"

    def _top(self, req: ApiRequest) -> int:
        raw = req.param("$top")
        if raw is None:
            return DEFAULT_PAGE
        try:
            top = int(raw)
        except ValueError:
            raise graph_error(400, "BadRequest", f"Invalid value '{raw}' for $top query option found.", req) from None
        if not 1 <= top <= MAX_PAGE:
            raise graph_error(400, "Request_UnsupportedQuery",
                              f"Invalid page size specified: '{top}'. Must be between 1 and {MAX_PAGE} inclusive.", req)
        return top

    def _eventual(self, req: ApiRequest) -> bool:
        return req.headers.get("consistencylevel", "").lower() == "eventual"

    def _count_requested(self, req: ApiRequest) -> bool:
        raw = req.param("$count")
        if raw is None:
            return False
        if raw.lower() not in {"true", "false"}:
            raise graph_error(400, "BadRequest", f"Invalid value '{raw}' for $count query option found.", req)
        return raw.lower() == "true"

    def _filter(self, req: ApiRequest, *, directory: bool) -> Condition | None:
        raw = req.param("$filter")
        if raw is None:
            return None
        try:
            info = parse_filter(raw)
        except FilterSyntaxError as exc:
            raise graph_error(400, "BadRequest",
                              f"Invalid filter clause: Syntax error at position {exc.position} in '{raw}'.",
                              req) from None
        if directory and info.advanced and not self._eventual(req):
            feature = sorted(info.advanced)[0]
            # Graph's advanced-query refusal (same family as the "Raw count ... header is missing"
            # message quoted in azurekid/ScEntra#13).
            raise graph_error(400, "Request_UnsupportedQuery",
                              f"Operator '{feature}' is not supported because the 'ConsistencyLevel:eventual' header "
                              "is missing. Refer to https://aka.ms/graph-docs/advanced-queries for more information",
                              req)
        if "contains" in info.advanced and directory:
            raise graph_error(400, "Request_UnsupportedQuery", "Unsupported Query.", req)
        return info.condition

    def _order(self, req: ApiRequest) -> list[tuple[str, bool]]:
        raw = req.param("$orderby")
        if not raw:
            return []
        result = []
        for part in raw.split(","):
            words = part.split()
            if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in {"asc", "desc"}):
                raise graph_error(400, "BadRequest", f"Invalid $orderby clause: '{raw}'.", req)
            result.append((words[0], len(words) == 2 and words[1].lower() == "desc"))
        return result

    def _select(self, req: ApiRequest, kinds: Iterable[str]) -> list[str] | None:
        raw = req.param("$select")
        if raw is None or not raw.strip():
            return None
        wanted = [p.strip() for p in raw.split(",") if p.strip()]
        kinds = list(kinds)
        for prop in wanted:
            if prop == "*":
                continue
            if not any(prop in self._known_properties(kind, req.version) for kind in kinds):
                type_name = _TYPE_NAMES.get(kinds[0], "microsoft.graph.directoryObject") if len(kinds) == 1 else \
                    "microsoft.graph.directoryObject"
                # Graph's wording for an unknown $select property.
                raise graph_error(400, "BadRequest", "Parsing OData Select and Expand failed: Could not find a "
                                  f"property named '{prop}' on type '{type_name}'.", req)
        return wanted

    def _known_properties(self, kind: str, version: str) -> frozenset[str]:
        if kind == "user":
            return USER_PROPERTIES
        if kind == "group":
            return GROUP_PROPERTIES | (GROUP_BETA_ONLY if version == "beta" else frozenset())
        return CONTACT_PROPERTIES

    def _project(self, item: Mapping[str, Any], select: Sequence[str] | None, version: str,
                 odata_type: bool = False) -> dict[str, Any]:
        kind = item.get("@kind", "user")
        if select is None or "*" in select:
            names: Sequence[str] = {"user": USER_DEFAULT, "group": GROUP_DEFAULT, "contact": CONTACT_DEFAULT}[kind]
            if kind == "group" and version == "beta":
                names = (*names, "writebackConfiguration")
        else:
            names = select
        out: dict[str, Any] = {"@odata.type": _ODATA_TYPES[kind]} if odata_type else {}
        for name in names:
            if kind == "group" and name in GROUP_BETA_ONLY and version != "beta":
                continue
            if name not in self._known_properties(kind, version):
                continue
            value = item.get(name)
            if value is None and name in _COLLECTIONS:
                value = []
            out[name] = value
        return out

    def _skiptoken(self, req: ApiRequest) -> str | None:
        raw = req.param("$skiptoken")
        if raw is None:
            return None
        try:
            data = json.loads(_b64url_decode(raw))
            return str(data["t"])
        except (ValueError, KeyError, TypeError):
            raise graph_error(400, "Request_BadRequest", "Invalid skip token.", req) from None

    def _next_link(self, req: ApiRequest, path: str, token: str | None) -> str | None:
        if token is None:
            return None
        encoded = _b64url(json.dumps({"t": token, "v": 1}).encode())
        params = [(k, v) for k, v in req.query if k.lower().lstrip("$") != "skiptoken"]
        params.append(("$skiptoken", encoded))
        query = "&".join(f"{urllib.parse.quote(k, safe='$')}={urllib.parse.quote(v, safe=chr(36) + ',()/:@')}"
                         for k, v in params)
        return f"{req.base_url}/{req.version}{path}?{query}"

    def _collection(self, req: ApiRequest, path: str, context: str, page: Page, items: list[dict[str, Any]],
                    count: bool) -> ApiResponse:
        body: dict[str, Any] = {"@odata.context": self._context(req, context)}
        if count:
            body["@odata.count"] = page.total
        next_link = self._next_link(req, path, page.next_token)
        if next_link:
            body["@odata.nextLink"] = next_link
        body["value"] = items
        return ApiResponse(200, body)

    def _store_query(self, req: ApiRequest, fn: Callable[[], Page]) -> Page:
        try:
            return fn()
        except UnsupportedQueryError as exc:
            raise graph_error(400, "Request_UnsupportedQuery",
                              f"Unsupported or invalid query filter clause specified for property "
                              f"'{exc.property_name}' of resource '{exc.resource}'.", req) from None
        except ValueError:
            raise graph_error(400, "Request_BadRequest", "Invalid skip token.", req) from None

    # -- directory object listings

    def _list_kind(self, req: ApiRequest, kind: str) -> ApiResponse:
        self._require_read(req, kind)
        select = self._select(req, [kind])
        where = self._filter(req, directory=True)
        order = self._order(req)
        count = self._count_requested(req)
        if count and not self._eventual(req):
            raise graph_error(400, "Request_BadRequest", "$count is not currently supported.", req)
        if order and where is not None and not self._eventual(req):
            raise graph_error(400, "Request_UnsupportedQuery",
                              "Sorting not supported for current query. Use 'ConsistencyLevel:eventual' header.", req)
        top = self._top(req)
        token = self._skiptoken(req)
        page = self._store_query(req, lambda: self.store.list_objects(
            kind=kind, where=where, order_by=order, limit=top, token=token, with_total=count))  # type: ignore[arg-type]
        items = [self._project(item, select, req.version) for item in page.items]
        name = {"user": "users", "group": "groups", "contact": "contacts"}[kind]
        context = f"{name}({','.join(select)})" if select else name
        return self._collection(req, f"/{name}", context, page, items, count)

    def _count_kind(self, req: ApiRequest, kind: str) -> ApiResponse:
        self._require_read(req, kind)
        if not self._eventual(req):
            raise graph_error(400, "Request_UnsupportedQuery",
                              "Raw count (/$count) is not supported because the 'ConsistencyLevel:eventual' header is "
                              "missing. Refer to https://aka.ms/graph-docs/advanced-queries for more information", req)
        where = self._filter(req, directory=True)
        total = self._store_query(req, lambda: self.store.list_objects(
            kind=kind, where=where, limit=1, with_total=True)).total  # type: ignore[arg-type]
        return ApiResponse(200, str(total or 0), content_type="text/plain")

    def _require_read(self, req: ApiRequest, kind: str) -> None:
        roles = {"user": ("User.Read.All", "User.ReadWrite.All"), "group": ("Group.Read.All", "Group.ReadWrite.All"),
                 "contact": ("OrgContact.Read.All",)}.get(kind, ())
        self._require(req, "Directory.Read.All", "Directory.ReadWrite.All", *roles)

    def _object_or_404(self, req: ApiRequest, ident: str, kind: str | None) -> dict[str, Any]:
        if kind == "user":
            item = self.store.get_user(id_or_upn=ident)
        else:
            item = self.store.get_object(object_id=ident, kind=kind)  # type: ignore[arg-type]
        if item is None:
            raise graph_error(404, "Request_ResourceNotFound",
                              f"Resource '{ident}' does not exist or one of its queried reference-property objects "
                              "are not present.", req)
        return item

    def _user_item(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        ident = match.group(1)
        if req.method == "GET":
            self._require_read(req, "user")
            select = self._select(req, ["user"])
            user = self._object_or_404(req, ident, "user")
            body = {"@odata.context": self._context(req, f"users({','.join(select)})/$entity" if select
                                                    else "users/$entity"),
                    **self._project(user, select, req.version)}
            return ApiResponse(200, body)
        self._require(req, "User.ReadWrite.All", "Directory.ReadWrite.All")
        user = self._object_or_404(req, ident, "user")
        if user.get("onPremisesSyncEnabled"):
            raise graph_error(400, "Request_BadRequest", ON_PREM_PROPERTIES_ERROR, req)
        if req.method == "DELETE":
            self.store.delete_object(object_id=user["id"])
            self._audit(req, "Delete user", "UserManagement", "Delete", user, "User")
            return ApiResponse(204)
        changes = self._patch_body(req, {"displayName", "jobTitle", "department", "givenName", "surname",
                                         "officeLocation", "usageLocation", "accountEnabled", "mobilePhone",
                                         "companyName", "employeeId", "city", "country"}, "User")
        self.store.update_object(object_id=user["id"], properties=changes)
        self._audit(req, "Update user", "UserManagement", "Update", user, "User", changes)
        return ApiResponse(204)

    def _patch_body(self, req: ApiRequest, allowed: set[str], resource: str) -> dict[str, Any]:
        try:
            body = req.json()
        except ValueError:
            raise graph_error(400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type "
                              "header is set and payload is of valid JSON format.", req) from None
        if not isinstance(body, dict):
            raise graph_error(400, "BadRequest", "Empty Payload. JSON content expected.", req)
        for key in body:
            if key not in allowed and not key.startswith("@"):
                raise graph_error(400, "Request_BadRequest", f"Property '{key}' does not exist as a declared property "
                                  f"or extension property.", req)
        return {k: v for k, v in body.items() if not k.startswith("@")}

    def _group_item(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        ident = match.group(1)
        if req.method == "GET":
            self._require_read(req, "group")
            select = self._select(req, ["group"])
            group = self._object_or_404(req, ident, "group")
            body = {"@odata.context": self._context(req, f"groups({','.join(select)})/$entity" if select
                                                    else "groups/$entity"),
                    **self._project(group, select, req.version)}
            return ApiResponse(200, body)
        self._require(req, "Group.ReadWrite.All", "Directory.ReadWrite.All")
        group = self._object_or_404(req, ident, "group")
        if group.get("onPremisesSyncEnabled"):
            raise graph_error(400, "Request_BadRequest", ON_PREM_PROPERTIES_ERROR, req)
        if req.method == "DELETE":
            self.store.delete_object(object_id=group["id"])
            self._audit(req, "Delete group", "GroupManagement", "Delete", group, "Group")
            return ApiResponse(204)
        allowed = {"displayName", "description", "mailNickname", "visibility"}
        if req.version == "beta":
            allowed.add("writebackConfiguration")
        changes = self._patch_body(req, allowed, "Group")
        if _is_exchange_managed(group):
            raise graph_error(400, "Request_BadRequest", DL_UPDATE_ERROR, req)
        if "writebackConfiguration" in changes:
            changes["writebackConfiguration"] = self._writeback_change(req, group, changes["writebackConfiguration"])
        self.store.update_object(object_id=group["id"], properties=changes)
        self._audit(req, "Update group", "GroupManagement", "Update", group, "Group", changes)
        return ApiResponse(204)

    def _writeback_change(self, req: ApiRequest, group: Mapping[str, Any], change: Any) -> dict[str, Any]:
        if not isinstance(change, dict) or set(change) - {"isEnabled", "onPremisesGroupType", "@odata.type"}:
            raise graph_error(400, "Request_BadRequest", "Invalid value specified for property 'writebackConfiguration'"
                              " of resource 'Group'.", req)
        merged = {**(group.get("writebackConfiguration") or {"isEnabled": None, "onPremisesGroupType": None})}
        if "isEnabled" in change:
            if change["isEnabled"] is not None and not isinstance(change["isEnabled"], bool):
                raise graph_error(400, "Request_BadRequest", "Invalid value specified for property 'isEnabled' of "
                                  "resource 'GroupWritebackConfiguration'.", req)
            merged["isEnabled"] = change["isEnabled"]
        if "onPremisesGroupType" in change:
            value = change["onPremisesGroupType"]
            unified = "Unified" in (group.get("groupTypes") or [])
            # Microsoft 365 groups may be written back as any of the three types; security groups
            # only as security groups (Graph beta, groupWritebackConfiguration resource).
            allowed = WRITEBACK_GROUP_TYPES if unified else ("universalSecurityGroup",)
            if value is not None and value not in allowed:
                raise graph_error(400, "Request_BadRequest", "Invalid value specified for property "
                                  "'onPremisesGroupType' of resource 'GroupWritebackConfiguration'.", req)
            merged["onPremisesGroupType"] = value
        return merged

    def _contact_item(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require_read(req, "contact")
        select = self._select(req, ["contact"])
        contact = self._object_or_404(req, match.group(1), "contact")
        return ApiResponse(200, {"@odata.context": self._context(req, "contacts/$entity"),
                                 **self._project(contact, select, req.version)})

    def _directory_object(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require(req, "Directory.Read.All", "Directory.ReadWrite.All")
        item = self._object_or_404(req, match.group(1), None)
        return ApiResponse(200, {"@odata.context": self._context(req, "directoryObjects/$entity"),
                                 **self._project(item, None, req.version, odata_type=True)})

    def _members(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require_read(req, "group")
        group = self._object_or_404(req, match.group(1), "group")
        relation, cast = match.group(2), match.group(3)
        return self._related(req, relation, cast, group["id"], f"/groups/{match.group(1)}/{relation}"
                             + (f"/{cast}" if cast else ""), transitive=relation.lower() == "transitivemembers")

    def _members_count(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require_read(req, "group")
        if not self._eventual(req):
            raise graph_error(400, "Request_UnsupportedQuery",
                              "Raw count (/$count) is not supported because the 'ConsistencyLevel:eventual' header is "
                              "missing. Refer to https://aka.ms/graph-docs/advanced-queries for more information", req)
        group = self._object_or_404(req, match.group(1), "group")
        kind = _CASTS.get((match.group(3) or "").lower())
        ids = (self.store.transitive_member_ids(group_id=group["id"]) if match.group(2).lower() == "transitivemembers"
               else self.store.member_ids(group_id=group["id"]))
        where = self._filter(req, directory=True)
        total = self._store_query(req, lambda: self.store.list_objects(
            kind=kind, where=where, restrict_ids=ids, limit=1, with_total=True,  # type: ignore[arg-type]
            spec_name=kind or "directoryObject")).total
        return ApiResponse(200, str(total or 0), content_type="text/plain")

    def _member_of(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require(req, "Directory.Read.All", "Directory.ReadWrite.All", "GroupMember.Read.All",
                      "Group.Read.All", "Group.ReadWrite.All", "User.Read.All")
        base = "users" if req.path.lower().split("/")[2] == "users" else "groups"
        item = self._object_or_404(req, match.group(1), "user" if base == "users" else "group")
        relation, cast = match.group(2), match.group(3)
        transitive = relation.lower() == "transitivememberof"
        ids = (self.store.transitive_group_ids_of(member_id=item["id"]) if transitive
               else self.store.group_ids_of(member_id=item["id"]))
        return self._related(req, relation, cast, None, f"/{base}/{match.group(1)}/{relation}"
                             + (f"/{cast}" if cast else ""), ids=ids)

    def _related(self, req: ApiRequest, relation: str, cast: str | None, group_id: str | None, path: str, *,
                 transitive: bool = False, ids: Sequence[str] | None = None) -> ApiResponse:
        kind = _CASTS.get((cast or "").lower())
        kinds = [kind] if kind else ["user", "group", "contact"]
        select = self._select(req, kinds)
        where = self._filter(req, directory=True)
        count = self._count_requested(req)
        if count and not self._eventual(req):
            raise graph_error(400, "Request_BadRequest", "$count is not currently supported.", req)
        top = self._top(req)
        token = self._skiptoken(req)
        if ids is None and transitive and group_id:
            ids = self.store.transitive_member_ids(group_id=group_id)
        page = self._store_query(req, lambda: self.store.list_objects(
            kind=kind, where=where, limit=top, token=token, with_total=count,  # type: ignore[arg-type]
            restrict_ids=ids, member_of=group_id if ids is None else None, spec_name=kind or "directoryObject"))
        items = [self._project(item, select, req.version, odata_type=True) for item in page.items]
        context = {"user": "users", "group": "groups", "contact": "contacts"}.get(kind or "", "directoryObjects")
        if select:
            context += f"({','.join(select)})"
        return self._collection(req, path, context, page, items, count)

    def _add_member_ref(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require(req, "Group.ReadWrite.All", "Directory.ReadWrite.All", "GroupMember.ReadWrite.All")
        group = self._object_or_404(req, match.group(1), "group")
        body = req.json() if req.body else None
        ref = body.get("@odata.id") if isinstance(body, dict) else None
        if not isinstance(ref, str) or "/" not in ref:
            raise graph_error(400, "BadRequest", "Invalid object identifier '@odata.id'.", req)
        member_id = ref.rstrip("/").rsplit("/", 1)[-1]
        member = self._object_or_404(req, member_id, None)
        if group.get("onPremisesSyncEnabled"):
            raise graph_error(400, "Request_BadRequest", ON_PREM_PROPERTIES_ERROR, req)
        if _is_exchange_managed(group):
            raise graph_error(400, "Request_BadRequest", DL_UPDATE_ERROR, req)
        if not self.store.add_member(group_id=group["id"], member_id=member["id"]):
            raise graph_error(400, "Request_BadRequest", "One or more added object references already exist for the "
                              "following modified properties: 'members'.", req)
        self._audit(req, "Add member to group", "GroupManagement", "Assign", group, "Group",
                    extra_target=member)
        return ApiResponse(204)

    def _remove_member_ref(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require(req, "Group.ReadWrite.All", "Directory.ReadWrite.All", "GroupMember.ReadWrite.All")
        group = self._object_or_404(req, match.group(1), "group")
        if group.get("onPremisesSyncEnabled"):
            raise graph_error(400, "Request_BadRequest", ON_PREM_PROPERTIES_ERROR, req)
        if _is_exchange_managed(group):
            raise graph_error(400, "Request_BadRequest", DL_UPDATE_ERROR, req)
        if not self.store.remove_member(group_id=group["id"], member_id=match.group(2)):
            raise graph_error(404, "Request_ResourceNotFound", f"Resource '{match.group(2)}' does not exist or one of "
                              "its queried reference-property objects are not present.", req)
        self._audit(req, "Remove member from group", "GroupManagement", "Unassign", group, "Group")
        return ApiResponse(204)

    def _organization(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        domains = self.store.list_accepted_domains()
        org = {
            "id": self.tenant_id, "displayName": "Contoso (lab)", "tenantType": "AAD",
            "onPremisesSyncEnabled": True,
            "verifiedDomains": [{"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": bool(d["Default"]),
                                 "isInitial": bool(d["InitialDomain"]), "name": d["DomainName"], "type": "Managed"}
                                for d in domains],
        }
        return ApiResponse(200, {"@odata.context": self._context(req, "organization"), "value": [org]})

    # -- authentication methods, registration report, audit log

    def _auth_methods(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require(req, "UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All")
        user = self._object_or_404(req, match.group(1), "user")
        methods = self.store.list_auth_methods(user_id=user["id"])
        return ApiResponse(200, {"@odata.context": self._context(req, f"users('{match.group(1)}')/authentication/"
                                                                      "methods"), "value": methods})

    def _auth_method(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require(req, "UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All")
        user = self._object_or_404(req, match.group(1), "user")
        for method in self.store.list_auth_methods(user_id=user["id"]):
            if method["id"] == match.group(2):
                return ApiResponse(200, {"@odata.context": self._context(
                    req, f"users('{match.group(1)}')/authentication/methods/$entity"), **method})
        raise graph_error(404, "itemNotFound", f"The requested authentication method '{match.group(2)}' was not found.",
                          req)

    def _premium(self, req: ApiRequest) -> None:
        if not self.store.settings().premium_licence:
            # Graph's answer without Entra ID P1/P2 (microsoftgraph/microsoft-graph-docs-contrib#8777, #3808).
            raise graph_error(403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                              "Neither tenant is B2C or tenant doesn't have premium license", req)

    def _registration_list(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require(req, "AuditLog.Read.All")
        self._premium(req)
        where = self._filter(req, directory=False)
        order = self._order(req)
        top = self._top(req)
        token = self._skiptoken(req)
        count = self._count_requested(req)
        page = self._store_query(req, lambda: self.store.list_registration_details(
            where=where, order_by=order, limit=top, token=token, with_total=count))
        return self._collection(req, "/reports/authenticationMethods/userRegistrationDetails",
                                "reports/authenticationMethods/userRegistrationDetails", page, page.items, count)

    def _registration_item(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require(req, "AuditLog.Read.All")
        self._premium(req)
        page = self.store.list_registration_details(where=Compare(("id",), "eq", match.group(1).lower()), limit=1)
        if not page.items:
            raise graph_error(404, "Request_ResourceNotFound", f"Resource '{match.group(1)}' does not exist or one of "
                              "its queried reference-property objects are not present.", req)
        return ApiResponse(200, {"@odata.context": self._context(
            req, "reports/authenticationMethods/userRegistrationDetails/$entity"), **page.items[0]})

    def _audit_list(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require(req, "AuditLog.Read.All")
        where = self._filter(req, directory=False)
        order = self._order(req) or [("activityDateTime", True)]
        top = self._top(req)
        token = self._skiptoken(req)
        page = self._store_query(req, lambda: self.store.list_audit_events(
            where=where, order_by=order, limit=top, token=token))
        return self._collection(req, "/auditLogs/directoryAudits", "auditLogs/directoryAudits", page, page.items,
                                False)

    def _audit_item(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require(req, "AuditLog.Read.All")
        page = self.store.list_audit_events(where=Compare(("id",), "eq", match.group(1)), limit=1)
        if not page.items:
            raise graph_error(404, "Request_ResourceNotFound", f"Resource '{match.group(1)}' does not exist or one of "
                              "its queried reference-property objects are not present.", req)
        return ApiResponse(200, {"@odata.context": self._context(req, "auditLogs/directoryAudits/$entity"),
                                 **page.items[0]})

    def _audit(self, req: ApiRequest, activity: str, category: str, operation: str, target: Mapping[str, Any],
               target_type: str, changes: Mapping[str, Any] | None = None,
               extra_target: Mapping[str, Any] | None = None) -> None:
        claims = req.claims or {}
        targets = [{"id": target["id"], "displayName": target.get("displayName"), "type": target_type,
                    "userPrincipalName": target.get("userPrincipalName"),
                    "modifiedProperties": [{"displayName": k, "oldValue": json.dumps(target.get(k)),
                                            "newValue": json.dumps(v)} for k, v in (changes or {}).items()]}]
        if extra_target:
            targets.append({"id": extra_target["id"], "displayName": extra_target.get("displayName"),
                            "type": extra_target.get("@kind", "").capitalize(),
                            "userPrincipalName": extra_target.get("userPrincipalName")})
        self.store.add_audit_event(
            activity_display_name=activity, category=category, operation_type=operation,
            initiated_by={"app": {"appId": claims.get("appid"), "displayName": "DirOps Portal (lab)",
                                  "servicePrincipalId": claims.get("oid"), "servicePrincipalName": None},
                          "user": None},
            target_resources=targets,
        )

    # -- $batch

    def _batch(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        try:
            payload = req.json()
        except ValueError:
            payload = None
        requests = payload.get("requests") if isinstance(payload, dict) else None
        if not isinstance(requests, list) or not requests:
            raise graph_error(400, "BadRequest", "Invalid batch payload format.", req)
        if len(requests) > MAX_BATCH:
            # Wording of the Graph SDKs' own check (MaximumValueExceeded); the service's text could
            # not be confirmed.
            raise graph_error(400, "BadRequest",
                              f"Number of batch request steps exceeds the maximum value of {MAX_BATCH}.", req)
        ids = [str(item.get("id")) if isinstance(item, dict) else None for item in requests]
        if None in ids or len(set(ids)) != len(ids):
            raise graph_error(400, "BadRequest", "Batch request ids must be present and unique.", req)
        statuses: dict[str, int] = {}
        responses = []
        for item in requests:
            rid = str(item["id"])
            depends = item.get("dependsOn") or []
            if any(statuses.get(str(d), 0) >= 400 or str(d) not in statuses for d in depends):
                statuses[rid] = 424
                responses.append({"id": rid, "status": 424, "headers": {"Content-Type": "application/json"},
                                  "body": graph_error(424, "BadRequest", "Failed dependency", req).response.body})
                continue
            sub = self._batch_item(req, item)
            statuses[rid] = sub.status
            entry: dict[str, Any] = {"id": rid, "status": sub.status,
                                     "headers": {k: v for k, v in sub.headers.items()
                                                 if k.lower() not in {"request-id", "client-request-id"}}}
            if sub.body is not None:
                if isinstance(sub.body, str):
                    entry["headers"]["Content-Type"] = "text/plain"
                    entry["body"] = sub.body
                else:
                    entry["headers"]["Content-Type"] = "application/json; odata.metadata=minimal"
                    entry["body"] = sub.body
            responses.append(entry)
        return ApiResponse(200, {"responses": responses})

    def _batch_item(self, req: ApiRequest, item: Mapping[str, Any]) -> ApiResponse:
        url = str(item.get("url") or "")
        method = str(item.get("method") or "GET").upper()
        parsed = urllib.parse.urlsplit(url)
        path = parsed.path if not parsed.scheme else parsed.path
        path = "/" + path.lstrip("/")
        # A step's url is relative to the batch's version; SDKs sometimes keep the version prefix.
        version = req.version
        for prefix in ("/v1.0/", "/beta/"):
            if path.lower().startswith(prefix):
                version = prefix.strip("/")
                path = path[len(prefix) - 1:]
        body = item.get("body")
        sub = ApiRequest(
            method=method, path=f"/{version}{path}",
            query=urllib.parse.parse_qsl(parsed.query, keep_blank_values=True),
            headers={**{k.lower(): str(v) for k, v in (item.get("headers") or {}).items()},
                     "authorization": req.headers.get("authorization", "")},
            body=json.dumps(body).encode() if body is not None else b"",
            base_url=req.base_url, claims=req.claims, version=version,
        )
        try:
            return self._graph_dispatch(sub, path)
        except ApiError as error:
            return error.response

    def _not_found_path(self, req: ApiRequest) -> ApiError:
        # Graph's answer when no service owns the path (observed: 404 "ResourceNotFound",
        # "Resource could not be discovered.").
        return graph_error(404, "ResourceNotFound", "Resource could not be discovered.", req)

    # ------------------------------------------------------------------------------------------
    # Exchange Online admin API

    def _exchange_entry(self, req: ApiRequest) -> ApiResponse:
        match = re.fullmatch(r"/adminapi/beta/([^/]+)/InvokeCommand", req.path, re.IGNORECASE)
        if not match:
            raise self._not_found_path(req)
        challenge = {"WWW-Authenticate": f'Bearer client_id="{EXCHANGE_APP_ID}", trusted_issuers="00000001-0000-0000-'
                                         'c000-000000000000@*", token_types="app_asserted_user_v1 '
                                         'service_asserted_app_v1", authorization_uri="https://login.microsoftonline.'
                                         'com/common/oauth2/authorize", error="invalid_token"'}
        header = req.headers.get("authorization", "")
        # Exchange answers token problems with an empty 401 and its challenge header.
        if not header.lower().startswith("bearer "):
            raise ApiError(ApiResponse(401, None, challenge))
        try:
            claims = verify_access_token(header[7:].strip(), key=self._key)
        except TokenError:
            raise ApiError(ApiResponse(401, None, challenge)) from None
        if (str(claims.get("tid", "")).lower() != self.tenant_id or claims.get("aud") not in
                {EXCHANGE_RESOURCE, EXCHANGE_APP_ID} or not self._is_our_tenant(match.group(1))):
            raise ApiError(ApiResponse(401, None, challenge))
        if "Exchange.ManageAsApp" not in (claims.get("roles") or []):
            raise ApiError(ApiResponse(403, {"error": {"code": "Forbidden", "message": "The role assigned to "
                                                       "application isn't supported in this scenario."}}))
        req.claims = claims
        self._apply_faults("exchange", req)
        if req.method != "POST":
            raise ApiError(ApiResponse(405, {"error": {"code": "MethodNotAllowed", "message": "Use POST."}}))
        try:
            payload = req.json()
        except ValueError:
            payload = None
        cmdlet_input = payload.get("CmdletInput") if isinstance(payload, dict) else None
        if not isinstance(cmdlet_input, dict) or not isinstance(cmdlet_input.get("CmdletName"), str):
            raise ApiError(ApiResponse(400, {"error": {"code": "BadRequest", "message": "The request body must be "
                                       "{\"CmdletInput\": {\"CmdletName\": ..., \"Parameters\": {...}}}."}}))
        name = cmdlet_input["CmdletName"].strip()
        params = cmdlet_input.get("Parameters") or {}
        if not isinstance(params, dict):
            raise ApiError(ApiResponse(400, {"error": {"code": "BadRequest", "message": "Parameters must be an "
                                       "object."}}))
        spec = _EXCHANGE_CMDLETS.get(name.lower())
        if spec is None:
            if self.store.settings().exchange_unknown_cmdlet == "blank403":
                # What the service has been measured to answer (a body of NUL bytes); the lab sends none.
                return ApiResponse(403, None)
            return exchange_error_response(ExchangeError("System.Management.Automation.CommandNotFoundException",
                                                         command_not_found(name)), req)
        try:
            bound = _bind_parameters(spec, params)
            result = spec.handler(self, bound, req)
        except ExchangeError as error:
            return exchange_error_response(error, req)
        except ConflictError as conflict:
            return exchange_error_response(ExchangeError(
                "Microsoft.Exchange.Data.Directory.ProxyAddressExistsException",
                f'The proxy address "{conflict.value}" is already being used by the proxy addresses or '
                "LegacyExchangeDN. Please choose another proxy address."), req)
        rows, warnings = (result if isinstance(result, tuple) else (result, []))
        return self._exchange_page(req, name, rows, warnings)

    def _exchange_page(self, req: ApiRequest, name: str, rows: list[dict[str, Any]],
                       warnings: list[str]) -> ApiResponse:
        prefer = req.headers.get("prefer", "")
        size_match = re.search(r"odata\.maxpagesize=(\d+)", prefer)
        size = max(1, min(int(size_match.group(1)), 10000)) if size_match else EXCHANGE_DEFAULT_PAGE
        offset = 0
        skip = req.param("$skiptoken")
        if skip:
            with contextlib.suppress(ValueError):
                offset = int(json.loads(_b64url_decode(skip))["o"])
        page = rows[offset:offset + size]
        body: dict[str, Any] = {
            "@odata.context": f"{req.base_url}/adminapi/beta/{self.tenant_id}/$metadata#Collection("
                              "Exchange.GenericHashTable)",
            "@adminapi.warnings": warnings if offset == 0 else [],
        }
        if offset + size < len(rows):
            token = _b64url(json.dumps({"o": offset + size}).encode())
            body["@odata.nextLink"] = f"{req.base_url}/adminapi/beta/{self.tenant_id}/InvokeCommand?$skiptoken={token}"
        body["value"] = page
        headers = {"X-CmdletName": name}
        if warnings and offset == 0:
            headers["X-Warnings"] = " ".join(warnings)
        return ApiResponse(200, body, headers)

    # -- recipient helpers

    def _resolve_one(self, identity: Any, types: Iterable[str] | None, *, member: bool = False) -> dict[str, Any]:
        text = str(identity)
        found = self.store.resolve_recipients(identity=text, types=types)
        if not found:
            raise member_not_found(text) if member else not_found(text)
        if len(found) > 1:
            raise ambiguous(text)
        return found[0]

    def _resolve_many(self, identities: Any) -> list[str]:
        values = identities if isinstance(identities, list) else [identities]
        return [self._resolve_one(v, None, member=True)["@id"] for v in values if v not in (None, "")]

    def _render(self, rec: Mapping[str, Any], names: Mapping[str, str] | None = None) -> dict[str, Any]:
        """A recipient as the cmdlets return it: link ids become names, Identity/Id the name."""
        names = names if names is not None else self._link_names([rec])
        # The identifying properties first, as the cmdlets list them.
        out = {k: rec[k] for k in _RENDER_FIRST if k in rec}
        out.update((k, v) for k, v in rec.items() if not k.startswith("@") and k not in out)
        for prop in RECIPIENT_LINK_PROPERTIES:
            out[prop] = [names.get(i, i) for i in rec.get(prop) or []]
        groups = self._group_ids_among([i for prop in ("AcceptMessagesOnlyFromSendersOrMembers",
                                                       "RejectMessagesFromSendersOrMembers")
                                        for i in rec.get(prop) or []])
        for verb in ("Accept", "Reject"):
            key = ("AcceptMessagesOnlyFromSendersOrMembers" if verb == "Accept"
                   else "RejectMessagesFromSendersOrMembers")
            base = "AcceptMessagesOnlyFrom" if verb == "Accept" else "RejectMessagesFrom"
            out[base] = [names.get(i, i) for i in rec.get(key) or [] if i not in groups]
            out[f"{base}DLMembers"] = [names.get(i, i) for i in rec.get(key) or [] if i in groups]
        out["Identity"] = rec["Name"]
        out["Id"] = rec["Name"]
        return out

    def _group_ids_among(self, ids: Sequence[str]) -> set[str]:
        found = self.store.recipients_by_ids(ids)
        return {i for i, r in found.items() if r["RecipientTypeDetails"] in GROUP_RECIPIENT_TYPES}

    def _link_names(self, recs: Iterable[Mapping[str, Any]]) -> dict[str, str]:
        ids = {i for rec in recs for prop in RECIPIENT_LINK_PROPERTIES for i in rec.get(prop) or []}
        return {i: r["Name"] for i, r in self.store.recipients_by_ids(ids).items()}

    def _render_all(self, recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        names = self._link_names(recs)
        return [self._render(rec, names) for rec in recs]

    def _opath_getter(self, rec: Mapping[str, Any], dns: dict[str, str]) -> Callable[[str], Any]:
        def get(prop: str) -> Any:
            if prop in RECIPIENT_LINK_PROPERTIES:
                return [dns.get(i, "") for i in rec.get(prop) or []]
            if prop == "MemberOfGroup":
                object_id = rec.get("ExternalDirectoryObjectId")
                if not object_id:
                    return []
                group_ids = self.store.group_ids_of(member_id=object_id)
                return [r["DistinguishedName"] for r in self.store.recipients_by_object_ids(group_ids).values()]
            if prop in {"AcceptMessagesOnlyFrom", "AcceptMessagesOnlyFromDLMembers"}:
                return [dns.get(i, "") for i in rec.get("AcceptMessagesOnlyFromSendersOrMembers") or []]
            if prop in {"RejectMessagesFrom", "RejectMessagesFromDLMembers"}:
                return [dns.get(i, "") for i in rec.get("RejectMessagesFromSendersOrMembers") or []]
            if prop == "Identity":
                return rec.get("Name")
            return rec.get(prop)

        return get

    def _query_recipients(self, bound: Mapping[str, Any], types: frozenset[str], cmdlet: str
                          ) -> tuple[list[dict[str, Any]], list[str]]:
        if "Identity" in bound and "Filter" in bound:
            raise ExchangeError("System.Management.Automation.ParameterBindingException",
                                "Parameter set cannot be resolved using the specified named parameters.")
        wanted_types = types
        if "RecipientTypeDetails" in bound:
            requested = bound["RecipientTypeDetails"]
            requested = requested if isinstance(requested, list) else [requested]
            wanted_types = frozenset(t for t in requested if t in types) or frozenset({"__none__"})
        if "Identity" in bound:
            found = self.store.resolve_recipients(identity=str(bound["Identity"]), types=wanted_types)
            if not found:
                raise not_found(str(bound["Identity"]))
            return self._render_all(found), []
        recs = list(self.store.iter_recipients(types=wanted_types))
        if bound.get("ManagedBy"):
            manager = self._resolve_one(bound["ManagedBy"], None, member=True)["@id"]
            recs = [rec for rec in recs if manager in (rec.get("ManagedBy") or [])]
        if bound.get("Anr"):
            # Ambiguous name resolution: a prefix of the name, display name, alias or an address.
            prefix = str(bound["Anr"]).lower()
            recs = [rec for rec in recs if any(str(rec.get(k) or "").lower().startswith(prefix) for k in
                                               ("Name", "DisplayName", "Alias", "PrimarySmtpAddress"))]
        if "Filter" in bound and bound["Filter"]:
            known = {p.lower(): p for rec in recs[:1] for p in rec if not p.startswith("@")}
            known.update({p.lower(): p for p in _OPATH_EXTRA})
            try:
                tree = parse_opath(str(bound["Filter"]), known=lambda name: known.get(name.lower()) or
                                   _FILTERABLE_ALWAYS.get(name.lower()))
            except OpathError as exc:
                raise ExchangeError("System.Management.Automation.ParameterBindingException", exc.message) from None
            link_ids = {i for rec in recs for prop in RECIPIENT_LINK_PROPERTIES for i in rec.get(prop) or []}
            dns = {i: r["DistinguishedName"] for i, r in self.store.recipients_by_ids(link_ids).items()}
            recs = [rec for rec in recs if _opath_match(tree, self._opath_getter(rec, dns))]
        if bound.get("SortBy"):
            key = str(bound["SortBy"]).lstrip("-+")
            recs.sort(key=lambda rec: str(rec.get(key) or "").lower(), reverse=str(bound["SortBy"]).startswith("-"))
        size, unlimited = _result_size(bound)
        warnings = []
        if not unlimited and len(recs) > size:
            recs = recs[:size]
            # Exchange's warning when -ResultSize (default 1000) cut the output.
            warnings.append("There are more results available than are currently displayed. To view them, increase "
                            "the value for the ResultSize parameter.")
        return self._render_all(recs), warnings

    def _ensure_cloud_managed(self, rec: Mapping[str, Any], cmdlet: str, prop: str | None) -> None:
        if rec.get("IsDirSynced"):
            raise synced_object(cmdlet, prop, rec["Name"])

    def _check_smtp(self, address: str) -> None:
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", address):
            raise ExchangeError("Microsoft.Exchange.Data.DataValidationException",
                                f'The email address "{address}" isn\'t correct. Please use this format: user name, the '
                                "@ sign, followed by the domain name. For example, tonysmith@contoso.com or "
                                "tony.smith@contoso.com.")
        domain = address.split("@", 1)[1].lower()
        accepted = {d["DomainName"].lower() for d in self.store.list_accepted_domains()}
        if domain not in accepted:
            # Lab wording; the exact Exchange text for a non-accepted domain was not confirmed.
            raise ExchangeError("Microsoft.Exchange.Data.DataValidationException",
                                f"The domain '{domain}' of the address '{address}' isn't an accepted domain for your "
                                "organization.")

    def _check_address_free(self, addresses: Iterable[str], own_ids: Iterable[str]) -> None:
        own = {i.lower() for i in own_ids if i}
        for address in addresses:
            if not address.lower().startswith("smtp:"):
                continue
            for rec in self.store.resolve_recipients(identity=address):
                if rec["@id"] not in own and rec.get("ExternalDirectoryObjectId") not in own:
                    raise ExchangeError(
                        "Microsoft.Exchange.Data.Directory.ProxyAddressExistsException",
                        f'The proxy address "{address}" is already being used by the proxy addresses or '
                        f'LegacyExchangeDN of "{rec["Name"]}". Please choose another proxy address.')
            for obj in self.store.find_objects_by_address(address=address):
                if obj["id"] not in own:
                    raise ExchangeError(
                        "Microsoft.Exchange.Data.Directory.ProxyAddressExistsException",
                        f'The proxy address "{address}" is already being used by the proxy addresses or '
                        f'LegacyExchangeDN of "{obj.get("mailNickname") or obj["id"]}". Please choose another proxy '
                        "address.")

    def _sync_group_object(self, rec: Mapping[str, Any]) -> None:
        """Keep the Entra group of a cloud DL in step with Exchange (what forward sync does)."""
        object_id = rec.get("ExternalDirectoryObjectId")
        if not object_id:
            return
        smtp = [a for a in rec["EmailAddresses"] if a.lower().startswith("smtp:")]
        with contextlib.suppress(Exception):
            self.store.update_object(object_id=object_id, properties={
                "displayName": rec["DisplayName"], "mail": rec["PrimarySmtpAddress"], "mailNickname": rec["Alias"],
                "proxyAddresses": smtp})

    # -- cmdlets

    def cmd_get_recipient(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        return self._query_recipients(bound, MAIL_RECIPIENT_TYPES, "Get-Recipient")

    def cmd_get_mailbox(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        return self._query_recipients(bound, MAILBOX_RECIPIENT_TYPES, "Get-Mailbox")

    def cmd_get_mail_user(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        return self._query_recipients(bound, MAIL_USER_RECIPIENT_TYPES, "Get-MailUser")

    def cmd_get_mail_contact(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        return self._query_recipients(bound, CONTACT_RECIPIENT_TYPES, "Get-MailContact")

    def cmd_get_distribution_group(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        return self._query_recipients(bound, GROUP_RECIPIENT_TYPES, "Get-DistributionGroup")

    def cmd_get_distribution_group_member(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        group = self._resolve_one(bound["Identity"], GROUP_RECIPIENT_TYPES)
        member_ids = self.store.member_ids(group_id=group["ExternalDirectoryObjectId"]) \
            if group.get("ExternalDirectoryObjectId") else []
        by_object = self.store.recipients_by_object_ids(member_ids)
        rows: list[dict[str, Any]] = []
        names = self._link_names(by_object.values())
        for object_id in member_ids:
            rec = by_object.get(object_id)
            if rec is not None:
                rows.append(self._render(rec, names))
                continue
            obj = self.store.get_object(object_id=object_id)
            if obj is None:
                continue
            # A member without an Exchange recipient shows as a plain User.
            name = obj.get("mailNickname") or obj.get("displayName") or object_id
            rows.append({"Name": name, "DisplayName": obj.get("displayName"), "Alias": obj.get("mailNickname"),
                         "Identity": name, "Id": name, "PrimarySmtpAddress": obj.get("mail") or "",
                         "RecipientType": "User", "RecipientTypeDetails": "User",
                         "ExternalDirectoryObjectId": object_id, "IsDirSynced": bool(obj.get("onPremisesSyncEnabled")),
                         "EmailAddresses": []})
        size, unlimited = _result_size(bound)
        warnings = []
        if not unlimited and len(rows) > size:
            rows = rows[:size]
            warnings.append("There are more results available than are currently displayed. To view them, increase "
                            "the value for the ResultSize parameter.")
        return rows, warnings

    def cmd_new_distribution_group(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        name = str(bound["Name"]).strip()
        if self.store.resolve_recipients(identity=name):
            # Lab wording for a name already taken (Exchange's exact text was not confirmed).
            raise ExchangeError("Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException",
                                f'The name "{name}" is already being used. Please try another name.')
        alias = str(bound.get("Alias") or re.sub(r"[^A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]", "", name))[:64]
        domain = self.store.default_domain() or self.initial_domain
        primary = str(bound.get("PrimarySmtpAddress") or f"{alias}@{domain}")
        self._check_smtp(primary)
        addresses = [f"SMTP:{primary}"]
        moera = f"smtp:{alias}@{self.initial_domain}"
        if moera.lower() != f"smtp:{primary}".lower():
            addresses.append(moera)
        self._check_address_free(addresses, [])
        kind = str(bound.get("Type") or "Distribution")
        if kind.lower() not in {"distribution", "security"}:
            raise ExchangeError("System.Management.Automation.ParameterBindingException",
                                f"Cannot bind parameter 'Type'. Cannot convert value \"{kind}\" to type "
                                "\"Microsoft.Exchange.Data.Directory.Recipient.GroupType\". Error: \"Unable to match "
                                f"the identifier name {kind} to a valid enumerator name. Specify one of the following "
                                "enumerator names and try again:\nDistribution, Security\"")
        security = kind.lower() == "security"
        details = "RoomList" if _truthy(bound.get("RoomList")) else \
            ("MailUniversalSecurityGroup" if security else "MailUniversalDistributionGroup")
        managed_by = self._resolve_many(bound["ManagedBy"]) if bound.get("ManagedBy") else []
        members = self._resolve_many(bound["Members"]) if bound.get("Members") else []
        moderated_by = self._resolve_many(bound["ModeratedBy"]) if bound.get("ModeratedBy") else []
        properties: dict[str, Any] = {"ManagedBy": managed_by, "ModeratedBy": moderated_by}
        for key in ("MemberJoinRestriction", "MemberDepartRestriction", "SendModerationNotifications"):
            if key in bound:
                properties[key] = str(bound[key])
        for key in ("ModerationEnabled", "RequireSenderAuthenticationEnabled", "BypassNestedModerationEnabled",
                    "HiddenGroupMembershipEnabled"):
            if key in bound:
                properties[key] = _truthy(bound[key])
        if bound.get("Description"):
            properties["Description"] = [str(bound["Description"])]
        display = str(bound.get("DisplayName") or name)
        with self.store.transaction():
            group = self.store.create_group(
                display_name=display, mail_enabled=True, security_enabled=security, mail=primary,
                mail_nickname=alias, proxy_addresses=addresses,
                extra={"description": str(bound["Description"]) if bound.get("Description") else None})
            rec = self.store.create_recipient(
                recipient_type_details=details, name=name, alias=alias, primary_smtp_address=primary,
                email_addresses=addresses, object_id=group["id"], display_name=display, properties=properties)
            member_objects = [self.store.get_recipient(recipient_id=m) for m in members]
            if _truthy(bound.get("CopyOwnerToMember")):
                member_objects += [self.store.get_recipient(recipient_id=m) for m in managed_by]
            for member in member_objects:
                if member and member.get("ExternalDirectoryObjectId"):
                    self.store.add_member(group_id=group["id"], member_id=member["ExternalDirectoryObjectId"])
        return [self._render(rec)]

    def cmd_set_distribution_group(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        rec = self._resolve_one(bound["Identity"], GROUP_RECIPIENT_TYPES)
        changed = [k for k in bound if k not in {"Identity", *_COMMON_PARAMETERS, "BypassSecurityGroupManagerCheck",
                                                 "ForceUpgrade", "IgnoreNamingPolicy"}]
        if changed:
            self._ensure_cloud_managed(rec, "Set-DistributionGroup", changed[0])
        updates: dict[str, Any] = {}
        for key in ("Name", "DisplayName", "Alias", "MemberJoinRestriction", "MemberDepartRestriction",
                    "SendModerationNotifications", "MailTip", *(f"CustomAttribute{i}" for i in range(1, 16))):
            if key in bound:
                updates[key] = "" if bound[key] is None and key.startswith("Custom") else bound[key]
        for key in ("HiddenFromAddressListsEnabled", "RequireSenderAuthenticationEnabled", "ModerationEnabled",
                    "ReportToManagerEnabled", "ReportToOriginatorEnabled", "SendOofMessageToOriginatorEnabled",
                    "BypassNestedModerationEnabled"):
            if key in bound:
                updates[key] = _truthy(bound[key])
        for key in (f"ExtensionCustomAttribute{i}" for i in range(1, 6)):
            if key in bound:
                updates[key] = _apply_multi(rec.get(key) or [], bound[key], lambda v: v)
        if "Description" in bound:
            updates["Description"] = [str(bound["Description"])] if bound["Description"] else []
        for prop in RECIPIENT_LINK_PROPERTIES:
            if prop in bound:
                updates[prop] = _apply_multi(rec.get(prop) or [], bound[prop],
                                             lambda v: self._resolve_one(v, None, member=True)["@id"])
        if "Name" in updates and str(updates["Name"]).lower() != rec["Name"].lower() and \
                self.store.resolve_recipients(identity=str(updates["Name"])):
            raise ExchangeError("Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException",
                                f'The name "{updates["Name"]}" is already being used. Please try another name.')
        addresses = list(rec["EmailAddresses"])
        if "EmailAddresses" in bound:
            addresses = _apply_multi(addresses, bound["EmailAddresses"], _prefixed)
        primary = rec["PrimarySmtpAddress"]
        if "PrimarySmtpAddress" in bound or "WindowsEmailAddress" in bound:
            primary = str(bound.get("PrimarySmtpAddress") or bound.get("WindowsEmailAddress"))
            self._check_smtp(primary)
            addresses = [f"smtp:{a[5:]}" if a.startswith("SMTP:") else a for a in addresses]
            addresses = [f"SMTP:{primary}", *[a for a in addresses if a.lower() != f"smtp:{primary}".lower()]]
        elif "EmailAddresses" in bound:
            primaries = [a for a in addresses if a.startswith("SMTP:")]
            if len(primaries) != 1:
                raise ExchangeError("Microsoft.Exchange.Data.DataValidationException",
                                    "The e-mail address list must contain exactly one primary SMTP address "
                                    "(prefix \"SMTP:\").")
            primary = primaries[0][5:]
            for address in addresses:
                if address.lower().startswith("smtp:"):
                    self._check_smtp(address[5:])
        if "EmailAddresses" in bound or primary != rec["PrimarySmtpAddress"]:
            self._check_address_free(addresses, [rec["@id"], rec.get("ExternalDirectoryObjectId") or ""])
            updates["EmailAddresses"] = addresses
            updates["PrimarySmtpAddress"] = primary
        if updates:
            with self.store.transaction():
                updated = self.store.update_recipient(recipient_id=rec["@id"], properties=updates)
                self._sync_group_object(updated)
        return []

    def cmd_remove_distribution_group(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        rec = self._resolve_one(bound["Identity"], GROUP_RECIPIENT_TYPES)
        self._ensure_cloud_managed(rec, "Remove-DistributionGroup", None)
        with self.store.transaction():
            if rec.get("ExternalDirectoryObjectId"):
                self.store.delete_object(object_id=rec["ExternalDirectoryObjectId"])
            self.store.delete_recipient(recipient_id=rec["@id"])
        return []

    def _member_change(self, bound: dict[str, Any], cmdlet: str) -> tuple[dict[str, Any], str]:
        group = self._resolve_one(bound["Identity"], GROUP_RECIPIENT_TYPES)
        self._ensure_cloud_managed(group, cmdlet, "Members")
        if not group.get("ExternalDirectoryObjectId"):
            raise ExchangeError("System.InvalidOperationException", f"The group '{group['Name']}' has no directory "
                                "object in the lab.")
        return group, group["ExternalDirectoryObjectId"]

    def _member_object_id(self, identity: Any) -> tuple[str, str]:
        rec = self._resolve_one(identity, None, member=True)
        if not rec.get("ExternalDirectoryObjectId"):
            raise ExchangeError("System.InvalidOperationException", f"The recipient '{rec['Name']}' has no directory "
                                "object in the lab.")
        return rec["ExternalDirectoryObjectId"], rec["Name"]

    def cmd_add_distribution_group_member(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        group, group_id = self._member_change(bound, "Add-DistributionGroupMember")
        member_id, member_name = self._member_object_id(bound["Member"])
        if not self.store.add_member(group_id=group_id, member_id=member_id):
            raise ExchangeError("Microsoft.Exchange.Management.Tasks.MemberAlreadyExistsException",
                                f'The recipient "{member_name}" is already a member of the group "{group["Name"]}".')
        return []

    def cmd_remove_distribution_group_member(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        group, group_id = self._member_change(bound, "Remove-DistributionGroupMember")
        member_id, member_name = self._member_object_id(bound["Member"])
        if not self.store.remove_member(group_id=group_id, member_id=member_id):
            raise ExchangeError("Microsoft.Exchange.Management.Tasks.MemberNotFoundException",
                                f'The recipient "{member_name}" isn\'t a member of the group "{group["Name"]}".')
        return []

    def cmd_update_distribution_group_member(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        group, group_id = self._member_change(bound, "Update-DistributionGroupMember")
        raw = bound.get("Members")
        values = raw if isinstance(raw, list) else ([] if raw in (None, "") else [raw])
        member_ids = [self._member_object_id(v)[0] for v in values]
        self.store.set_members(group_id=group_id, member_ids=member_ids)
        return []

    def cmd_get_accepted_domain(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        domains = self.store.list_accepted_domains()
        if "Identity" in bound:
            wanted = str(bound["Identity"]).lower()
            domains = [d for d in domains if d["Name"].lower() == wanted or d["DomainName"].lower() == wanted]
            if not domains:
                raise not_found(str(bound["Identity"]))
        return domains

    def cmd_get_outbound_connector(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        connectors = self.store.list_outbound_connectors()
        if "Identity" in bound:
            wanted = str(bound["Identity"]).lower()
            connectors = [c for c in connectors if c["Name"].lower() == wanted]
            if not connectors:
                raise not_found(str(bound["Identity"]))
        return connectors

    def _permission_row(self, perm: Mapping[str, str], recs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        target = recs.get(perm["recipient_id"], {})
        trustee = recs.get(perm["trustee_id"], {})
        return {
            "Identity": target.get("Name", perm["recipient_id"]),
            "Trustee": trustee.get("UserPrincipalName") or trustee.get("PrimarySmtpAddress") or perm["trustee_id"],
            "AccessControlType": "Allow",
            "AccessRights": [perm["access_right"]],
            "IsInherited": False,
            "InheritanceType": "None",
        }

    def cmd_get_recipient_permission(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        recipient_id = self._resolve_one(bound["Identity"], None)["@id"] if "Identity" in bound else None
        trustee_id = self._resolve_one(bound["Trustee"], None, member=True)["@id"] if "Trustee" in bound else None
        perms = self.store.list_recipient_permissions(recipient_id=recipient_id, trustee_id=trustee_id)
        if "AccessRights" in bound:
            rights = bound["AccessRights"] if isinstance(bound["AccessRights"], list) else [bound["AccessRights"]]
            perms = [p for p in perms if p["access_right"] in rights]
        recs = self.store.recipients_by_ids({p["recipient_id"] for p in perms} | {p["trustee_id"] for p in perms})
        rows = [self._permission_row(p, recs) for p in perms]
        size, unlimited = _result_size(bound)
        return rows if unlimited else rows[:size]

    def cmd_add_recipient_permission(self, bound: dict[str, Any], req: ApiRequest) -> Any:
        target = self._resolve_one(bound["Identity"], None)
        trustee = self._resolve_one(bound["Trustee"], None, member=True)
        rights = bound["AccessRights"] if isinstance(bound["AccessRights"], list) else [bound["AccessRights"]]
        for right in rights:
            if str(right) != "SendAs":
                raise ExchangeError("System.Management.Automation.ParameterBindingException",
                                    f"Cannot bind parameter 'AccessRights'. Cannot convert value \"{right}\" to type "
                                    "\"Microsoft.Exchange.Management.RecipientTasks.RecipientAccessRight\". Error: "
                                    f"\"Unable to match the identifier name {right} to a valid enumerator name. "
                                    "Specify one of the following enumerator names and try again:\nSendAs\"")
        rows = []
        for right in rights:
            self.store.add_recipient_permission(recipient_id=target["@id"], trustee_id=trustee["@id"],
                                                access_right=str(right))
            rows.append(self._permission_row({"recipient_id": target["@id"], "trustee_id": trustee["@id"],
                                              "access_right": str(right)},
                                             {target["@id"]: target, trustee["@id"]: trustee}))
        return rows

    # ------------------------------------------------------------------------------------------
    # PowerShell-shaped endpoints

    def _powershell_entry(self, req: ApiRequest) -> ApiResponse:
        match = re.fullmatch(r"/powershell/(entra-connect|exchange-onprem)", req.path)
        if not match:
            raise self._not_found_path(req)
        header = req.headers.get("authorization", "")
        user = password = ""
        if header.lower().startswith("basic "):
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        # WinRM refuses bad credentials with a bare 401 before any PowerShell runs.
        if not user or not self.store.verify_client_secret(client_id=f"ps:{user}", client_secret=password):
            raise ApiError(ApiResponse(401, None, {"WWW-Authenticate": 'Basic realm="WSMAN"'}))
        self._apply_faults("powershell", req)
        try:
            payload = req.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("cmdlet"), str):
            return ApiResponse(400, {"output": [], "warnings": [], "errors": [_ps_error(
                "System.ArgumentException", 'The body must be {"cmdlet": "...", "parameters": {...}}.',
                "InvalidArgument", "")], "had_errors": True})
        cmdlet = payload["cmdlet"].strip()
        params = payload.get("parameters") or {}
        if match.group(1) == "exchange-onprem":
            return ApiResponse(200, self._onprem(cmdlet, params))
        return ApiResponse(200, self._entra_connect(cmdlet, params))

    def _onprem(self, cmdlet: str, params: dict[str, Any]) -> dict[str, Any]:
        if self.onprem_runner is None:
            return _ps_result([], [_ps_error("System.InvalidOperationException",
                                             "The lab cloud was started without an Exchange on-premises runner "
                                             "(create_app(onprem_runner=...)); on-premises cmdlets cannot run.",
                                             "InvalidOperation", cmdlet)])
        try:
            result = self.onprem_runner(cmdlet, params)
        except Exception as exc:  # noqa: BLE001 - the runner's failure becomes the cmdlet's error record
            return _ps_result([], [_ps_error(type(exc).__name__, str(exc), "NotSpecified", cmdlet)])
        return {"output": list(result.get("output", [])), "warnings": list(result.get("warnings", [])),
                "errors": list(result.get("errors", [])), "had_errors": bool(result.get("errors"))}

    def _entra_connect(self, cmdlet: str, params: dict[str, Any]) -> dict[str, Any]:
        spec = _ADSYNC_CMDLETS.get(cmdlet.lower())
        if spec is None:
            return _ps_result([], [_ps_error("System.Management.Automation.CommandNotFoundException",
                                             command_not_found(cmdlet), "ObjectNotFound", cmdlet,
                                             fq_error_id="CommandNotFoundException", target_name=cmdlet)])
        try:
            bound = _bind_parameters(spec, params)
            result = spec.handler(self, bound, None)
        except ExchangeError as error:
            return _ps_result([], [_ps_error(error.exception, error.message, "InvalidOperation", spec.name)])
        output, warnings = result if isinstance(result, tuple) else (result, [])
        return _ps_result(output, [], warnings)

    def _scheduler_view(self) -> dict[str, Any]:
        values = self.store.scheduler()
        runs = self.store.sync_runs(limit=1)
        running = bool(runs and runs[0]["state"] == "running")
        interval = _parse_timespan(values.get("CustomizedSyncCycleInterval") or values["AllowedSyncCycleInterval"])
        allowed = _parse_timespan(values["AllowedSyncCycleInterval"])
        effective = max(interval, allowed)
        last = parse_datetime(runs[0]["started"]) if runs else utc_now()
        return {
            "AllowedSyncCycleInterval": values["AllowedSyncCycleInterval"],
            "CurrentlyEffectiveSyncCycleInterval": _format_timespan(effective),
            "CustomizedSyncCycleInterval": values.get("CustomizedSyncCycleInterval"),
            "NextSyncCyclePolicyType": values["NextSyncCyclePolicyType"],
            "NextSyncCycleStartTimeInUTC": iso(last + effective),
            "PurgeRunHistoryInterval": values["PurgeRunHistoryInterval"],
            "SyncCycleEnabled": values["SyncCycleEnabled"],
            "MaintenanceEnabled": values["MaintenanceEnabled"],
            "StagingModeEnabled": values["StagingModeEnabled"],
            "SchedulerSuspended": values["SchedulerSuspended"],
            "SyncCycleInProgress": running,
        }

    def cmd_get_adsync_scheduler(self, bound: dict[str, Any], req: ApiRequest | None) -> Any:
        return [self._scheduler_view()]

    def cmd_set_adsync_scheduler(self, bound: dict[str, Any], req: ApiRequest | None) -> Any:
        changes: dict[str, Any] = {}
        warnings = []
        for key in ("SyncCycleEnabled", "MaintenanceEnabled", "SchedulerSuspended"):
            if key in bound:
                changes[key] = _truthy(bound[key])
        if "NextSyncCyclePolicyType" in bound:
            changes["NextSyncCyclePolicyType"] = _policy(bound["NextSyncCyclePolicyType"], "NextSyncCyclePolicyType")
        if "CustomizedSyncCycleInterval" in bound:
            raw = bound["CustomizedSyncCycleInterval"]
            changes["CustomizedSyncCycleInterval"] = _format_timespan(_parse_timespan(str(raw))) if raw else None
            # Get-ADSyncScheduler's documented warning after a new interval (Microsoft's scheduler doc).
            warnings.append("The sync interval you provided will only become effective after a sync cycle.")
        self.store.update_scheduler(**changes)
        return [], warnings

    def cmd_start_adsync_sync_cycle(self, bound: dict[str, Any], req: ApiRequest | None) -> Any:
        policy = _policy(bound.get("PolicyType", "Delta"), "PolicyType")
        if self.sync_runner is None:
            raise ExchangeError("System.InvalidOperationException",
                                "The lab sync engine is not attached: start the lab cloud with a sync runner "
                                "(create_app(sync_runner=...) or --sync-runner module:function).")
        run_id = self.store.start_sync_run(policy=policy)
        if run_id is None:
            # Wording of the sync server when a cycle already runs (quoted in Entra Connect threads).
            raise ExchangeError("System.InvalidOperationException",
                                "Sync is already running. Cannot start a new run till this one completes.")
        if policy == "Initial":
            self.store.update_scheduler(NextSyncCyclePolicyType="Delta")
        if self.sync_in_background:
            thread = threading.Thread(target=self._run_sync, args=(run_id, policy), name=f"lab-sync-{run_id}",
                                      daemon=True)
            self._sync_threads = [t for t in self._sync_threads if t.is_alive()] + [thread]
            thread.start()
        else:
            self._run_sync(run_id, policy)
        return [{"Result": "Success"}]

    def _run_sync(self, run_id: int, policy: str) -> None:
        runner = self.sync_runner
        assert runner is not None
        try:
            result = runner(policy)
        except Exception as exc:  # noqa: BLE001 - a failed cycle is recorded, as the sync server does
            self.store.finish_sync_run(run_id=run_id, result=None, error=f"{type(exc).__name__}: {exc}")
            return
        self.store.finish_sync_run(run_id=run_id, result=result if isinstance(result, dict) else {"result": result})

    def wait_for_sync(self, timeout: float = 60.0) -> None:
        """Join background sync threads (tests and shutdown)."""
        deadline = time.monotonic() + timeout
        for thread in list(self._sync_threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    def cmd_get_adsync_connector_run_status(self, bound: dict[str, Any], req: ApiRequest | None) -> Any:
        runs = self.store.sync_runs(limit=1)
        if not runs or runs[0]["state"] != "running":
            return []
        connectors = self.store.sync_connectors()
        return [{"RunState": "Busy", "ConnectorName": connectors[0]["Name"] if connectors else "lab"}]

    def cmd_get_adsync_connector(self, bound: dict[str, Any], req: ApiRequest | None) -> Any:
        connectors = self.store.sync_connectors()
        if "Name" in bound:
            connectors = [c for c in connectors if c["Name"].lower() == str(bound["Name"]).lower()]
        if "Identifier" in bound:
            connectors = [c for c in connectors if c["Identifier"].lower() == str(bound["Identifier"]).lower()]
        return connectors

    def cmd_get_adsync_run_profile_result(self, bound: dict[str, Any], req: ApiRequest | None) -> Any:
        limit = int(bound.get("NumberRequested") or 20)
        connectors = self.store.sync_connectors()
        rows = []
        for run in self.store.sync_runs(limit=limit):
            result = run["result"] or {}
            state = {"running": "in-progress", "failed": "stopped-extension-dll-exception"}.get(run["state"])
            rows.append({
                "RunHistoryId": run["id"],
                "ConnectorId": connectors[0]["Identifier"] if connectors else None,
                "ConnectorName": connectors[0]["Name"] if connectors else None,
                "RunProfileName": "Full Synchronization" if run["policy"] == "Initial" else "Delta Synchronization",
                "Result": result.get("Result") or state or "success",
                "StartDate": run["started"],
                "EndDate": run["finished"],
                "Details": result,
            })
        return rows

    def cmd_get_adsync_export_error(self, bound: dict[str, Any], req: ApiRequest | None) -> Any:
        return self.store.list_export_errors(connector=bound.get("ConnectorName"))

    def cmd_get_adsync_pending_export(self, bound: dict[str, Any], req: ApiRequest | None) -> Any:
        return self.store.list_pending_exports(connector=bound.get("ConnectorName"))


# --------------------------------------------------------------------------------------------
# cmdlet tables

_COMMON_PARAMETERS = frozenset({
    "ErrorAction", "WarningAction", "InformationAction", "ErrorVariable", "WarningVariable", "InformationVariable",
    "OutVariable", "OutBuffer", "PipelineVariable", "Verbose", "Debug", "ProgressAction", "Confirm", "WhatIf",
})


@dataclass(frozen=True)
class _Cmdlet:
    name: str
    handler: Callable[..., Any]
    parameters: frozenset[str]
    required: tuple[str, ...] = ()


def _cmdlet(name: str, handler: Callable[..., Any], parameters: Iterable[str], required: Iterable[str] = ()
            ) -> tuple[str, _Cmdlet]:
    return name.lower(), _Cmdlet(name, handler, frozenset(parameters) | _COMMON_PARAMETERS, tuple(required))


_RECIPIENT_QUERY = ("Identity", "Filter", "ResultSize", "RecipientTypeDetails", "Anr", "SortBy")
_GROUP_SET = (
    "Identity", "Name", "DisplayName", "Alias", "PrimarySmtpAddress", "WindowsEmailAddress", "EmailAddresses",
    *RECIPIENT_LINK_PROPERTIES, "HiddenFromAddressListsEnabled", "RequireSenderAuthenticationEnabled",
    "ModerationEnabled", "MemberJoinRestriction", "MemberDepartRestriction", "SendModerationNotifications",
    "ReportToManagerEnabled", "ReportToOriginatorEnabled", "SendOofMessageToOriginatorEnabled",
    "BypassNestedModerationEnabled", "MailTip", "Description", "BypassSecurityGroupManagerCheck", "ForceUpgrade",
    "IgnoreNamingPolicy", *(f"CustomAttribute{i}" for i in range(1, 16)),
    *(f"ExtensionCustomAttribute{i}" for i in range(1, 6)),
)

_EXCHANGE_CMDLETS: dict[str, _Cmdlet] = dict([
    _cmdlet("Get-Recipient", LabCloud.cmd_get_recipient, (*_RECIPIENT_QUERY, "RecipientType")),
    _cmdlet("Get-Mailbox", LabCloud.cmd_get_mailbox, _RECIPIENT_QUERY),
    _cmdlet("Get-MailUser", LabCloud.cmd_get_mail_user, _RECIPIENT_QUERY),
    _cmdlet("Get-MailContact", LabCloud.cmd_get_mail_contact, _RECIPIENT_QUERY),
    _cmdlet("Get-DistributionGroup", LabCloud.cmd_get_distribution_group, (*_RECIPIENT_QUERY, "ManagedBy")),
    _cmdlet("Get-DistributionGroupMember", LabCloud.cmd_get_distribution_group_member,
            ("Identity", "ResultSize", "IgnoreDefaultScope"), ("Identity",)),
    _cmdlet("New-DistributionGroup", LabCloud.cmd_new_distribution_group, (
        "Name", "DisplayName", "Alias", "PrimarySmtpAddress", "Type", "ManagedBy", "Members", "Notes", "Description",
        "MemberJoinRestriction", "MemberDepartRestriction", "ModerationEnabled", "ModeratedBy",
        "RequireSenderAuthenticationEnabled", "SendModerationNotifications", "BypassNestedModerationEnabled",
        "CopyOwnerToMember", "IgnoreNamingPolicy", "RoomList", "HiddenGroupMembershipEnabled", "OrganizationalUnit",
    ), ("Name",)),
    _cmdlet("Set-DistributionGroup", LabCloud.cmd_set_distribution_group, _GROUP_SET, ("Identity",)),
    _cmdlet("Remove-DistributionGroup", LabCloud.cmd_remove_distribution_group,
            ("Identity", "BypassSecurityGroupManagerCheck"), ("Identity",)),
    _cmdlet("Add-DistributionGroupMember", LabCloud.cmd_add_distribution_group_member,
            ("Identity", "Member", "BypassSecurityGroupManagerCheck"), ("Identity", "Member")),
    _cmdlet("Remove-DistributionGroupMember", LabCloud.cmd_remove_distribution_group_member,
            ("Identity", "Member", "BypassSecurityGroupManagerCheck"), ("Identity", "Member")),
    _cmdlet("Update-DistributionGroupMember", LabCloud.cmd_update_distribution_group_member,
            ("Identity", "Members", "BypassSecurityGroupManagerCheck"), ("Identity",)),
    _cmdlet("Get-AcceptedDomain", LabCloud.cmd_get_accepted_domain, ("Identity", "ResultSize")),
    _cmdlet("Get-OutboundConnector", LabCloud.cmd_get_outbound_connector, ("Identity", "IncludeTestModeConnectors")),
    _cmdlet("Get-RecipientPermission", LabCloud.cmd_get_recipient_permission,
            ("Identity", "Trustee", "AccessRights", "ResultSize", "ReadFromDomainController")),
    _cmdlet("Add-RecipientPermission", LabCloud.cmd_add_recipient_permission,
            ("Identity", "Trustee", "AccessRights", "Deny"), ("Identity", "Trustee", "AccessRights")),
])

# ADSync module cmdlets (Get-/Set-ADSyncScheduler, Start-ADSyncSyncCycle, Get-ADSyncConnectorRunStatus,
# Get-ADSyncConnector, Get-ADSyncRunProfileResult are real; Get-ADSyncExportError and
# Get-ADSyncPendingExport are the lab's own: the real server shows those through csexport.exe and
# the Synchronization Service Manager, which no remote call reaches).
_ADSYNC_CMDLETS: dict[str, _Cmdlet] = dict([
    _cmdlet("Get-ADSyncScheduler", LabCloud.cmd_get_adsync_scheduler, ()),
    _cmdlet("Set-ADSyncScheduler", LabCloud.cmd_set_adsync_scheduler, (
        "SyncCycleEnabled", "NextSyncCyclePolicyType", "CustomizedSyncCycleInterval", "MaintenanceEnabled",
        "SchedulerSuspended", "PurgeRunHistoryInterval", "Force")),
    _cmdlet("Start-ADSyncSyncCycle", LabCloud.cmd_start_adsync_sync_cycle, ("PolicyType", "InteractiveMode")),
    _cmdlet("Get-ADSyncConnectorRunStatus", LabCloud.cmd_get_adsync_connector_run_status, ("ConnectorName",)),
    _cmdlet("Get-ADSyncConnector", LabCloud.cmd_get_adsync_connector, ("Name", "Identifier")),
    _cmdlet("Get-ADSyncRunProfileResult", LabCloud.cmd_get_adsync_run_profile_result,
            ("NumberRequested", "ConnectorId", "RunHistoryId", "RunStepDetails")),
    _cmdlet("Get-ADSyncExportError", LabCloud.cmd_get_adsync_export_error, ("ConnectorName",)),
    _cmdlet("Get-ADSyncPendingExport", LabCloud.cmd_get_adsync_pending_export, ("ConnectorName",)),
])

_RENDER_FIRST = ("Name", "DisplayName", "Alias", "PrimarySmtpAddress", "RecipientType", "RecipientTypeDetails",
                 "ExternalDirectoryObjectId", "ExchangeObjectId", "Guid", "IsDirSynced", "EmailAddresses",
                 "DistinguishedName", "LegacyExchangeDN")

# Filterable in OPATH although not a stored property (computed by _opath_getter).
_OPATH_EXTRA = ("MemberOfGroup", "AcceptMessagesOnlyFrom", "AcceptMessagesOnlyFromDLMembers", "RejectMessagesFrom",
                "RejectMessagesFromDLMembers", "Identity")
_FILTERABLE_ALWAYS = {p.lower(): p for p in (
    "Name", "DisplayName", "Alias", "PrimarySmtpAddress", "EmailAddresses", "RecipientType", "RecipientTypeDetails",
    "ExternalDirectoryObjectId", "IsDirSynced", "HiddenFromAddressListsEnabled", "WindowsEmailAddress",
    "ExternalEmailAddress", "Guid", "ExchangeObjectId", "DistinguishedName", "LegacyExchangeDN",
    "RequireSenderAuthenticationEnabled", "ModerationEnabled", "ForwardingAddress", "ForwardingSmtpAddress",
    *RECIPIENT_LINK_PROPERTIES, *_OPATH_EXTRA,
    *(f"CustomAttribute{i}" for i in range(1, 16)),
)}


def _bind_parameters(spec: _Cmdlet, params: Mapping[str, Any]) -> dict[str, Any]:
    """PowerShell parameter binding, reduced: names are case-insensitive, unknown names fail as
    PowerShell fails them, mandatory ones must be present."""
    canonical = {p.lower(): p for p in spec.parameters}
    bound: dict[str, Any] = {}
    for key, value in params.items():
        if key.startswith("@"):
            continue
        name = canonical.get(key.lstrip("-").lower())
        if name is None:
            raise parameter_not_found(key.lstrip("-"))
        bound[name] = value
    missing = [p for p in spec.required if p not in bound or bound[p] in (None, "", [])]
    if missing:
        raise missing_parameter(missing)
    return bound


def _result_size(bound: Mapping[str, Any]) -> tuple[int, bool]:
    raw = bound.get("ResultSize")
    if raw is None:
        return EXCHANGE_DEFAULT_RESULT_SIZE, False
    if str(raw).lower() == "unlimited":
        return 0, True
    try:
        return max(0, int(raw)), False
    except ValueError:
        raise ExchangeError("System.Management.Automation.ParameterBindingException",
                            f"Cannot bind parameter 'ResultSize'. Cannot convert value \"{raw}\" to type "
                            "\"Microsoft.Exchange.Data.Unlimited`1[System.UInt32]\".") from None


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower().lstrip("$") in {"true", "1", "yes"}
    return bool(value)


def _prefixed(value: Any) -> str:
    text = str(value)
    return text if re.match(r"^[A-Za-z0-9]+:", text) else f"smtp:{text}"


def _apply_multi(current: list[Any], change: Any, convert: Callable[[Any], Any]) -> list[Any]:
    """A multi-valued parameter: a list replaces; ``{"Add": [...], "Remove": [...]}`` edits (the
    hashtable form, sent over REST as ``#Exchange.GenericHashTable``)."""
    if isinstance(change, dict):
        result = list(current)
        lowered = {k.lower(): v for k, v in change.items() if not k.startswith("@")}
        for value in _as_list(lowered.get("remove")):
            converted = convert(value)
            result = [v for v in result if str(v).lower() != str(converted).lower()]
        for value in _as_list(lowered.get("add")):
            converted = convert(value)
            if all(str(v).lower() != str(converted).lower() for v in result):
                result.append(converted)
        return result
    return [convert(v) for v in _as_list(change)]


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _policy(value: Any, parameter: str) -> str:
    text = str(value)
    for name in ("Delta", "Initial"):
        if text.lower() == name.lower():
            return name
    raise ExchangeError("System.Management.Automation.ParameterBindingException",
                        f"Cannot bind parameter '{parameter}'. Cannot convert value \"{text}\" to type "
                        "\"Microsoft.IdentityManagement.PowerShell.ObjectModel.SynchronizationPolicyType\". Error: "
                        f"\"Unable to match the identifier name {text} to a valid enumerator name. Specify one of the "
                        "following enumerator names and try again:\nUnspecified, Delta, Initial\"")


def _parse_timespan(text: str) -> timedelta:
    match = re.fullmatch(r"(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})", text.strip())
    if not match:
        raise ExchangeError("System.Management.Automation.ParameterBindingException",
                            f"Cannot convert value \"{text}\" to type \"System.TimeSpan\".")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def _format_timespan(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}.{text}" if days else text


def _ps_error(exception: str, message: str, category: str, activity: str, *, fq_error_id: str | None = None,
              target_name: str = "") -> dict[str, Any]:
    """One error record, named after pypsrp's ErrorRecord fields."""
    return {
        "exception_type": exception,
        "message": message,
        "fq_error_id": fq_error_id or f"{exception.rsplit('.', 1)[-1]},{activity}",
        "category": category,
        "reason": exception.rsplit(".", 1)[-1],
        "activity": activity,
        "target_name": target_name,
        "target_type": "String" if target_name else "",
    }


def _ps_result(output: list[Any], errors: list[dict[str, Any]], warnings: list[str] | None = None) -> dict[str, Any]:
    return {"output": output, "warnings": warnings or [], "errors": errors, "had_errors": bool(errors)}


def _is_exchange_managed(group: Mapping[str, Any]) -> bool:
    """Distribution lists and mail-enabled security groups: only Exchange may change them."""
    return bool(group.get("mailEnabled")) and "Unified" not in (group.get("groupTypes") or [])


# --------------------------------------------------------------------------------------------
# ASGI


def create_app(
    *,
    data_dir: Path,
    tenant_id: str,
    initial_domain: str = "contoso.onmicrosoft.com",
    sync_runner: SyncRunner | None = None,
    onprem_runner: OnPremRunner | None = None,
    public_base_url: str | None = None,
    token_lifetime: int = 3599,
    sync_in_background: bool = True,
) -> Starlette:
    """The lab cloud as a Starlette application.

    ``data_dir`` holds the SQLite database; ``tenant_id`` binds it to one tenant. ``sync_runner``
    runs one sync cycle (called with "Delta" or "Initial" on ``Start-ADSyncSyncCycle``, in a thread
    of its own unless ``sync_in_background`` is False); ``onprem_runner`` answers the Exchange
    on-premises cmdlets. ``public_base_url`` fixes the host used in absolute links (default: the
    request's own). The ``LabCloud`` instance is ``app.state.cloud``.
    """
    cloud = LabCloud(
        data_dir=Path(data_dir), tenant_id=tenant_id, initial_domain=initial_domain, sync_runner=sync_runner,
        onprem_runner=onprem_runner, public_base_url=public_base_url, token_lifetime=token_lifetime,
        sync_in_background=sync_in_background,
    )

    async def endpoint(request: Request) -> Response:
        body = await request.body()
        api_request = ApiRequest(
            method=request.method.upper(),
            path=request.url.path,
            query=urllib.parse.parse_qsl(request.url.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            base_url=f"{request.url.scheme}://{request.url.netloc}",
        )
        result = await run_in_threadpool(cloud.handle, api_request)
        return _to_starlette(result)

    methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
    app = Starlette(routes=[Route("/{path:path}", endpoint, methods=methods)])
    app.state.cloud = cloud
    return app


def _to_starlette(result: ApiResponse) -> Response:
    headers = dict(result.headers)
    if result.body is None:
        return Response(status_code=result.status, headers=headers)
    if isinstance(result.body, str | bytes):
        return Response(result.body, status_code=result.status, headers=headers,
                        media_type=result.content_type or "text/plain")
    content = json.dumps(result.body, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(content, status_code=result.status, headers=headers,
                    media_type=result.content_type or "application/json")


__all__ = [
    "ApiRequest", "ApiResponse", "LabCloud", "create_app", "issue_access_token", "parse_filter", "parse_opath",
    "verify_access_token",
]
