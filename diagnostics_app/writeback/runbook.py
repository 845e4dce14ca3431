"""The runbook of the switch (the field notes' safe procedure) and the checks the portal runs, through the
Entra Connect connector and AD, before a person may confirm a step.

A check is ``{"name", "ok", "message"}``: ``ok`` True passed, False is a hard stop (the step cannot be
confirmed, the message says why), None means the server cannot tell and the person checks it by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from portal.connectors import sync as connect_api
from portal.connectors.registry import active_directory, entra_connect
from portal.directory import writeback_names as wn

from ..models import WritebackPlan, WritebackRunbookStep
from .choices import RowSection
from .verify import read_actual


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    how: str
    look_for: str
    checks: tuple[str, ...]


STEPS: dict[str, Step] = {s.key: s for s in (
    Step("staging_on", "Staging mode on, synchronisation suspended",
         "Entra Connect wizard → Configure staging mode → Enable staging mode; on the last page untick "
         "\"Start the synchronization process when configuration completes\".",
         "The wizard ends without starting a cycle.",
         ("staging_on", "scheduler_suspended", "no_cycle_running")),
    Step("writeback_off", "Group writeback off",
         "Wizard → Customize synchronization options → Optional features: untick Group Writeback. The wizard "
         "warns that written-back groups will be deleted: in staging mode with the scheduler suspended they are not.",
         "Every written-back group is still in the OU.",
         ("staging_on", "scheduler_suspended", "writeback_disabled", "groups_present")),
    Step("writeback_on", "Group writeback on again: same OU, display-name option",
         "Wizard → Customize synchronization options → Optional features: tick Group Writeback; choose the SAME "
         "organizational unit; tick \"Writeback Group Distinguished Name with cloud Display Name\"; leave \"start the "
         "synchronization process\" ticked.",
         "The OU is exactly the one the plan was made for.",
         ("staging_on", "writeback_enabled", "same_ou", "display_name_option", "groups_present")),
    Step("full_sync", "Full import and full synchronisation",
         "Let the cycle the wizard started finish (a full import and full synchronisation; hours in a large "
         "organisation), or start it: Start-ADSyncSyncCycle -PolicyType Initial.",
         "The run history shows the full cycle completed.",
         ("staging_on", "no_cycle_running", "full_sync_done", "groups_present")),
    Step("review_exports", "Review the pending exports",
         "Synchronization Service Manager → Connectors → the AD connector → Search Connector Space → Pending "
         "export, Modify: one entry per written-back group, its new CN from EscapeDNComponent.",
         "The pending exports are exactly the planned renames and there is no deletion.",
         ("staging_on", "exports_match_plan", "no_pending_deletions", "groups_present")),
    Step("staging_off", "Staging mode off",
         "Wizard → Configure staging mode → untick Enable staging mode.",
         "The next cycle exports the renames.",
         ("staging_off", "exports_match_plan", "no_pending_deletions", "groups_present")),
    Step("delta_sync", "Delta synchronisation",
         "Let the scheduler run, or Start-ADSyncSyncCycle -PolicyType Delta. Then run the verification.",
         "The delta cycle completed; nothing is left pending.",
         ("staging_off", "delta_sync_done", "no_pending_deletions", "groups_present")),
)}
ORDER = list(STEPS)

# What the portal checks before a confirmation, in the words the runbook page shows.
CHECK_TEXT: dict[str, str] = {
    "staging_on": "staging mode is on", "staging_off": "staging mode is off",
    "scheduler_suspended": "the scheduler starts no cycle", "no_cycle_running": "no cycle is running",
    "writeback_disabled": "group writeback is off", "writeback_enabled": "group writeback is on",
    "same_ou": "the writeback OU is the plan's", "display_name_option": "the display-name option is on",
    "full_sync_done": "a full cycle completed since the last step",
    "delta_sync_done": "a delta cycle completed since the last step",
    "exports_match_plan": "the pending exports are exactly the planned renames",
    "no_pending_deletions": "no deletion is pending in the OU",
    "groups_present": "every planned group is still in AD",
}


def approval_problem(plan: WritebackPlan) -> str | None:
    from .services import WritebackRefused, check_approved

    try:
        check_approved(plan)
    except WritebackRefused as exc:
        return str(exc)
    return None


def confirmed(plan: WritebackPlan) -> dict[str, WritebackRunbookStep]:
    return {s.step: s for s in plan.steps.select_related("confirmed_by")}


def check_order(plan: WritebackPlan, step: str) -> None:
    from .services import WritebackRefused

    done = confirmed(plan)
    for earlier in ORDER[:ORDER.index(step)]:
        if earlier not in done:
            raise WritebackRefused(f"Confirm {STEPS[earlier].title!r} first: the steps go in order.")


def progress(plan: WritebackPlan) -> list[dict[str, Any]]:
    done = confirmed(plan)
    out = []
    next_found = False
    for key in ORDER:
        row = done.get(key)
        is_next = row is None and not next_found
        next_found = next_found or is_next
        out.append({"step": STEPS[key], "number": ORDER.index(key) + 1, "confirmed": row, "is_next": is_next,
                    "portal_checks": [CHECK_TEXT[c] for c in STEPS[key].checks]})
    return out


# --- the checks --------------------------------------------------------------------------------------


@dataclass
class Facts:
    """What the checks read, once per confirmation."""

    plan: WritebackPlan
    scheduler: connect_api.SchedulerStatus
    writeback: connect_api.GroupWritebackConfig | None
    pending: list[connect_api.PendingExport] | None
    runs: list[connect_api.RunProfileResult]
    actual: list[dict[str, Any]]
    planned: list[dict[str, Any]]
    since: datetime | None  # when the previous step was confirmed


def _check(name: str, ok: bool | None, message: str) -> dict[str, Any]:
    return {"name": name, "ok": ok, "message": message}


def _missing(f: Facts) -> list[dict[str, Any]]:
    guids = {a["guid"] for a in f.actual}
    return [p for p in f.planned if p["guid"] and p["guid"] not in guids]


def _planned_renames(f: Facts) -> dict[str, str]:
    return {p["object_id"]: p["planned_dn"] for p in f.planned
            if wn.dn_key(p["planned_dn"]) != wn.dn_key(p["current_dn"])}


def _in_scope(f: Facts, export: connect_api.PendingExport) -> bool:
    ids = {p["object_id"] for p in f.planned}
    if export.object_id and export.object_id.lower() in ids:
        return True
    try:
        return bool(export.distinguished_name) and wn.dn_key(export.distinguished_name).endswith(
            wn.dn_key(f.plan.container))
    except ValueError:
        return False


def _runs_since(f: Facts, profile_word: str) -> list[connect_api.RunProfileResult]:
    # The run history keeps whole seconds: a cycle started in the second of the confirmation counts.
    since = f.since.replace(microsecond=0) if f.since else None
    return [r for r in f.runs if profile_word in (r.run_profile_name or "") and r.end is not None
            and (r.result or "").lower() in ("success", "completed-export-errors")
            and (since is None or (r.start and r.start >= since))]


CHECKS: dict[str, Callable[[Facts], dict[str, Any]]] = {
    "staging_on": lambda f: _check(
        "staging mode", f.scheduler.staging_mode_enabled is True,
        "staging mode is on: nothing is exported" if f.scheduler.staging_mode_enabled
        else "STAGING MODE IS OFF: turning group writeback off now deletes every written-back group at the next "
             "cycle. Turn staging mode on first."),
    "staging_off": lambda f: _check(
        "staging mode", f.scheduler.staging_mode_enabled is False,
        "staging mode is off: the next cycle exports" if f.scheduler.staging_mode_enabled is False
        else "staging mode is still on"),
    "scheduler_suspended": lambda f: _check(
        "scheduler", bool(f.scheduler.scheduler_suspended or f.scheduler.sync_cycle_enabled is False),
        "the scheduler starts no cycle" if (f.scheduler.scheduler_suspended or f.scheduler.sync_cycle_enabled is False)
        else "the scheduler still runs cycles (SyncCycleEnabled, not suspended): suspend it "
             "(Set-ADSyncScheduler -SyncCycleEnabled $false)"),
    "no_cycle_running": lambda f: _check(
        "no cycle running", not f.scheduler.in_progress,
        "no cycle runs" if not f.scheduler.in_progress else "a sync cycle is running: wait for it to finish"),
    "writeback_disabled": lambda f: _check(
        "group writeback", None if f.writeback is None or f.writeback.enabled is None else not f.writeback.enabled,
        "the server does not report group writeback: check the wizard's optional features page"
        if f.writeback is None or f.writeback.enabled is None
        else ("group writeback is off" if not f.writeback.enabled else "group writeback is still on")),
    "writeback_enabled": lambda f: _check(
        "group writeback", None if f.writeback is None or f.writeback.enabled is None else f.writeback.enabled,
        "the server does not report group writeback: check the wizard's optional features page"
        if f.writeback is None or f.writeback.enabled is None
        else ("group writeback is on" if f.writeback.enabled else "group writeback is still off")),
    "same_ou": lambda f: _same_ou(f),
    "display_name_option": lambda f: _check(
        "display-name option",
        None if f.writeback is None or f.writeback.display_name_option is None else f.writeback.display_name_option,
        "the server does not report the option: check the wizard's group writeback page"
        if f.writeback is None or f.writeback.display_name_option is None
        else ("\"Writeback Group Distinguished Name with cloud Display Name\" is on" if f.writeback.display_name_option
              else "the display-name option is OFF: the groups would keep Group_<objectId>")),
    "full_sync_done": lambda f: _check(
        "full synchronisation", bool(_runs_since(f, "Full")),
        "a full cycle completed" if _runs_since(f, "Full") else "no full cycle has completed since the last step"),
    "delta_sync_done": lambda f: _check(
        "delta synchronisation", bool(_runs_since(f, "Delta")),
        "a delta cycle completed" if _runs_since(f, "Delta") else "no delta cycle has completed since the last step"),
    "exports_match_plan": lambda f: _exports_match(f),
    "no_pending_deletions": lambda f: _no_deletions(f),
    "groups_present": lambda f: _check(
        "groups present", not _missing(f),
        f"all {len(f.planned)} planned group(s) are in AD" if not _missing(f)
        else f"{len(_missing(f))} planned group(s) are MISSING from AD (deleted): "
             + ", ".join(p["display_name"] or p["object_id"] for p in _missing(f)[:5])
             + ". Stop and restore them (AD recycle bin) before going on."),
}


def _same_ou(f: Facts) -> dict[str, Any]:
    if f.writeback is None or not f.writeback.target_ou:
        return _check("same OU", None, "the server does not report the writeback OU: check it is "
                      f"{f.plan.container} on the wizard's group writeback page")
    same = wn.dn_key(f.writeback.target_ou) == wn.dn_key(f.plan.container)
    return _check("same OU", same, f"the writeback OU is {f.plan.container}" if same
                  else f"the writeback OU is {f.writeback.target_ou}, not {f.plan.container}: the groups would be "
                       "re-created there and the old ones deleted. Choose the plan's OU.")


def _exports_match(f: Facts) -> dict[str, Any]:
    if f.pending is None:
        return _check("pending exports", None, "the server does not list pending exports remotely: compare them in "
                      "the Synchronization Service Manager with the plan's table")
    wanted = _planned_renames(f)
    got: dict[str, str] = {}
    unexpected = []
    for e in f.pending:
        if not _in_scope(f, e) or e.operation == "Delete":
            continue
        target = e.attributes.get("distinguishedName") if isinstance(e.attributes, dict) else None
        oid = (e.object_id or "").lower()
        if e.operation in ("Update", "Replace"):
            if target and oid in wanted:
                got[oid] = str(target)
            elif target:
                unexpected.append(f"rename of {e.distinguished_name}")
            # without a new DN it is an attribute update of the group, which the switch does not concern
        else:
            unexpected.append(f"{e.operation} {e.distinguished_name}")
    missing = [oid for oid in wanted if oid not in got]
    wrong = [oid for oid, dn in got.items() if wn.dn_key(dn) != wn.dn_key(wanted[oid])]
    ok = not (missing or wrong or unexpected)
    if ok:
        return _check("pending exports", True, f"{len(got)} pending rename(s), exactly the plan's")
    parts = []
    if missing:
        parts.append(f"{len(missing)} planned rename(s) not pending")
    if wrong:
        parts.append(f"{len(wrong)} pending rename(s) to a DN the plan does not give")
    if unexpected:
        parts.append(f"{len(unexpected)} export(s) the plan does not contain ({'; '.join(unexpected[:3])})")
    return _check("pending exports", False, "The pending exports are not the plan: " + ", ".join(parts) + ".")


def _no_deletions(f: Facts) -> dict[str, Any]:
    if f.pending is None:
        return _check("pending deletions", None, "the server does not list pending exports remotely: check there "
                      "is no Delete in the Synchronization Service Manager")
    deletes = [e for e in f.pending if e.operation == "Delete" and _in_scope(f, e)]
    if not deletes:
        return _check("pending deletions", True, "no deletion is pending")
    return _check("pending deletions", False, f"{len(deletes)} DELETION(S) PENDING in the writeback OU "
                  f"({'; '.join(e.distinguished_name or '?' for e in deletes[:3])}): group writeback is off or the OU "
                  "changed. Do not leave staging mode; turn writeback on again with the same OU.")


def read_facts(plan: WritebackPlan, step: str) -> Facts:
    """One read of the sync server and AD for the checks of ``step``."""
    planned = list(plan.rows.filter(section=RowSection.PLANNED).values("object_id", "guid", "display_name",
                                                                       "current_dn", "planned_dn"))
    done = confirmed(plan)
    index = ORDER.index(step)
    since = done[ORDER[index - 1]].confirmed_at if index and ORDER[index - 1] in done else None
    with entra_connect() as connect:
        scheduler = connect.get_scheduler()
        try:
            writeback = connect.group_writeback_configuration()
        except connect_api.UnknownCmdlet:
            writeback = None
        try:
            pending = connect.pending_exports()
        except connect_api.UnknownCmdlet:
            pending = None
        runs = connect.run_history(count=20) if {"full_sync_done", "delta_sync_done"} & set(STEPS[step].checks) \
            else []
    with active_directory() as directory:
        actual = read_actual(directory, plan.container)
    return Facts(plan=plan, scheduler=scheduler, writeback=writeback, pending=pending, runs=runs, actual=actual,
                 planned=planned, since=since)


def evaluate(facts: Facts, step: str) -> list[dict[str, Any]]:
    return [CHECKS[name](facts) for name in STEPS[step].checks]


def run_checks(plan: WritebackPlan, step: str) -> list[dict[str, Any]]:
    """The portal's checks of ``step`` now (raises WritebackRefused for an unknown step)."""
    from .services import WritebackRefused

    if step not in STEPS:
        raise WritebackRefused(f"{step!r} is not a step of this runbook.")
    try:
        facts = read_facts(plan, step)
    except connect_api.SyncError as exc:
        raise WritebackRefused(f"The sync server could not be asked ({exc}): the step cannot be checked.") from None
    checks = evaluate(facts, step)
    for check in checks:
        check["at"] = timezone.now().isoformat()
    return checks
