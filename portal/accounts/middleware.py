from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.http import HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.utils.http import urlencode

from portal.audit.services import record_denied

from .permissions import is_public, required_permissions_of
from .roles import roles_granting


class HtmxAwareLoginRequiredMiddleware(LoginRequiredMiddleware):
    """Login required everywhere; an expired session met by an htmx poll sends the whole page to login.

    A plain 302 would make htmx swap the login form into a fragment of the page.
    """

    def handle_no_permission(self, request, view_func):
        if getattr(request, "htmx", False):
            page = request.htmx.current_url_abs_path or request.get_full_path()
            login_url = resolve_url(self.get_login_url(view_func))
            response = HttpResponse(status=204)
            response["HX-Redirect"] = f"{login_url}?{urlencode({self.get_redirect_field_name(view_func): page})}"
            return response
        return super().handle_no_permission(request, view_func)


def forbidden(request, *, missing: list[str], reason: str = ""):
    user = getattr(request, "user", None)
    record_denied(user=user if user is not None and user.is_authenticated else None, request=request,
                  missing=missing, reason=reason)
    roles = sorted({role for perm in missing for role in roles_granting(perm)})
    return render(
        request,
        "403.html",
        {"missing": missing, "roles_needed": roles, "reason": reason},
        status=403,
    )


class PermissionRequiredMiddleware:
    """Deny by default: every view names the permissions it needs, or nobody reaches it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if is_public(view_func):
            return None
        match = request.resolver_match
        if match is not None and "admin" in match.namespaces:
            if request.user.is_active and request.user.is_superuser:
                return None
            return forbidden(request, missing=[], reason="The Django admin is for superusers only.")
        needed = required_permissions_of(view_func)
        if needed is None:
            return forbidden(request, missing=[], reason="This page declares no permission, so it is refused.")
        missing = [perm for perm in needed if not request.user.has_perm(perm)]
        if missing:
            return forbidden(request, missing=missing)
        return None


ENTRA_SESSION_KEY = "entra_signed_in_at"
SIGN_IN_NOTICE_KEY = "sign_in_notice"


class SignInPolicyMiddleware:
    """Ends a session the sign-in policy no longer allows, before any view runs:

    - signed in with Entra ID longer ago than ENTRA_ROLE_RECHECK_SECONDS: the person signs in again,
      so that app roles removed in Entra ID since then are removed here too;
    - signed in with a local account while LOCAL_ACCOUNTS_ENABLED is off.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            reason = self._reason(request)
            if reason:
                from django.contrib.auth import logout

                logout(request)
                # In the new (anonymous) session: the login page says why it is shown.
                request.session[SIGN_IN_NOTICE_KEY] = reason
                login_url = f"{resolve_url(settings.LOGIN_URL)}?{urlencode({'next': request.get_full_path()})}"
                if getattr(request, "htmx", False) or request.headers.get("HX-Request"):
                    response = HttpResponse(status=204)
                    response["HX-Redirect"] = login_url
                    return response
                return redirect(login_url)
        return self.get_response(request)

    @staticmethod
    def _reason(request) -> str:
        signed_in_at = request.session.get(ENTRA_SESSION_KEY)
        if signed_in_at is None:
            if not settings.LOCAL_ACCOUNTS_ENABLED:
                return "Local accounts are switched off: sign in with Microsoft."
            return ""
        if time.time() - float(signed_in_at) > settings.ENTRA_ROLE_RECHECK_SECONDS:
            return "Please sign in again, so that your roles are checked with Entra ID."
        return ""
