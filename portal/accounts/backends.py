"""Local (username and password) accounts: a break-glass way in that can be switched off."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.backends import ModelBackend


class LocalAccountBackend(ModelBackend):
    """Django's password check, refusing everyone while LOCAL_ACCOUNTS_ENABLED is off.

    People signed in with Entra ID are logged in by the sign-in view, never through a password,
    and their accounts hold no usable password.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if not settings.LOCAL_ACCOUNTS_ENABLED:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
