"""Reads of the MFA registration report: snapshots, their rows, headline figures, trend, roll-out readiness."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from django.db import connection
from django.db.models import Count, Q, QuerySet, TextField
from django.db.models.functions import Cast

from ..figures import cached_figure, filtered_count
from ..models import MfaAuditEvent, MfaAuditJournal, MfaSnapshot, MfaUserRow
from .choices import MFA_CLASS_COLOURS, MFA_CLASS_FILLS, MethodFamily, MfaClass
from .classify import Event, new_event
from .collect import AUDIT_READ_KEY, KnownAudit


def snapshots() -> QuerySet[MfaSnapshot]:
    return MfaSnapshot.objects.select_related("job", "started_by")


def snapshot_or_latest(pk: Any = None) -> MfaSnapshot | None:
    # Without the job and the person who started it (snapshots() joins them for lists that show them): a page about
    # one snapshot shows neither, and the join's ~40 more columns doubled the cost of reading it (~1.4 ms per page).
    qs = MfaSnapshot.objects.all()
    if pk not in (None, ""):
        try:
            return qs.filter(pk=int(pk)).first()
        except (TypeError, ValueError):
            return None
    return qs.first()


def snapshot_of_job(job: Any) -> MfaSnapshot | None:
    """The snapshot a snapshot job stored (none before it ends)."""
    return MfaSnapshot.objects.filter(job=job).only("id").first()


def known_audit(*, tenant: str, since: datetime) -> KnownAudit | None:
    """The audit events earlier snapshots of ``tenant`` read, from ``since`` on, when they can stand in for a read
    of the audit from there: None without a journal, with one written under other filters (``AUDIT_READ_KEY``)
    or one that does not reach back to ``since`` (a wider window than before). The events are read as the
    snapshot takes them."""
    journal = MfaAuditJournal.objects.filter(tenant=tenant).first()
    if journal is None or journal.read_key != AUDIT_READ_KEY or journal.covered_from > since:
        return None
    return KnownAudit(read_until=journal.read_until, events=_journal_events(journal, since))


def _journal_events(journal: MfaAuditJournal, since: datetime) -> Iterator[tuple[str, Event]]:
    for audit_id, user_id, when, activity, kind, detail, actor, added, had in _journal_rows(journal, since):
        yield user_id, new_event(id=audit_id, time=when, activity=activity, kind=kind, detail=detail, actor=actor,
                                 added_devices=tuple(added), had_devices=had)


def _journal_rows(journal: MfaAuditJournal, since: datetime) -> Iterator[tuple]:
    """The journal's events from ``since`` on, as tuples of their fields. A 100,000-user tenant's journal holds
    ~275,000 events: through the ORM's per-value converters that cost ~18 us an event, most of a snapshot's time
    once the audit is no longer read. Here SQLite's times are read as text and parsed by ``fromisoformat`` with their
    offset (UTC, as Django stores them; PostgreSQL's driver gives aware times), the device lists (JSON text from
    both: Django leaves jsonb undecoded) by orjson, and an empty list, the usual one, not at all."""
    sqlite = connection.vendor == "sqlite"
    qs = MfaAuditEvent.objects.filter(journal=journal, time__gte=since)
    if sqlite:
        qs = qs.annotate(time_text=Cast("time", TextField()))
    qs = qs.values_list("audit_id", "user_id", "time_text" if sqlite else "time", "activity", "kind", "detail",
                        "actor", "added_devices", "had_devices")
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while chunk := cursor.fetchmany(5_000):
            for audit_id, user_id, when, activity, kind, detail, actor, added, had in chunk:
                yield (audit_id, user_id, datetime.fromisoformat(when + "+00:00") if sqlite else when, activity, kind,
                       detail, actor, () if added == "[]" else orjson.loads(added) if isinstance(added, str) else added,
                       had)


def snapshot_rows(snapshot: MfaSnapshot) -> QuerySet[MfaUserRow]:
    return MfaUserRow.objects.filter(snapshot=snapshot).defer("evidence")


def row_count(snapshot: MfaSnapshot, *, rows: QuerySet[MfaUserRow], filters: dict[str, Any] | None) -> int | None:
    """How many of the snapshot's rows the report's filters keep: a snapshot and its rows are stored in one
    transaction and never change afterwards (diagnostics_app/mfa/services.py do_store_snapshot)."""
    return filtered_count(snapshot, rows=rows, filters=filters)


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def classification_breakdown(snapshot: MfaSnapshot) -> list[dict[str, Any]]:
    total = snapshot.total_users
    out = []
    for cls in MfaClass:
        n = int(snapshot.counts.get(cls.value, 0))
        if n or cls != MfaClass.NOT_EVALUATED:
            out.append({"value": cls.value, "label": cls.label, "count": n, "pct": _pct(n, total),
                        "colour": MFA_CLASS_COLOURS[cls], "fill": MFA_CLASS_FILLS[cls]})
    return out


def method_breakdown(snapshot: MfaSnapshot) -> list[dict[str, Any]]:
    total = snapshot.total_users
    out = [{"value": fam.value, "label": fam.label, "count": int(snapshot.method_counts.get(fam.value, 0)),
            "pct": _pct(int(snapshot.method_counts.get(fam.value, 0)), total)} for fam in MethodFamily]
    return sorted((m for m in out if m["count"]), key=lambda m: -m["count"])


def capable_count(snapshot: MfaSnapshot) -> int:
    """Users of the snapshot who can answer an MFA prompt (can_satisfy_mfa): the one count behind the "can answer"
    tile, the donut and the trend, whatever their class (an administrator with SMS only can answer)."""
    return cached_figure(snapshot, "capable",
                   lambda: MfaUserRow.objects.filter(snapshot=snapshot, can_satisfy_mfa=True).count())


def headline(snapshot: MfaSnapshot) -> dict[str, Any]:
    """The report's tiles. Each user is counted once; "would be interrupted" is the readiness page's own
    figure for the whole tenant (enabled accounts, evaluated ones), so both pages show the same share."""
    c = {k: int(v) for k, v in snapshot.counts.items()}
    total = snapshot.total_users
    capable = capable_count(snapshot)
    strong = c.get(MfaClass.MFA_CAPABLE, 0) + c.get(MfaClass.PASSWORDLESS, 0)
    policy = readiness(snapshot, list_limit=0)
    return {
        "total": total,
        "capable": capable, "capable_pct": _pct(capable, total),
        "strong": strong, "strong_pct": _pct(strong, total),
        "not_usable": c.get(MfaClass.NOT_USABLE, 0), "not_usable_pct": _pct(c.get(MfaClass.NOT_USABLE, 0), total),
        "interrupted": policy.interrupted_total, "interrupted_pct": policy.interrupted_pct,
        "targeted": policy.targeted, "disabled_left_out": policy.skipped_disabled,
        "not_evaluated_left_out": policy.unknown,
        "admins_weak": c.get(MfaClass.ADMIN_NO_STRONG, 0),
        "not_evaluated": c.get(MfaClass.NOT_EVALUATED, 0),
    }


def trend(limit: int = 24) -> list[dict[str, Any]]:
    """Oldest first, per snapshot: the headline's "can answer" share (of all users) and its "would be
    interrupted" share (of enabled accounts), from the same selectors, so the current snapshot's row
    repeats its tiles. Each snapshot's figures are computed once (cached)."""
    items = list(MfaSnapshot.objects.order_by("-taken_at", "-id")
                 .only("id", "created_at", "taken_at", "total_users", "groups")[:limit])
    out = []
    for s in reversed(items):
        capable = capable_count(s)
        policy = readiness(s, list_limit=0)
        out.append({"id": s.id, "taken_at": s.taken_at, "total": s.total_users, "capable": capable,
                    "capable_pct": _pct(capable, s.total_users), "targeted": policy.targeted,
                    "interrupted": policy.interrupted_total, "interrupted_pct": policy.interrupted_pct})
    return out


