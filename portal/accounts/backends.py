"""Local (username and password) accounts: a break-glass way in that can be switched off."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db import connections, router

from .selectors import access_of


class LocalAccountBackend(ModelBackend):
    """Django's password check, refusing everyone while LOCAL_ACCOUNTS_ENABLED is off.

    People signed in with Entra ID are logged in by the sign-in view, never through a password,
    and their accounts hold no usable password. Everyone's permissions (a superuser's aside) are read in one
    statement with their roles (selectors.access_of) rather than by ModelBackend's two queries.
    """

    def get_user(self, user_id):
        # Every request reads its person: one SQL statement rather than the ORM's query, which cost ~0.45 ms of CPU
        # more to build (ModelBackend.get_user otherwise: a missing or inactive account gives None).
        model = get_user_model()
        quote = connections[router.db_for_read(model)].ops.quote_name
        columns = ", ".join(quote(field.column) for field in model._meta.concrete_fields)
        sql = f"SELECT {columns} FROM {quote(model._meta.db_table)} WHERE {quote(model._meta.pk.column)} = %s"  # noqa: S608 - the model's own names
        user = next(iter(model._default_manager.raw(sql, [user_id])), None)
        return user if user is not None and self.user_can_authenticate(user) else None

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
