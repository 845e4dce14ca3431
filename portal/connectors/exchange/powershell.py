"""Remote PowerShell transports that Exchange on-premises and Entra Connect (:mod:`..sync`) share:
PSRP (pypsrp) in production, the lab's JSON endpoint in the lab."""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, Protocol
from uuid import UUID

import httpx

from ..graph.errors import _retry_after, _scrub
from .errors import _GENERIC_EXCEPTIONS, InvalidParameter, human_message, parse_exception_type
from .opath import OpathFilter
from .params import SWITCH, MultiValuedUpdate, _json_value, _read_only, check_parameters


@dataclass(frozen=True)
class PSErrorRecord:
    """One record of a cmdlet's error stream, reduced to what people and code need."""

    message: str
    exception_type: str | None = None
    fully_qualified_error_id: str | None = None
    category: str | None = None
    target: str | None = None


class PowerShellError(Exception):
    """A cmdlet failed or could not be run. ``records`` holds the error stream."""

    def __init__(self, message: str, *, cmdlet: str | None = None, records: Sequence[PSErrorRecord] = (),
                 output: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.cmdlet = cmdlet
        self.records = tuple(records)
        self.output = tuple(output)

    def __str__(self) -> str:
        return self.message

    @property
    def exception_type(self) -> str | None:
        return next((r.exception_type for r in self.records if r.exception_type), None)


class CmdletFailed(PowerShellError):
    """The cmdlet ran and wrote errors (or its pipeline failed)."""


class RemotingUnreachable(PowerShellError):
    """The PowerShell endpoint could not be reached (DNS, TCP, TLS, WinRM fault)."""


class RemotingAuthFailed(PowerShellError):
    """The PowerShell endpoint refused the credentials."""


class RemotingOutcomeUnknown(RemotingUnreachable):
    """The connection broke after a write was sent: it may or may not have been applied."""


class PowerShellTransport(Protocol):
    """Runs one cmdlet with named parameters; returns its output objects as dicts.

    Implementations never build script text: the cmdlet and each parameter travel separately.
    Errors raise :class:`PowerShellError` subclasses.
    """

    endpoint: str

    def run(self, cmdlet: str, parameters: Mapping[str, Any]) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


# Exchange types whose value is their string form (ADObjectId, addresses, sizes...).
_SCALAR_TYPE_NAMES = frozenset({
    "ADObjectId", "SmtpAddress", "ProxyAddress", "SmtpProxyAddress", "X500ProxyAddress", "CustomProxyAddress",
    "ProxyAddressTemplate", "ByteQuantifiedSize", "EnhancedTimeSpan", "OrganizationId", "ExchangeObjectVersion",
    "SecurityIdentifier", "Fqdn", "SmtpDomain", "SmtpDomainWithSubdomains", "RecipientIdParameter", "Version",
    "ADObjectIdWithString", "SmtpX509Identifier", "TimeSpan", "Uri", "Unlimited",
})


def _type_short(name: str) -> str:
    name = name.removeprefix("Deserialized.")
    name = name.split("`", 1)[0].split("[", 1)[0]
    return name.rsplit(".", 1)[-1]


def ps_to_python(value: Any, *, depth: int = 0) -> Any:
    """A deserialized PSRP value as plain Python (dicts, lists, text, numbers, datetimes)."""
    from pypsrp.complex_objects import ComplexObject, GenericComplexObject

    if depth > 8:
        return str(value)
    if value is None or isinstance(value, (str, bool, int, float, datetime, bytes)):
        return value
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, (list, tuple, set)):
        return [ps_to_python(v, depth=depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): ps_to_python(v, depth=depth + 1) for k, v in value.items()}
    if isinstance(value, GenericComplexObject):
        types = [_type_short(t) for t in value.types or ()]
        named = {**value.adapted_properties, **value.extended_properties}
        if "Enum" in types and value.to_string is not None:
            return value.to_string
        if any(t in _SCALAR_TYPE_NAMES for t in types) and value.to_string is not None:
            return value.to_string
        if not named and value.property_sets:
            inner = value.property_sets[0] if len(value.property_sets) == 1 else value.property_sets
            if isinstance(inner, list) or value.to_string is None:
                return ps_to_python(inner, depth=depth + 1)
            return value.to_string
        if named:
            return {str(k): ps_to_python(v, depth=depth + 1) for k, v in named.items()}
        return value.to_string
    if isinstance(value, ComplexObject):
        return str(value)
    return str(value)


