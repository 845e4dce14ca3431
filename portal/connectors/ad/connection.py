"""The connection under :class:`~.client.ActiveDirectory`: one ldap3 connection per instance, calls
serialised by a lock, transient failures retried with backoff, a write whose outcome is unknown not
repeated (:class:`~.errors.OutcomeUnknown`).
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any, Self
from uuid import UUID

import ldap3
from ldap3 import BASE, LEVEL, SUBTREE
from ldap3.core import exceptions as ldap_exc

from .dn import Dn
from .errors import (
    _AFTER_SEND,
    _BEFORE_SEND,
    _TRANSIENT_CODES,
    AdError,
    ConstraintViolation,
    OutcomeUnknown,
    ServerDown,
    TlsError,
    _error_from_result,
    _Transient,
)
from .settings import AdSettings


def _ldap_values(value: Any) -> list[Any]:
    """Python values to what ldap3 sends: text, bytes, TRUE/FALSE, decimal integers."""
    if value is None:
        return []
    items = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
    out: list[Any] = []
    for item in items:
        if isinstance(item, bool):
            out.append("TRUE" if item else "FALSE")
        elif isinstance(item, int):
            out.append(str(item))
        elif isinstance(item, UUID):
            out.append(item.bytes_le)
        elif isinstance(item, Dn):
            out.append(str(item))
        elif isinstance(item, (str, bytes, bytearray)):
            out.append(item)
        else:
            raise ConstraintViolation(f"cannot send a {type(item).__name__} value to the directory")
    return out


def _outcome(conn: ldap3.Connection, status: Any) -> tuple[bool, dict, list]:
    """Status, result and response of the operation just run on a SYNC connection.

    The response is detached from the connection, so that the caller alone decides how long a
    search page stays in memory (the paged search frees each entry as it is yielded), and the next
    call, from whichever thread, cannot overwrite a page still being consumed outside the lock.
    """
    result, response = conn.result or {}, conn.response or []
    conn.response = None
    return bool(status), result, response


_SCOPES = {"base": BASE, "one": LEVEL, "subtree": SUBTREE}
_PAGED_OID = "1.2.840.113556.1.4.319"
_TREE_DELETE_OID = "1.2.840.113556.1.4.805"


class AdConnection:
    """One AD domain's ldap3 connection: lifecycle, TLS, serialised calls with retry and result checks.

    :class:`~.client.ActiveDirectory` builds the directory operations on it.
    """

    def __init__(self, settings: AdSettings) -> None:
        self.settings = settings
        self._conn: ldap3.Connection | None = None
        self._lock = threading.RLock()

    # ---- lifecycle

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.unbind()

    # ---- connection handling

    def _tls(self) -> ldap3.Tls | None:
        s = self.settings
        if not (s.use_ssl or s.start_tls):
            return None
        return ldap3.Tls(
            validate=ssl.CERT_REQUIRED if s.validate_cert else ssl.CERT_NONE,
            ca_certs_file=s.ca_file,
            valid_names=[s.tls_server_name] if s.tls_server_name else None,
        )

    def _new_connection(self, strategy: str = ldap3.SYNC) -> ldap3.Connection:
        """A bound connection. SYNC, not SAFE_SYNC: calls are already serialised by ``self._lock``,
        and SAFE_SYNC deep-copies every result and response (each search page) to make them
        thread-safe, which cost a third of a 100k-object scan. ``_call`` reads the outcome from
        ``conn.result``/``conn.response`` under the lock instead."""
        s = self.settings
        server = ldap3.Server(
            s.host, port=s.effective_port, use_ssl=s.use_ssl, tls=self._tls(), get_info=ldap3.NONE,
            connect_timeout=s.connect_timeout,
        )
        common: dict[str, Any] = {
            "client_strategy": strategy,
            "receive_timeout": max(1, int(s.operation_timeout)),  # ldap3 needs an int here
            "raise_exceptions": False,
            "check_names": False,  # DNs are validated by parse_dn; ldap3's sanitiser mangles some
            "auto_range": False,  # ranges are followed explicitly by iter_values
            # With auto_range off and empty attributes on, ldap3 2.9.1 raises KeyError('member') on an
            # explicit range request (it deletes the plain name it never added).
            "return_empty_attributes": False,
            "read_only": False,
        }
        if s.auth == "gssapi":
            try:
                import gssapi  # noqa: F401  (ldap3 imports it lazily; fail early with a clear message)
            except ImportError as exc:
                raise AdError(
                    "auth='gssapi' needs the 'gssapi' Python package and a Kerberos ticket (kinit or a keytab)"
                ) from exc
            conn = ldap3.Connection(
                server, authentication=ldap3.SASL, sasl_mechanism=ldap3.KERBEROS,
                sasl_credentials=(s.gssapi_host,) if s.gssapi_host else None, **common,
            )
        elif s.bind_dn:
            conn = ldap3.Connection(server, user=s.bind_dn, password=s.password or "", **common)
        else:
            conn = ldap3.Connection(server, **common)
        try:
            conn.open()
            if s.start_tls and not conn.start_tls():
                raise TlsError(f"StartTLS with {s.host} failed", ldap_message=str(conn.result))
            if not conn.bind():
                raise _error_from_result(f"bind as {s.bind_dn or 'anonymous'} to {s.url}", conn.result or {})
        except (ldap_exc.LDAPStartTLSError, ssl.SSLError) as exc:
            self._discard(conn)
            raise TlsError(f"TLS with {s.url} failed: {exc}") from exc
        except ldap_exc.LDAPSocketOpenError as exc:
            self._discard(conn)
            if "certificate" in str(exc).lower() or "ssl" in str(exc).lower():
                raise TlsError(f"TLS with {s.url} failed: {exc}") from exc
            raise ServerDown(f"cannot connect to {s.url}: {exc}") from exc
        except ldap_exc.LDAPException as exc:
            self._discard(conn)
            raise ServerDown(f"cannot connect to {s.url}: {exc}") from exc
        except AdError:
            self._discard(conn)
            raise
        return conn

    @staticmethod
    def _discard(conn: ldap3.Connection) -> None:
        with contextlib.suppress(Exception):
            conn.unbind()

    def _connection(self) -> ldap3.Connection:
        conn = self._conn
        if conn is not None and (conn.closed or not self._socket_alive(conn)):
            self._discard(conn)
            conn = self._conn = None
        if conn is None:
            conn = self._conn = self._new_connection()
        return conn

    @staticmethod
    def _socket_alive(conn: ldap3.Connection) -> bool:
        """False when the server has closed an idle connection (restart, idle timeout).

        Checked before each request so that a write is not sent into a dead socket, where its
        outcome would look unknown although the server never saw it.
        """
        sock = getattr(conn, "socket", None)
        if sock is None:
            return False
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return False
        if not readable:
            return True
        try:
            if isinstance(sock, ssl.SSLSocket):
                return sock.pending() > 0  # TLS records pending; plain EOF shows as readable+empty
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False

    def _call(self, action: str, fn: Callable[[ldap3.Connection], Any], *, write: bool, dn: str | None = None) -> Any:
        """Run one LDAP operation with the retry policy; returns (status, result, response).

        ``fn(conn)`` issues exactly one ldap3 operation on the (SYNC) connection and returns its
        status; the result and response are taken from the connection by :func:`_outcome`.
        """
        s = self.settings
        attempt = 0
        while True:
            attempt += 1
            try:
                with self._lock:
                    try:
                        conn = self._connection()
                    except ServerDown as exc:
                        if isinstance(exc, TlsError):
                            raise
                        raise _Transient(exc, sent=False) from exc
                    try:
                        status, result, response = _outcome(conn, fn(conn))
                    except _BEFORE_SEND as exc:
                        self.close()
                        raise _Transient(ServerDown(f"{action}: {exc}", dn=dn), sent=False) from exc
                    except _AFTER_SEND as exc:
                        self.close()
                        raise _Transient(ServerDown(f"{action}: connection lost ({exc})", dn=dn), sent=True) from exc
                    except ldap_exc.LDAPException as exc:  # anything else ldap3 raises, e.g. a bad control
                        raise AdError(f"{action}: {exc}", dn=dn) from exc
                code = int((result or {}).get("result", 0))
                if code in _TRANSIENT_CODES:
                    raise _Transient(_error_from_result(action, result, dn), sent=False)
                if code in (80, 81, 91) and not status:
                    self.close()
                    raise _Transient(_error_from_result(action, result, dn), sent=True)
                return status, result, response
            except _Transient as transient:
                if write and transient.sent:
                    err = transient.error
                    raise OutcomeUnknown(
                        f"{action}: the connection broke after the request was sent; re-read before retrying",
                        result_code=err.result_code, description=err.description, ldap_message=err.ldap_message,
                        dn=dn,
                    ) from transient
                if attempt > s.retries:
                    err = transient.error
                    if isinstance(err, ServerDown):
                        state = (
                            f"still {err.description}" if err.result_code in _TRANSIENT_CODES else "unreachable"
                        )
                        raise ServerDown(
                            f"{action}: {s.url} {state} after {attempt} attempts ({err.message})",
                            result_code=err.result_code, description=err.description,
                            ldap_message=err.ldap_message, dn=dn,
                        ) from transient
                    raise err from transient
                time.sleep(s.retry_backoff * (2 ** (attempt - 1)))

    def _ok(self, action: str, outcome: tuple, dn: str | None = None) -> tuple:
        status, result, response = outcome
        if not status and int(result.get("result", 1)) != 0:
            raise _error_from_result(action, result, dn)
        return outcome
