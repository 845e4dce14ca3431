"""The ``userRegistrationDetails`` report and the directory audit log."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from .common import _dumps, _new_id, _registration_defaults, iso, iso_precise, utc_now
from .query import _SPECS, Condition, Page


class ReportsStoreMixin:
    """Registration report and audit log; part of ``CloudStore``."""

    def upsert_registration_details(self, *, user_id: str, properties: Mapping[str, Any]) -> dict[str, Any]:
        """Write one ``userRegistrationDetails`` row (the report lags the methods, as in Entra ID)."""
        uid = user_id.lower()
        row = self._execute("SELECT doc FROM registration_details WHERE user_id = ?", (uid,)).fetchone()
        doc = json.loads(row[0]) if row else _registration_defaults()
        doc.update(properties)
        doc["id"] = uid
        doc.setdefault("lastUpdatedDateTime", iso(utc_now()))
        self._execute(
            "INSERT INTO registration_details (user_id, upn, doc) VALUES (?, ?, ?) ON CONFLICT(user_id) DO UPDATE SET"
            " upn = excluded.upn, doc = excluded.doc",
            (uid, doc.get("userPrincipalName"), _dumps(doc)),
        )
        return doc

    def list_registration_details(
        self,
        *,
        where: Condition | None = None,
        order_by: Sequence[tuple[str, bool]] = (),
        limit: int = 100,
        token: str | None = None,
        with_total: bool = False,
        raw: bool = False,
    ) -> Page:
        """One page of report rows; ``raw`` gives each row as its stored JSON text (a listing answers it as is)."""
        return self._page(_SPECS["registration"], [], [], where, order_by, limit, token, with_total,
                          _raw_doc if raw else _doc, "o.doc")

    # -- directory audit log

    def add_audit_event(
        self,
        *,
        activity_display_name: str,
        category: str,
        activity_date_time: datetime | None = None,
        result: str = "success",
        result_reason: str = "",
        initiated_by: Mapping[str, Any] | None = None,
        target_resources: Sequence[Mapping[str, Any]] = (),
        additional_details: Sequence[Mapping[str, str]] = (),
        logged_by_service: str = "Core Directory",
        operation_type: str = "Add",
        event_id: str | None = None,
    ) -> dict[str, Any]:
        """Record one ``directoryAudit`` entry in Graph's shape."""
        moment = activity_date_time or utc_now()
        eid = event_id or f"Directory_{_new_id()}"
        doc = {
            "id": eid,
            "category": category,
            "correlationId": _new_id(),
            "result": result,
            "resultReason": result_reason,
            "activityDisplayName": activity_display_name,
            "activityDateTime": iso_precise(moment),
            "loggedByService": logged_by_service,
            "operationType": operation_type,
            "initiatedBy": dict(initiated_by) if initiated_by else {"app": None, "user": None},
            "targetResources": [
                {"id": None, "displayName": None, "type": None, "userPrincipalName": None, "groupType": None,
                 "modifiedProperties": [], **dict(t)}
                for t in target_resources
            ],
            "additionalDetails": [dict(d) for d in additional_details],
        }
        self._execute(
            "INSERT INTO audit_events (id, activity_time, activity, category, doc) VALUES (?, ?, ?, ?, ?)",
            (eid, iso_precise(moment), activity_display_name, category, _dumps(doc)),
        )
        return doc

    def list_audit_events(
        self,
        *,
        where: Condition | None = None,
        order_by: Sequence[tuple[str, bool]] = (("activityDateTime", True),),
        limit: int = 100,
        token: str | None = None,
        raw: bool = False,
    ) -> Page:
        """One page of audit events, newest first unless ``order_by``; ``raw`` as for the report."""
        return self._page(_SPECS["audit"], [], [], where, order_by, limit, token, False,
                          _raw_doc if raw else _doc, "o.doc")


def _doc(row: Any) -> dict[str, Any]:
    return json.loads(row["doc"])


def _raw_doc(row: Any) -> str:
    return row["doc"]
