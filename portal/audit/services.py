from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

from .models import AuditEvent

_encoder = DjangoJSONEncoder()


def _jsonable(value: Any) -> Any:
    """Before/after values come from directories (bytes, datetimes): store what JSON can hold."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    try:
        return _encoder.default(value)
    except TypeError:
        return str(value)


def _valid_ip(text: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address((text or "").strip())) if text else None
    except ValueError:
        return None


def client_ip(request) -> str | None:
    """The client's address: from the header a trusted reverse proxy sets (AUDIT_CLIENT_IP_HEADER),
    when one is configured, else the socket's peer. Of a forwarded list only the last entry is the
    proxy's own statement; anything before it came from the client and may be forged."""
    if request is None:
        return None
    header = settings.AUDIT_CLIENT_IP_HEADER
    if header:
        key = header if header.startswith("HTTP_") or header == "REMOTE_ADDR" else \
            "HTTP_" + header.upper().replace("-", "_")
        forwarded = [part for part in (request.META.get(key) or "").split(",") if part.strip()]
        if forwarded and (ip := _valid_ip(forwarded[-1])):
            return ip
    return _valid_ip(request.META.get("REMOTE_ADDR"))


def record(
    *,
    actor,
    action: str,
    target: str = "",
    before: Any = None,
    after: Any = None,
    job=None,
    detail: dict | None = None,
    request=None,
) -> AuditEvent:
    """Append one audit event. The only way events are written."""
    is_user = actor is not None and getattr(actor, "is_authenticated", False)
    return AuditEvent.objects.create(
        actor=actor if is_user else None,
        actor_name=actor.get_username() if is_user else "",
        action=action,
        target=target[:500],
        before=_jsonable(before),
        after=_jsonable(after),
        detail=_jsonable(detail or {}),
        job=job,
        source_ip=client_ip(request),
    )


def record_download(*, user, what: str, target: str, request=None, **detail: Any) -> AuditEvent:
    """An export or a download of directory data leaves the portal: who took what, with which filter."""
    query = {k: v for k, v in request.GET.items() if k not in ("page", "per_page")} if request is not None else {}
    return record(actor=user, action=f"download.{what}", target=target, detail={**detail, "query": query},
                  request=request)


def record_denied(*, user, request, missing: list[str] | tuple[str, ...] = (), reason: str = "") -> AuditEvent:
    """A request refused for lack of permission (403): a forged POST or a probe leaves a trace."""
    return record(actor=user, action="access.denied", target=request.path[:500],
                  detail={"method": request.method, "missing": list(missing), "reason": reason[:300]},
                  request=request)


@contextmanager
def refusal_recorded(*, user, action: str, target: str, refused: tuple[type[Exception], ...], request=None,
                     job=None, **detail: Any) -> Iterator[None]:
    """Wrap an action that may be refused (a forged POST, a replayed approval): the refusal is audited
    as ``<action>.refused``, outside the action's own transaction, whose rollback would take it along."""
    try:
        yield
    except refused as exc:
        record(actor=user, action=f"{action}.refused", target=target, detail={**detail, "reason": str(exc)},
               job=job, request=request)
        raise
