"""Actual DNs against a plan: renamed as planned, not yet, mismatched, missing (deleted!), unexpected.

Groups are matched by objectGUID (a rename keeps it; a delete and re-create does not) and, failing that, by
the cloud object id they carry, so a group deleted and written back again shows as mismatched, never as
renamed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from portal.connectors import ad
from portal.directory import writeback_names as wn

from .choices import VerificationOutcome
from .plan import written_back_id


def read_actual(directory: ad.ActiveDirectory, container: str) -> list[dict[str, Any]]:
    flt = ad.all_of(ad.object_class("group"), ad.starts_with("msDS-ExternalDirectoryObjectId", "Group_"))
    try:
        found = directory.search(filter=flt, base=container, attributes=["objectGUID", "displayName",
                                                                       "msDS-ExternalDirectoryObjectId"])
        return [{"dn": o.dn, "guid": str(o.guid or ""), "object_id": written_back_id(o) or ""} for o in found]
    except ad.NotFound:
        return []


def verify(planned: Iterable[Mapping[str, Any]], actual: Iterable[Mapping[str, Any]], *,
           known: Iterable[str] = ()) -> list[dict[str, Any]]:
    """``known``: objectGUIDs the plan listed apart (no cloud group, writeback off): present, not unexpected."""
    known_guids = {g for g in known if g}
    by_guid = {a["guid"]: a for a in actual if a.get("guid")}
    by_oid = {a["object_id"]: a for a in by_guid.values() if a.get("object_id")}
    seen: set[str] = set()
    rows = []
    for p in planned:
        hit = by_guid.get(p.get("guid") or "")
        same_object = hit is not None
        if hit is None:
            hit = by_oid.get(p["object_id"])
        row = {"object_id": p["object_id"], "display_name": p.get("display_name") or "",
               "current_dn": p.get("current_dn") or "", "planned_dn": p["planned_dn"],
               "actual_dn": hit["dn"] if hit else ""}
        if hit is None:
            row["outcome"] = VerificationOutcome.MISSING
        else:
            seen.add(hit["guid"])
            key = wn.dn_key(hit["dn"])
            if same_object and key == wn.dn_key(p["planned_dn"]):
                row["outcome"] = VerificationOutcome.RENAMED
            elif same_object and key == wn.dn_key(p.get("current_dn") or ""):
                row["outcome"] = VerificationOutcome.UNCHANGED
            else:
                row["outcome"] = VerificationOutcome.MISMATCHED
                if not same_object:
                    row["note"] = "a different AD object (deleted and written back again: links and ACLs are lost)"
        rows.append(row)
    planned_ids = {p["object_id"] for p in rows}
    for guid, a in by_guid.items():
        if guid not in seen and guid not in known_guids and a.get("object_id") not in planned_ids:
            rows.append({"object_id": a.get("object_id") or "", "display_name": "", "current_dn": "",
                         "planned_dn": "", "actual_dn": a["dn"], "outcome": VerificationOutcome.UNEXPECTED})
    return [{**r, "outcome": str(r["outcome"])} for r in rows]