# --------------------------------------------------------------------------------------------
# roll-out readiness
#
# A policy requiring MFA leaves disabled accounts out (they do not sign in; an unknown state counts as
# enabled), cannot judge users not evaluated, and interrupts every other user who cannot answer a prompt
# (can_satisfy_mfa false or unknown). The counts are SQL aggregates grouped by wave key and class; only the
# page of interrupted users shown is read row by row.

TARGETED = Q(enabled=True) | Q(enabled__isnull=True)
_NOT_EVALUATED = Q(classification=MfaClass.NOT_EVALUATED)
_CANNOT_ANSWER = Q(can_satisfy_mfa=False) | Q(can_satisfy_mfa__isnull=True)
_INTERRUPTED = TARGETED & ~_NOT_EVALUATED & _CANNOT_ANSWER
INTERRUPTED_FIELDS = ("id", "upn", "display_name", "user_id", "department", "group_ids", "classification",
                      "can_satisfy_mfa", "enabled", "reasons", "is_admin")
NO_DEPARTMENT, NO_GROUP = "(no department)", "(in no group)"


@dataclass
class Wave:
    name: str
    size: int = 0
    ready: int = 0
    interrupted: int = 0
    unknown: int = 0

    @property
    def ready_pct(self) -> float:
        return _pct(self.ready, self.size)


