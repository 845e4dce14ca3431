from __future__ import annotations

from typing import Any

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


def _client_ip(request) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


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
        source_ip=_client_ip(request),
    )
