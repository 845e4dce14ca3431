"""Graph reports and audit: ``reports/authenticationMethods/userRegistrationDetails`` and
``auditLogs/directoryAudits`` (read, and the record every Graph write adds)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .api import ApiRequest, ApiResponse, RawItems
from .errors import graph_error
from .store.query import Compare


class GraphReportsMixin:
    """Report and audit-log handlers; part of ``LabCloud``."""

    def _registration_list(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require(req, "AuditLog.Read.All")
        self._premium(req)
        where = self._filter(req, directory=False)
        order = self._order(req)
        top = self._top(req)
        token = self._skiptoken(req)
        count = self._count_requested(req)
        page = self._store_query(req, lambda: self.store.list_registration_details(
            where=where, order_by=order, limit=top, token=token, with_total=count, raw=True))
        return self._collection(req, "/reports/authenticationMethods/userRegistrationDetails",
                                "reports/authenticationMethods/userRegistrationDetails", page, RawItems(page.items),
                                count)

    def _registration_item(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require(req, "AuditLog.Read.All")
        self._premium(req)
        page = self.store.list_registration_details(where=Compare(("id",), "eq", match.group(1).lower()), limit=1)
        if not page.items:
            raise graph_error(404, "Request_ResourceNotFound", f"Resource '{match.group(1)}' does not exist or one of "
                              "its queried reference-property objects are not present.", req)
        return ApiResponse(200, {"@odata.context": self._context(
            req, "reports/authenticationMethods/userRegistrationDetails/$entity"), **page.items[0]})

    def _audit_list(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require(req, "AuditLog.Read.All")
        where = self._filter(req, directory=False)
        order = self._order(req) or [("activityDateTime", True)]
        top = self._top(req)
        token = self._skiptoken(req)
        page = self._store_query(req, lambda: self.store.list_audit_events(
            where=where, order_by=order, limit=top, token=token, raw=True))
        return self._collection(req, "/auditLogs/directoryAudits", "auditLogs/directoryAudits", page,
                                RawItems(page.items), False)

    def _audit_item(self, req: ApiRequest, match: re.Match[str]) -> ApiResponse:
        self._require(req, "AuditLog.Read.All")
        page = self.store.list_audit_events(where=Compare(("id",), "eq", match.group(1)), limit=1)
        if not page.items:
            raise graph_error(404, "Request_ResourceNotFound", f"Resource '{match.group(1)}' does not exist or one of "
                              "its queried reference-property objects are not present.", req)
        return ApiResponse(200, {"@odata.context": self._context(req, "auditLogs/directoryAudits/$entity"),
                                 **page.items[0]})

    def _audit(self, req: ApiRequest, activity: str, category: str, operation: str, target: Mapping[str, Any],
               target_type: str, changes: Mapping[str, Any] | None = None,
               extra_target: Mapping[str, Any] | None = None) -> None:
        claims = req.claims or {}
        targets = [{"id": target["id"], "displayName": target.get("displayName"), "type": target_type,
                    "userPrincipalName": target.get("userPrincipalName"),
                    "modifiedProperties": [{"displayName": k, "oldValue": json.dumps(target.get(k)),
                                            "newValue": json.dumps(v)} for k, v in (changes or {}).items()]}]
        if extra_target:
            targets.append({"id": extra_target["id"], "displayName": extra_target.get("displayName"),
                            "type": extra_target.get("@kind", "").capitalize(),
                            "userPrincipalName": extra_target.get("userPrincipalName")})
        self.store.add_audit_event(
            activity_display_name=activity, category=category, operation_type=operation,
            initiated_by={"app": {"appId": claims.get("appid"), "displayName": "DirOps Portal (lab)",
                                  "servicePrincipalId": claims.get("oid"), "servicePrincipalName": None},
                          "user": None},
            target_resources=targets,
        )
