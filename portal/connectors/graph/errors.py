"""The Graph connector's exceptions (each keeps the HTTP status, Graph's error code and message and
the request id) and the mapping from HTTP answers and SDK exceptions to them. Secrets are scrubbed
from every message.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from kiota_abstractions.api_error import APIError
from msgraph.generated.models.o_data_errors.o_data_error import ODataError


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


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
            # a PEM key may be echoed line by line; hide every long line of it as well
            for line in secret.splitlines():
                if len(line) >= 16:
                    text = text.replace(line, "***")
    return text


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
