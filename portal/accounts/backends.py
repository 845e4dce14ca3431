"""Local (username and password) accounts: a break-glass way in that can be switched off."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.backends import ModelBackend

from .selectors import access_of


class LocalAccountBackend(ModelBackend):
    """Django's password check, refusing everyone while LOCAL_ACCOUNTS_ENABLED is off.

    People signed in with Entra ID are logged in by the sign-in view, never through a password,
    and their accounts hold no usable password. Everyone's permissions (a superuser's aside) are read in one
    statement with their roles (selectors.access_of) rather than by ModelBackend's two queries.
    """

    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None or user_obj.is_superuser:
            return super().get_all_permissions(user_obj, obj=obj)
        if not hasattr(user_obj, "_perm_cache"):
            user_obj._perm_cache = set(access_of(user_obj).permissions)
        return user_obj._perm_cache

    def authenticate(self, request, username=None, password=None, **kwargs):
        if not settings.LOCAL_ACCOUNTS_ENABLED:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
