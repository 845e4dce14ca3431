"""Reads of the MFA registration report: snapshots, their rows, headline figures, trend, roll-out readiness."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet

from ..models import MfaSnapshot, MfaUserRow
from .choices import INTERRUPTED_CLASSES, MFA_CLASS_COLOURS, MFA_CLASS_FILLS, MethodFamily, MfaClass


def snapshots() -> QuerySet[MfaSnapshot]:
    return MfaSnapshot.objects.select_related("job", "started_by")


def snapshot_or_latest(pk: Any = None) -> MfaSnapshot | None:
    qs = snapshots()
    if pk not in (None, ""):
        try:
            return qs.filter(pk=int(pk)).first()
        except (TypeError, ValueError):
            return None
    return qs.first()


def snapshot_rows(snapshot: MfaSnapshot) -> QuerySet[MfaUserRow]:
    return MfaUserRow.objects.filter(snapshot=snapshot).defer("evidence")


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


def headline(snapshot: MfaSnapshot) -> dict[str, Any]:
    """The report's tiles. Each user is counted once; "would be interrupted" is the readiness page's own
    figure for the whole tenant (enabled accounts, evaluated ones), so both pages show the same share."""
    c = {k: int(v) for k, v in snapshot.counts.items()}
    total = snapshot.total_users
    rows = MfaUserRow.objects.filter(snapshot=snapshot)
    capable = rows.filter(can_satisfy_mfa=True).count()
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
    """Oldest first: capable and not-usable shares per snapshot."""
    items = list(MfaSnapshot.objects.order_by("-taken_at", "-id")
                 .values("id", "taken_at", "total_users", "counts")[:limit])
    out = []
    for s in reversed(items):
        c = s["counts"]
        total = s["total_users"]
        capable = sum(int(c.get(k, 0)) for k in (MfaClass.MFA_CAPABLE, MfaClass.PASSWORDLESS, MfaClass.SMS_VOICE_ONLY))
        interrupted = sum(int(c.get(k, 0)) for k in INTERRUPTED_CLASSES)
        out.append({"id": s["id"], "taken_at": s["taken_at"], "total": total, "capable": capable,
                    "capable_pct": _pct(capable, total), "interrupted": interrupted,
                    "interrupted_pct": _pct(interrupted, total)})
    return out


# --------------------------------------------------------------------------------------------
# roll-out readiness


@dataclass
class Wave:
    name: str
    size: int = 0
    ready: int = 0
    interrupted: int = 0
    unknown: int = 0
    user_ids: list[str] = field(default_factory=list, repr=False)

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

    @property
    def ready_pct(self) -> float:
        return _pct(self.ready, self.targeted)

    @property
    def interrupted_pct(self) -> float:
        return _pct(self.interrupted_total, self.targeted)


def readiness(snapshot: MfaSnapshot, *, group_id: str = "", wave_by: str = "department",
              list_limit: int | None = 500, list_offset: int = 0) -> Readiness:
    """Who a policy requiring MFA for ``group_id`` (or everyone) would interrupt, and staged waves.

    Disabled accounts are left out (they do not sign in). Waves are the scope's departments (or groups,
    each user in the first of its groups by name), readiest first, so the first waves interrupt few.
    """
    rows = MfaUserRow.objects.filter(snapshot=snapshot, deleted=False)
    scope = "the whole tenant"
    if group_id:
        rows = rows.filter(groups_key__contains=f",{group_id},")
        scope = f"group {snapshot.groups.get(group_id, group_id)}"
    result = Readiness(scope=scope)
    names = snapshot.groups
    waves: dict[str, Wave] = {}
    fields = ("id", "upn", "display_name", "user_id", "department", "group_ids", "classification",
              "can_satisfy_mfa", "enabled", "reasons", "is_admin")
    for r in rows.values(*fields).order_by("upn").iterator(chunk_size=5000):
        if r["enabled"] is False:
            result.skipped_disabled += 1
            continue
        result.targeted += 1
        cls = r["classification"]
        unknown = cls == MfaClass.NOT_EVALUATED
        interrupted = not unknown and not r["can_satisfy_mfa"]
        if wave_by == "group":
            gids = sorted((g for g in r["group_ids"] if g in names), key=lambda g: names[g].lower())
            key = names[gids[0]] if gids else "(in no group)"
        else:
            key = r["department"] or "(no department)"
        wave = waves.setdefault(key, Wave(key))
        wave.size += 1
        wave.user_ids.append(r["user_id"])
        if unknown:
            result.unknown += 1
            wave.unknown += 1
        elif interrupted:
            result.interrupted_total += 1
            wave.interrupted += 1
            label = MfaClass(cls).label
            result.by_reason[label] = result.by_reason.get(label, 0) + 1
            shown = result.interrupted_total - 1 - list_offset  # this user's place in the page
            if shown >= 0 and (list_limit is None or shown < list_limit):
                result.interrupted.append({**r, "label": label, "why": (r["reasons"] or [""])[0],
                                           "colour": MFA_CLASS_COLOURS[MfaClass(cls)]})
        else:
            result.ready += 1
            wave.ready += 1
    ordered = sorted(waves.values(), key=lambda w: (-(w.ready / w.size if w.size else 0), w.name.lower()))
    result.waves = ordered
    return result


def wave_buckets(result: Readiness) -> list[tuple[str, list[str]]]:
    """The readiness result's waves (readiest first) as (name, user ids): what wave splitting takes."""
    return [(w.name, list(w.user_ids)) for w in result.waves]