@dataclass
class Readiness:
    scope: str
    targeted: int = 0
    ready: int = 0
    skipped_disabled: int = 0
    interrupted: list[dict[str, Any]] = field(default_factory=list)
    interrupted_total: int = 0
    unknown: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    waves: list[Wave] = field(default_factory=list)
    # what the result was computed over, so that wave_buckets can read the members of its waves
    snapshot: MfaSnapshot | None = field(default=None, repr=False)
    group_id: str = ""
    wave_by: str = "department"

    @property
    def ready_pct(self) -> float:
        return _pct(self.ready, self.targeted)

    @property
    def interrupted_pct(self) -> float:
        return _pct(self.interrupted_total, self.targeted)


def scope_rows(snapshot: MfaSnapshot, group_id: str) -> QuerySet[MfaUserRow]:
    rows = MfaUserRow.objects.filter(snapshot=snapshot, deleted=False)
    return rows.filter(groups_key__contains=f",{group_id},") if group_id else rows


def _wave_key(*, wave_by: str, names: dict[str, str]) -> Any:
    """The wave a user falls in: its department, or the first of its groups by name (groups the snapshot
    did not name are ignored)."""
    if wave_by == "group":
        def by_group(group_ids: list[str] | None) -> str:
            gids = sorted((g for g in group_ids or () if g in names), key=lambda g: names[g].lower())
            return names[gids[0]] if gids else NO_GROUP
        return by_group
    return lambda department: department or NO_DEPARTMENT


