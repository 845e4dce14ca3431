"""The request being served, for audit events raised by model signals (a role granted in the Django
admin, say), which have no request argument of their own."""

from __future__ import annotations

from contextvars import ContextVar

current_request: ContextVar = ContextVar("audit_current_request", default=None)


class AuditRequestMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            current_request.reset(token)


def request_actor():
    """(actor, request) of the change being made: the signed-in user of the current request, if any."""
    request = current_request.get()
    user = getattr(request, "user", None)
    return (user if user is not None and user.is_authenticated else None), request
