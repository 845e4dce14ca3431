"""Authentication methods per user."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .common import AUTH_METHOD_TYPES, _dumps, _new_id, iso, utc_now


class AuthMethodsStoreMixin:
    """Authentication methods; part of ``CloudStore``."""

    def add_auth_method(
        self,
        *,
        user_id: str,
        method_type: str,
        properties: Mapping[str, Any] | None = None,
        method_id: str | None = None,
        odata_type: str | None = None,
    ) -> dict[str, Any]:
        """Register a method (``password``, ``microsoftAuthenticator``, ``phone``, ``fido2``...).

        ``odata_type`` admits a type this lab does not model (Graph adds method types over time; a
        client must keep such a method and mark it, not fail)."""
        if method_type not in AUTH_METHOD_TYPES and not odata_type:
            raise ValueError(f"method_type must be one of {sorted(AUTH_METHOD_TYPES)}")
        # The password method has a fixed, well-known id in Graph.
        mid = method_id or ("28c10230-6103-485e-b985-444c60001490" if method_type == "password" else _new_id())
        doc = {"@odata.type": odata_type or AUTH_METHOD_TYPES[method_type], "id": mid, **(properties or {})}
        if method_type != "password":
            doc.setdefault("createdDateTime", iso(utc_now()))
        self._execute(
            "INSERT OR REPLACE INTO auth_methods (id, user_id, method_type, doc) VALUES (?, ?, ?, ?)",
            (f"{user_id.lower()}:{mid}", user_id.lower(), method_type, _dumps(doc)),
        )
        return doc

    def delete_auth_method(self, *, user_id: str, method_id: str) -> bool:
        return self._execute("DELETE FROM auth_methods WHERE id = ?", (f"{user_id.lower()}:{method_id}",)).rowcount > 0

    def list_auth_methods(self, *, user_id: str) -> list[dict[str, Any]]:
        rows = self._execute("SELECT doc FROM auth_methods WHERE user_id = ? ORDER BY seq", (user_id.lower(),))
        return [json.loads(row[0]) for row in rows.fetchall()]
