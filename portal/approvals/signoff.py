"""Signing off one request, the same way in every area: who may sign (the area's permission, never the
requester: four eyes), what may be signed (only what awaits approval and still matches the hash it was pinned
with), what a signature stores (who, when, the note, until when it is valid) and what the audit log keeps
(the decision, or the refusal of a forged or replayed one).

Each area describes its requests once with a :class:`SignOff` and keeps only what is its own: the run an
approval starts, the fields a decision adds. The batch of DL migrations is not signed here: its approval is
one transition of its state machine (migrations_app/batch_services.py), with four eyes in the database too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import models
from django.utils import timezone

from portal.audit.services import record, refusal_recorded

from .validity import check_approval_validity

NOTE_LENGTH = 500


@dataclass(frozen=True)
class SignOff:
    """How one area's requests are signed.

    ``kwarg`` names the request in the area's service functions (``fix=``, ``plan=``); ``label`` names it in
    messages ("Fix #3"), ``target`` in the audit log ("address_fix:3"); ``this`` and ``requester`` finish the
    four-eyes sentence; ``check_pinned`` raises the area's refusal when the stored request no longer matches
    the hash it was requested with. ``approved`` is the status a signature sets (None where the area moves the
    request on itself, by queueing its run)."""

    model: type[models.Model]
    kwarg: str
    permission: str
    what: str
    refused: type[Exception]
    awaiting: str
    approved: str | None
    rejected: str
    audit: str
    label: Callable[[Any], str]
    target: Callable[[Any], str]
    this: str
    requester: str = "the requester"
    plural: bool = False
    check_pinned: Callable[[Any], None] | None = None

    def audited(self, action: str) -> Callable:
        """Decorate an area's decision (approve, reject, withdraw, request) so that its refusal is audited as
        ``<audit>.<action>.refused``."""
        return refusals_audited(f"{self.audit}.{action}", kwarg=self.kwarg, target=self.target,
                                refused=self.refused)


def refusals_audited(action: str, *, kwarg: str, target: Callable[[Any], str],
                     refused: type[Exception]) -> Callable:
    """Decorate a service whose refusal (a forged or replayed POST) must be audited as ``<action>.refused``,
    outside the service's transaction, whose rollback would take it along. The service names its object by
    ``kwarg``."""

    def wrap(fn):
        @functools.wraps(fn)
        def decide(*, user, request=None, **kw):
            obj = kw[kwarg]
            with refusal_recorded(user=user, action=action, target=target(obj), request=request,
                                  refused=(refused, PermissionDenied), **{kwarg: obj.pk}):
                return fn(user=user, request=request, **kw)
        return decide
    return wrap


def check_can_sign(spec: SignOff, *, obj, user) -> None:
    if not user.has_perm(spec.permission):
        raise PermissionDenied(f"Approving {spec.what} needs the Approver or Administrator role.")
    if obj.status != spec.awaiting:
        raise spec.refused(f"{spec.label(obj)} {'are' if spec.plural else 'is'} "
                           f"{obj.get_status_display().lower()}, not awaiting approval.")
    if obj.requested_by_id == user.pk:
        raise spec.refused(f"Four eyes: someone other than {spec.requester} must approve {spec.this}.")
    if spec.check_pinned is not None:
        spec.check_pinned(obj)


def _locked(spec: SignOff, obj):
    return spec.model.objects.select_for_update().get(pk=obj.pk)


def do_sign(spec: SignOff, *, obj, user, valid_for: timedelta | None = None, note: str = "",
            shown_hash: str | None = None, fields: dict[str, Any] | None = None,
            audit: dict[str, Any] | None = None, request=None):
    """Sign the request as it stands, locked; ``shown_hash``, when the area's form sends it, must be the hash
    of what the approver read. Returns the locked request with the signature stored. Call it inside the
    area's transaction, before the area starts what the approval allows."""
    obj = _locked(spec, obj)
    check_can_sign(spec, obj=obj, user=user)
    if shown_hash is not None and shown_hash != obj.plan_hash:
        raise spec.refused("What you were shown is not what was requested (it changed since): reload the page and "
                           "read it again.")
    validity = check_approval_validity(valid_for, refused=spec.refused)
    now = timezone.now()
    update = {"approved_by": user, "decided_at": now, "decision_note": note[:NOTE_LENGTH],
              "approval_expires_at": now + validity, **(fields or {})}
    if spec.approved is not None:
        update["status"] = spec.approved
    spec.model.objects.filter(pk=obj.pk).update(**update)
    record(actor=user, action=f"{spec.audit}.approve", target=spec.target(obj), request=request,
           after={**(audit or {}), "plan_hash": obj.plan_hash, "expires_at": (now + validity).isoformat(),
                  "note": note[:NOTE_LENGTH]})
    obj.refresh_from_db()
    return obj


def do_decline(spec: SignOff, *, obj, user, reason: str = "", fields: dict[str, Any] | None = None,
               audit: dict[str, Any] | None = None, request=None):
    """Reject the request with the reason its requester will read; nothing it planned runs."""
    obj = _locked(spec, obj)
    check_can_sign(spec, obj=obj, user=user)
    if not reason.strip():
        raise spec.refused(f"Say why it is rejected: {spec.requester} reads the reason.")
    spec.model.objects.filter(pk=obj.pk).update(status=spec.rejected, approved_by=user, decided_at=timezone.now(),
                                                decision_note=reason[:NOTE_LENGTH], **(fields or {}))
    record(actor=user, action=f"{spec.audit}.reject", target=spec.target(obj), request=request,
           after={**(audit or {}), "reason": reason[:NOTE_LENGTH]})
    obj.refresh_from_db()
    return obj