def _psrp_value(value: Any) -> Any:
    """A checked parameter value as pypsrp serializes it; SWITCH becomes a value-less parameter."""
    if isinstance(value, OpathFilter):
        return str(value)
    if isinstance(value, MultiValuedUpdate):
        table: dict[str, Any] = {}
        if value.add:
            table["Add"] = list(value.add)
        if value.remove:
            table["Remove"] = list(value.remove)
        return table
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, list):
        return [_psrp_value(v) for v in value]
    return value


@dataclass(frozen=True)
class PsrpSettings:
    """A WinRM/PSRP endpoint: Exchange (``https://<server>/PowerShell``, Microsoft.Exchange) or a
    Windows server with the ADSync module (``https://<server>:5986/wsman``, Microsoft.PowerShell).

    ``auth``: kerberos (the process's ticket; needs pyspnego's Kerberos extras), ntlm, negotiate,
    credssp, basic or certificate. The password never appears in repr() or an error message.
    """

    server: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    auth: Literal["kerberos", "ntlm", "negotiate", "credssp", "basic", "certificate"] = "kerberos"
    port: int | None = None
    path: str = "wsman"
    ssl: bool = True
    configuration_name: str = "Microsoft.PowerShell"
    ca_file: str | None = None
    cert_validation: bool = True
    certificate_pem: str | None = None  # auth=certificate: paths of the client certificate and key
    certificate_key_pem: str | None = None
    operation_timeout: int = 60
    connection_timeout: int = 30
    read_timeout: int = 120
    reconnection_retries: int = 2
    encryption: Literal["auto", "always", "never"] = "auto"

    def __post_init__(self) -> None:
        if not self.server:
            raise ValueError("server is required")
        if self.read_timeout <= self.operation_timeout:
            raise ValueError("read_timeout must be longer than operation_timeout")
        if self.auth in ("ntlm", "credssp", "basic") and not (self.username and self.password):
            raise ValueError(f"auth={self.auth} needs username and password")

    @classmethod
    def exchange(cls, server: str, **kwargs: Any) -> PsrpSettings:
        """Exchange on-premises remote PowerShell: ``https://<server>/PowerShell``, Microsoft.Exchange."""
        kwargs.setdefault("path", "PowerShell")
        kwargs.setdefault("port", 443 if kwargs.get("ssl", True) else 80)
        kwargs.setdefault("configuration_name", "Microsoft.Exchange")
        return cls(server=server, **kwargs)

    @property
    def endpoint(self) -> str:
        port = self.port or (5986 if self.ssl else 5985)
        return f"{'https' if self.ssl else 'http'}://{self.server}:{port}/{self.path.lstrip('/')}"