def _readiness_counts(snapshot: MfaSnapshot, *, group_id: str, wave_by: str) -> dict[str, Any]:
    """One GROUP BY (wave field, class) over the scope; plain data, so that it can be cached."""
    column = "group_ids" if wave_by == "group" else "department"
    key_of = _wave_key(wave_by=wave_by, names=snapshot.groups)
    totals = {"targeted": 0, "ready": 0, "skipped_disabled": 0, "interrupted_total": 0, "unknown": 0}
    by_reason: dict[str, int] = {}
    waves: dict[str, dict[str, Any]] = {}
    groups = (scope_rows(snapshot, group_id).order_by().values(column, "classification")
              .annotate(targeted=Count("id", filter=TARGETED),
                        ready=Count("id", filter=TARGETED & Q(can_satisfy_mfa=True)),
                        disabled=Count("id", filter=Q(enabled=False))))
    for g in groups:
        totals["skipped_disabled"] += g["disabled"]
        if not g["targeted"]:
            continue
        name = key_of(g[column])
        wave = waves.setdefault(name, {"name": name, "size": 0, "ready": 0, "interrupted": 0, "unknown": 0})
        wave["size"] += g["targeted"]
        totals["targeted"] += g["targeted"]
        if g["classification"] == MfaClass.NOT_EVALUATED:
            wave["unknown"] += g["targeted"]
            totals["unknown"] += g["targeted"]
            continue
        interrupted = g["targeted"] - g["ready"]
        wave["ready"] += g["ready"]
        totals["ready"] += g["ready"]
        wave["interrupted"] += interrupted
        totals["interrupted_total"] += interrupted
        if interrupted:
            label = str(MfaClass(g["classification"]).label)
            by_reason[label] = by_reason.get(label, 0) + interrupted
    # readiest first, so the first waves interrupt few
    ordered = sorted(waves.values(), key=lambda w: (-(w["ready"] / w["size"]), w["name"].lower()))
    return {**totals, "waves": ordered,
            "by_reason": dict(sorted(by_reason.items(), key=lambda item: (-item[1], item[0])))}


def readiness(snapshot: MfaSnapshot, *, group_id: str = "", wave_by: str = "department",
              list_limit: int | None = 500, list_offset: int = 0) -> Readiness:
    """Who a policy requiring MFA for ``group_id`` (or everyone) would interrupt, and staged waves.

    Disabled accounts are left out (they do not sign in). Waves are the scope's departments (or groups,
    each user in the first of its groups by name), readiest first, so the first waves interrupt few.
    The counts are computed once per snapshot and scope; ``interrupted`` holds the page of interrupted
    users from ``list_offset`` (by UPN), at most ``list_limit`` of them (all with None).
    """
    wave_by = "group" if wave_by == "group" else "department"
    counts = cached_figure(snapshot, f"readiness:{wave_by}:{group_id}",
                     lambda: _readiness_counts(snapshot, group_id=group_id, wave_by=wave_by))
    scope = f"group {snapshot.groups.get(group_id, group_id)}" if group_id else "the whole tenant"
    result = Readiness(scope=scope, snapshot=snapshot, group_id=group_id, wave_by=wave_by,
                       by_reason=dict(counts["by_reason"]), waves=[Wave(**w) for w in counts["waves"]],
                       **{k: counts[k] for k in ("targeted", "ready", "skipped_disabled", "interrupted_total",
                                                 "unknown")})
    if list_limit != 0 and list_offset < result.interrupted_total:
        rows = (scope_rows(snapshot, group_id).filter(_INTERRUPTED).order_by("upn", "id")
                .values(*INTERRUPTED_FIELDS))
        rows = rows[list_offset:] if list_limit is None else rows[list_offset:list_offset + list_limit]
        for r in rows.iterator(chunk_size=2000) if list_limit is None else rows:
            cls = MfaClass(r["classification"])
            result.interrupted.append({**r, "label": cls.label, "why": (r["reasons"] or [""])[0],
                                       "colour": MFA_CLASS_COLOURS[cls]})
    return result


def wave_buckets(result: Readiness) -> list[tuple[str, list[str]]]:
    """The readiness result's waves (readiest first) as (name, user ids by UPN): what wave splitting takes.
    Reads the scope's enabled users' ids, once, when waves are to be split."""
    if result.snapshot is None:
        return [(w.name, []) for w in result.waves]
    column = "group_ids" if result.wave_by == "group" else "department"
    key_of = _wave_key(wave_by=result.wave_by, names=result.snapshot.groups)
    members: dict[str, list[str]] = {w.name: [] for w in result.waves}
    rows = (scope_rows(result.snapshot, result.group_id).filter(TARGETED).order_by("upn", "id")
            .values_list("user_id", column))
    for user_id, value in rows.iterator(chunk_size=5000):
        members.setdefault(key_of(value), []).append(user_id)
    return [(w.name, members[w.name]) for w in result.waves]