class PsrpTransport:
    """Runs cmdlets over PSRP (pypsrp): one runspace pool, opened on first use and reused.

    Each call adds the cmdlet with ``add_cmdlet`` and each parameter with ``add_parameter``; no
    script text is ever built. Calls are serialised (one pool, one pipeline at a time).
    """

    def __init__(self, settings: PsrpSettings) -> None:
        self.settings = settings
        self.endpoint = settings.endpoint
        self._pool: Any = None
        self._lock = threading.Lock()

    def _secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.settings.password,) if s)

    def _clean(self, exc: BaseException) -> str:
        return _scrub(f"{type(exc).__name__}: {exc}", self._secrets())

    def _open(self) -> Any:
        from pypsrp.powershell import RunspacePool
        from pypsrp.wsman import WSMan

        s = self.settings
        kwargs: dict[str, Any] = {}
        if s.auth == "certificate":
            kwargs.update(certificate_pem=s.certificate_pem, certificate_key_pem=s.certificate_key_pem)
        cert_validation: bool | str = s.ca_file if (s.ca_file and s.cert_validation) else s.cert_validation
        wsman = WSMan(
            s.server, port=s.port, path=s.path, ssl=s.ssl, username=s.username, password=s.password, auth=s.auth,
            cert_validation=cert_validation,  # a path here is not overridden by REQUESTS_CA_BUNDLE
            operation_timeout=s.operation_timeout, connection_timeout=s.connection_timeout,
            read_timeout=s.read_timeout, reconnection_retries=s.reconnection_retries, encryption=s.encryption,
            no_proxy=True, **kwargs,
        )
        pool = RunspacePool(wsman, configuration_name=s.configuration_name)
        pool.open()
        return pool

    def _pool_or_open(self, cmdlet: str) -> Any:
        if self._pool is None:
            try:
                self._pool = self._open()
            except Exception as exc:  # noqa: BLE001 - every failure leaves as a PowerShellError
                raise self._transport_error(cmdlet, exc, sent=False) from None
        return self._pool

    def _transport_error(self, cmdlet: str, exc: BaseException, *, sent: bool) -> PowerShellError:
        from pypsrp.exceptions import AuthenticationError, WinRMTransportError

        detail = self._clean(exc)
        where = f"{self.endpoint} ({self.settings.configuration_name})"
        if isinstance(exc, AuthenticationError) or (isinstance(exc, WinRMTransportError) and exc.code == 401):
            return RemotingAuthFailed(f"{cmdlet}: {where} refused the credentials of "
                                      f"{self.settings.username or 'this process'}: {detail}", cmdlet=cmdlet)
        if sent:
            return RemotingOutcomeUnknown(f"{cmdlet}: the connection to {where} broke after the command was sent; "
                                          f"re-read before retrying ({detail})", cmdlet=cmdlet)
        return RemotingUnreachable(f"{cmdlet}: cannot reach {where}: {detail}", cmdlet=cmdlet)

    def run(self, cmdlet: str, parameters: Mapping[str, Any]) -> list[dict[str, Any]]:
        from pypsrp.powershell import PowerShell

        checked = check_parameters(cmdlet, parameters)
        for name, value in checked.items():
            if value is None:
                raise InvalidParameter(f"{cmdlet} -{name}: PSRP cannot send $null as a value (it would be a switch); "
                                       "send '' or [] to clear")
        with self._lock:
            for attempt in (1, 2):
                pool = self._pool_or_open(cmdlet)
                ps = PowerShell(pool)
                ps.add_cmdlet(cmdlet)
                for name, value in checked.items():
                    if value is SWITCH:
                        ps.add_parameter(name)
                    else:
                        ps.add_parameter(name, _psrp_value(value))
                try:
                    output = ps.invoke()
                except Exception as exc:  # noqa: BLE001
                    self._discard()
                    if attempt == 1 and _read_only(cmdlet):
                        continue  # a read is safe to repeat on a fresh pool
                    raise self._transport_error(cmdlet, exc, sent=True) from None
                break
        result = [self._as_dict(item) for item in output or ()]
        errors = [self._record(r) for r in getattr(ps.streams, "error", ()) or ()]
        if errors or ps.had_errors:
            if not errors:
                errors = [PSErrorRecord(message=f"{cmdlet} failed (pipeline state {ps.state})")]
            first = errors[0]
            raise CmdletFailed(f"{cmdlet} failed: {first.message}", cmdlet=cmdlet, records=errors, output=result)
        return result

    def _as_dict(self, item: Any) -> dict[str, Any]:
        value = ps_to_python(item)
        return value if isinstance(value, dict) else {"Value": value}

    def _record(self, record: Any) -> PSErrorRecord:
        message = _scrub(str(record) if record is not None else "", self._secrets())
        exception = getattr(record, "exception", None)
        exception_types = [_type_short(t) for t in getattr(exception, "types", None) or ()]
        exception_type = next((t for t in exception_types if t.endswith("Exception") and t not in _GENERIC_EXCEPTIONS),
                              None)
        fq = getattr(record, "fq_error", None)
        reason = getattr(record, "reason", None)
        exception_type = exception_type or (reason if reason and reason.endswith("Exception") else None) \
            or parse_exception_type(fq, message)
        target = getattr(record, "target_name", None)
        return PSErrorRecord(message=human_message(message) or message, exception_type=exception_type,
                             fully_qualified_error_id=fq, category=reason, target=target)

    def _discard(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(Exception):
                pool.close()

    def close(self) -> None:
        with self._lock:
            self._discard()


class LabPowerShellTransport:
    """The lab's PowerShell-shaped endpoint: POST ``{"cmdlet", "parameters"}`` as JSON over HTTPS
    with HTTP Basic credentials, answered with ``{"output": [...], "errors": [...]}``.

    Same validation as the PSRP transport; 429/503 answers are retried after their ``Retry-After``
    (bounded), as pypsrp's HTTP layer retries them.
    """

    def __init__(
        self,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 3,
        max_retry_wait: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoint = url
        self._secrets = tuple(s for s in (password,) if s)
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True
        args: dict[str, Any] = {"timeout": httpx.Timeout(timeout, connect=min(timeout, 15.0)), "verify": verify,
                                "trust_env": False}
        if username is not None:
            args["auth"] = httpx.BasicAuth(username, password or "")
        if transport is not None:
            args["transport"] = transport
        self._http = httpx.Client(**args)
        self._username = username
        self._max_retries = max_retries
        self._max_retry_wait = max_retry_wait
        self._sleep = sleep

    def run(self, cmdlet: str, parameters: Mapping[str, Any]) -> list[dict[str, Any]]:
        checked = check_parameters(cmdlet, parameters)
        body = {"cmdlet": cmdlet, "parameters": {k: _json_value(v) for k, v in checked.items()}}
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.post(self.endpoint, json=body, headers={"Accept": "application/json"})
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                raise RemotingUnreachable(f"{cmdlet}: cannot reach {self.endpoint}: {_scrub(str(exc), self._secrets)}",
                                          cmdlet=cmdlet) from None
            except httpx.TransportError as exc:
                cls = RemotingUnreachable if _read_only(cmdlet) else RemotingOutcomeUnknown
                raise cls(f"{cmdlet}: connection to {self.endpoint} broke: {_scrub(str(exc), self._secrets)}",
                          cmdlet=cmdlet) from None
            if response.status_code in (429, 503) and attempt <= self._max_retries:
                wait = _retry_after(response.headers)
                wait = 2.0 ** (attempt - 1) if wait is None else wait
                if wait <= self._max_retry_wait:
                    self._sleep(wait)
                    continue
            break
        if response.status_code in (401, 403):
            raise RemotingAuthFailed(f"{cmdlet}: {self.endpoint} refused the credentials of "
                                     f"{self._username or 'this client'} (HTTP {response.status_code})", cmdlet=cmdlet)
        try:
            doc = response.json()
        except ValueError:
            raise RemotingUnreachable(f"{cmdlet}: {self.endpoint} answered HTTP {response.status_code} without JSON",
                                      cmdlet=cmdlet) from None
        if not isinstance(doc, dict):
            doc = {"output": doc}
        output = [o if isinstance(o, dict) else {"Value": o} for o in doc.get("output") or ()]
        errors = [self._record(e) for e in doc.get("errors") or ()]
        if not errors and response.status_code >= 400:
            message = doc.get("error") or doc.get("message") or doc.get("detail") or f"HTTP {response.status_code}"
            if isinstance(message, dict):
                message = message.get("message") or json.dumps(message)[:500]
            errors = [PSErrorRecord(message=str(message), exception_type=parse_exception_type(str(message)))]
        if errors:
            if response.status_code in (429, 503):
                raise RemotingUnreachable(f"{cmdlet}: {self.endpoint} stayed busy (HTTP {response.status_code}): "
                                          f"{errors[0].message}", cmdlet=cmdlet, records=errors)
            raise CmdletFailed(f"{cmdlet} failed: {errors[0].message}", cmdlet=cmdlet, records=errors, output=output)
        return output

    def _record(self, error: Any) -> PSErrorRecord:
        if not isinstance(error, dict):
            text = _scrub(str(error), self._secrets)
            return PSErrorRecord(message=human_message(text) or text, exception_type=parse_exception_type(text))
        message = _scrub(str(error.get("message") or error.get("Message") or ""), self._secrets)
        declared = error.get("exception_type") or error.get("exceptionType") or error.get("reason") or ""
        fq = error.get("fq_error_id") or error.get("fully_qualified_error_id") or error.get("FullyQualifiedErrorId")
        exception_type = parse_exception_type(str(declared), str(fq or ""), message)
        return PSErrorRecord(
            message=human_message(message) or message,
            exception_type=exception_type,
            fully_qualified_error_id=str(fq) if fq else None,
            category=error.get("category") or error.get("CategoryInfo"),
            target=error.get("target_name") or error.get("TargetObject") or None,
        )

    def close(self) -> None:
        self._http.close()
