"""Gathers what the MFA classification needs from Microsoft Graph, with as few calls as the answer allows.

No ORM here: :func:`collect` takes an :class:`~portal.connectors.graph.EntraGraph` (or anything with the
same methods) and returns plain records; ``services.do_store_snapshot`` writes them.

The reads, in order (each one paged). Reads 1, 2 (the members), 3 and 4 are independent listings paged
side by side (``EntraGraph.pages_together``): each round one ``$batch`` post carries the next page of every
listing still open, so their cost is the longest listing's pages (users or report: one per 999 users), not
the sum of all their pages (the audit alone was most of a large tenant's calls when read listing after
listing), and the lab or Graph works out a big group's transitive members while this process converts users:

1. ``/users`` (enabled, type, department, licences) -- one page per 999 users;
2. groups (listed first) and their transitive members, for the group filter and readiness waves (bounded
   by ``max_groups``; the members ride in the rounds of read 1);
2b. conditional access policies, authentication strengths, security defaults, directory roles and the
   members of the groups those policies name (collect_policies.py; evaluated per user by policies.py);
3. ``reports/authenticationMethods/userRegistrationDetails`` -- one page per 999 users (Entra ID P1/P2);
4. ``auditLogs/directoryAudits`` since ``audit_days`` ago, filtered by activity: the security info
   events (started / registered / changed / deleted / cancelled, by users and by admins) and the
   "Update user" events of the Azure MFA StrongAuthenticationService (app details stamped). Given the
   events earlier snapshots read (:class:`KnownAudit`, the portal's journal), only the audit since the
   latest of them is read, less :data:`AUDIT_LATE` for events Microsoft logs late: in a large tenant the
   audit is most of the bytes a snapshot reads;
5. per-user ``authentication/methods`` (``$batch``, 20 users per post) **only** for the users whose
   report row and audit trail leave a question -- no report row, a report older than the user's latest
   audit event, an unknown method name, bounded by ``method_read_limit`` (administrators first).

Without the premium licence (step 3 answers ``LicenceRequired``) step 5 becomes the fallback: methods
of at most ``fallback_limit`` users (enabled members first), with progress; the rest are kept and
marked *not evaluated*.

Bad input is kept and marked, never fatal: users with no UPN, guests, report rows for users the user
list did not hold (deleted between pages), method reads answering 404, unknown method types.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import Any, Protocol
from urllib.parse import quote

from portal.connectors.graph import (
    BadRequest,
    DirectoryAudit,
    GraphError,
    LicenceRequired,
    NotFound,
    odata_eq,
    odata_ge,
)
from portal.connectors.graph.convert import _audit, _member, _registration, _user
from portal.connectors.graph.together import Listing, listing_url
from portal.heap import growing_heap

from . import classify as mc
from .collect_policies import PolicyRead, evaluate_users, read_per_user_mfa, read_policies, read_sign_in_evidence

USER_SELECT = ("id", "userPrincipalName", "displayName", "accountEnabled", "userType", "department",
               "assignedLicenses", "onPremisesSyncEnabled")
GROUP_SELECT = ("id", "displayName", "securityEnabled", "mailEnabled", "groupTypes")
MFA_SERVICE_NAME = "Azure MFA StrongAuthenticationService"
METHODS_CHUNK = 400  # users per progress step of the per-user reads (20 per $batch post)


class Reporter(Protocol):
    def info(self, message: str) -> None: ...
    def warning(self, message: str) -> None: ...
    def progress(self, done: int, total: int | None = None) -> None: ...


class _Quiet:
    def info(self, message: str) -> None:
        pass

    def warning(self, message: str) -> None:
        pass

    def progress(self, done: int, total: int | None = None) -> None:
        pass


@dataclass(frozen=True)
class CollectOptions:
    audit_days: int = 30
    method_read_limit: int = 2_000
    fallback_limit: int = 5_000
    max_groups: int = 500
    read_groups: bool = True
    read_policies: bool = True
    sign_in_limit: int = 20_000
    per_user_mfa_limit: int = 200
    full_audit: bool = False  # read the whole window, not what is new since the journal's latest read


@dataclass(frozen=True)
class KnownAudit:
    """The audit events earlier snapshots of this tenant read (selectors.known_audit), standing in for a read of
    the audit up to ``read_until``. The events stream: they are taken a slice at a time while the listings' pages
    are awaited, so reading ~275,000 of them costs a large tenant's snapshot little of its time."""

    read_until: datetime
    events: Iterable[tuple[str, mc.Event]]  # (user id, event), the window's


@dataclass
class AuditRead:
    """What this snapshot read of the audit, for the journal (services.do_store_snapshot)."""

    since: datetime  # the read's start: the window's, or the journal's latest read less AUDIT_LATE
    window: datetime  # the start of the window classification looks at
    incremental: bool  # the journal stood in for the audit before ``since``
    fresh: list[tuple[str, mc.Event]] = field(default_factory=list)  # (user id, event) not known before
    known: int = 0  # events taken from the journal


@dataclass
class UserRecord:
    facts: mc.UserFacts
    report: mc.ReportRow | None = None
    events: list[mc.Event] = field(default_factory=list)
    methods: list[mc.Method] | None = None
    methods_error: str | None = None
    groups: list[str] = field(default_factory=list)  # group ids
    question: str = ""  # why the methods were (or would have been) read
    verdict: mc.Verdict | None = None
    policy: Any = None  # policies.Evaluation


@dataclass
class CollectResult:
    started: datetime
    users: dict[str, UserRecord]
    groups: dict[str, str]  # id -> display name
    licence_missing: bool = False
    licence_message: str = ""
    graph_calls: dict[str, int] = field(default_factory=dict)
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)  # per read: calls, seconds, items
    questions: dict[str, int] = field(default_factory=dict)  # reason -> users
    methods_read: int = 0
    methods_skipped: int = 0
    report_rows: int = 0
    audit_events: int = 0
    notes: list[str] = field(default_factory=list)
    policy_read: PolicyRead | None = None
    audit: AuditRead | None = None

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for rec in self.users.values():
            if rec.verdict is not None:
                out[rec.verdict.classification] = out.get(rec.verdict.classification, 0) + 1
        return out


def _page_size(graph: Any) -> int:
    settings = getattr(graph, "settings", None)
    return int(getattr(settings, "page_size", 999) or 999)


def _licensed(user: Any) -> bool | None:
    value = user.extra.get("assignedLicenses") if user.extra else None
    return None if value is None else bool(value)


class _Phase:
    def __init__(self, result: CollectResult, graph: Any, name: str) -> None:
        self.result, self.graph, self.name = result, graph, name

    def __enter__(self) -> _Phase:
        self.calls = self.graph.stats.requests
        self.t0, self.cpu0 = time.perf_counter(), time.process_time()
        self.items = 0
        return self

    def __exit__(self, *exc: object) -> None:
        # CPU time (this process, every thread) beside wall time: on a busy machine the wall time mostly
        # says how long the process waited for a core
        self.result.phases[self.name] = {"calls": self.graph.stats.requests - self.calls,
                                         "seconds": round(time.perf_counter() - self.t0, 3),
                                         "cpu": round(time.process_time() - self.cpu0, 3), "items": self.items}


@growing_heap()  # the tenant's users, report rows and audit events are held to the end (portal/heap.py)
def collect(
    graph: Any,
    *,
    now: datetime,
    options: CollectOptions = CollectOptions(),  # noqa: B008 - frozen
    reporter: Reporter | None = None,
    known_audit: KnownAudit | None = None,
) -> CollectResult:
    say = reporter or _Quiet()
    result = CollectResult(started=now, users={}, groups={})
    users = result.users
    window = now - timedelta(days=options.audit_days)
    result.audit = AuditRead(since=window, window=window, incremental=False)
    if known_audit is not None and not options.full_audit and known_audit.read_until - AUDIT_LATE > window:
        result.audit.since, result.audit.incremental = known_audit.read_until - AUDIT_LATE, True

    # 1. users, the registration report, the audit and the groups' members, paged side by side ($batch rounds:
    # one call per round)
    with _Phase(result, graph, "listings") as phase:
        try:
            expected = graph.count_users()
        except GraphError:
            expected = None
        members = _group_listings(graph, result, options, say) if options.read_groups else []
        say.info("Reading users, the registration report and the audit log together"
                 + (f" ({expected:,} users in the tenant)…" if expected else "…"))
        phase.items = _read_listings(graph, result, options, known_audit if result.audit.incremental else None,
                                     expected, say, members)
    listed = result.phases["listings"]
    say.info(f"{len(users):,} users; Registration report: {result.report_rows:,} rows; audit log: "
             f"{result.audit_events:,} MFA-related events in the last {options.audit_days} days; read together in "
             f"{listed['calls']} Graph calls.")
    if result.audit.incremental:
        note = (f"Audit log read from {result.audit.since:%Y-%m-%d %H:%M} UTC ({len(result.audit.fresh):,} new "
                f"event(s)); {result.audit.known:,} earlier event(s) of the window came from the portal's journal of "
                "earlier snapshots.")
        result.notes.append(note)
        say.info(note)
    no_upn = sum(1 for r in users.values() if not r.facts.upn)
    guests = sum(1 for r in users.values() if (r.facts.user_type or "").lower() == "guest")
    if no_upn:
        say.warning(f"{no_upn} user(s) have no user principal name: kept and marked.")
    if guests:
        say.info(f"{guests} guest user(s): kept and marked as guests.")

    # 2b. conditional access, security defaults, roles, and the members of the groups policies name
    if options.read_policies:
        with _Phase(result, graph, "policies") as phase:
            result.policy_read = read_policies(graph, result, say)
            phase.items = len(result.policy_read.policies)

    if not result.licence_missing:
        vanished = sum(1 for r in users.values() if r.facts.deleted)
        if vanished:
            say.warning(f"{vanished} report row(s) name users the user list did not hold (deleted or created "
                        "between the reads): kept and marked.")

    # 4b. report-only evidence from the sign-in logs (only when a policy is not enforcing)
    if result.policy_read is not None and result.policy_read.read and not result.licence_missing:
        with _Phase(result, graph, "sign_ins") as phase:
            read_sign_in_evidence(graph, result, result.policy_read, since=now - timedelta(days=options.audit_days),
                                  limit=options.sign_in_limit, say=say)
            phase.items = result.policy_read.sign_ins_read

    # 5. per-user methods, only where a question is left
    with _Phase(result, graph, "methods") as phase:
        wanted = _questions(result, options)
        limit = options.fallback_limit if result.licence_missing else options.method_read_limit
        chosen, skipped = wanted[:limit], wanted[limit:]
        result.methods_skipped = len(skipped)
        if chosen:
            say.info(f"Reading the methods of {len(chosen):,} user(s) whose report row and audit trail leave a "
                     f"question ({', '.join(f'{k}: {v}' for k, v in sorted(result.questions.items()))}).")
        if skipped:
            say.warning(f"{len(skipped):,} more user(s) would need a per-user read; the bound is {limit:,}. They "
                        "are classified from what the report says, or marked 'not evaluated'.")
        _read_methods(graph, result, chosen, say)
        phase.items = result.methods_read

    with _Phase(result, graph, "classify") as phase:
        for rec in users.values():
            rec.verdict = mc.classify(rec.facts, rec.report, rec.events, rec.methods, methods_error=rec.methods_error)
        if result.policy_read is not None:
            evaluate_users(result, result.policy_read)
        phase.items = len(users)
    if result.policy_read is not None:
        if result.policy_read.read or result.policy_read.security_defaults is not None:
            with _Phase(result, graph, "per_user_mfa") as phase:
                read_per_user_mfa(graph, result, result.policy_read, limit=options.per_user_mfa_limit, say=say)
                phase.items = len(result.policy_read.per_user)
    result.graph_calls = graph.stats.as_dict()
    return result


MEMBERS = "members:"  # the listing key of a group's transitive members: MEMBERS + group id


def _group_listings(graph: Any, result: CollectResult, options: CollectOptions, say: Reporter) -> list[Listing]:
    """List the groups (for filters and readiness waves) and name the first ``max_groups`` of them in
    ``result.groups``; their transitive members are listings for the rounds of :func:`_read_listings`."""
    groups = list(graph.iter_groups(select=GROUP_SELECT))
    if len(groups) > options.max_groups:
        say.warning(f"{len(groups):,} groups in the tenant; memberships are read for the first {options.max_groups:,} "
                    "(by name) only. Filters and waves cover those groups.")
    groups.sort(key=lambda g: (g.display_name or "").lower())
    listings = []
    for group in groups[:options.max_groups]:
        gid = group.id.lower()
        result.groups[gid] = group.display_name or gid
        listings.append(Listing(MEMBERS + gid, listing_url(f"groups/{quote(group.id, safe='')}/transitiveMembers",
                                                           select=("id",), top=_page_size(graph)), _member,
                                f"read the members of group {result.groups[gid]}"))
    return listings


def _add_members(result: CollectResult, members: dict[str, list[str]]) -> None:
    """Each group's user members (read in the rounds, once every user is listed) on their records."""
    for gid in result.groups:  # by name, as the groups were listed; a group deleted meanwhile is no longer there
        for uid in members.get(gid, ()):
            rec = result.users.get(uid)
            if rec is not None:
                rec.groups.append(gid)


def _audit_pages(graph: Any, flt: Any) -> Iterable[DirectoryAudit]:
    return graph.directory_audits(filter=flt, top=_page_size(graph))


AUDIT_ACTIVITIES = (
    "User started security info registration", "User registered security info",
    "User registered all required security info", "User changed default security info",
    "User deleted security info", "User canceled security info registration",
    "Admin registered security info", "Admin updated security info", "Admin deleted security info",
)


def _audit_filters(since: datetime) -> dict[str, Any]:
    """One filtered listing per activity (``activityDisplayName eq``: what Graph and the lab index), then
    the MFA service's "Update user" events (app details stamped)."""
    window = odata_ge("activityDateTime", since)
    filters: dict[str, Any] = {name: window & odata_eq("activityDisplayName", name) for name in AUDIT_ACTIVITIES}
    filters[APP_UPDATES] = window & odata_eq("activityDisplayName", "Update user") & odata_eq(
        "initiatedBy/app/displayName", MFA_SERVICE_NAME)
    return filters


APP_UPDATES = "Update user (MFA service)"
# Microsoft logs most audit events within minutes, some much later: a read that follows the journal starts this long
# before the journal's latest read, and events it already holds are recognised by id.
AUDIT_LATE = timedelta(hours=24)
# What the journal holds depends on what is read and how an audit becomes an Event: a journal written under
# another key is not used (a full read replaces it). Bump JOURNAL_VERSION when classify.event_from_audit changes.
JOURNAL_VERSION = 1
AUDIT_READ_KEY = hashlib.sha256(repr((JOURNAL_VERSION, AUDIT_ACTIVITIES, MFA_SERVICE_NAME)).encode()).hexdigest()


def _listings(graph: Any, since: datetime) -> list[Listing]:
    top = _page_size(graph)
    out = [Listing("users", listing_url("users", select=USER_SELECT, top=top), _user, "list users"),
           Listing("report", listing_url("reports/authenticationMethods/userRegistrationDetails", top=top),
                   _registration, "read the userRegistrationDetails report")]
    out += [Listing(f"audit:{name}", listing_url("auditLogs/directoryAudits", filter=flt, top=top), _audit,
                    "read the directory audit log") for name, flt in _audit_filters(since).items()]
    return out


def _read_listings(graph: Any, result: CollectResult, options: CollectOptions, known: KnownAudit | None,
                   expected: int | None, say: Reporter, group_members: list[Listing]) -> int:
    """Users, report rows, audit events and group members arrive interleaved; rows, events and memberships
    are matched to users once every user is listed (a row for a user the list did not hold is a user deleted
    between the reads). The journal's events (``known``) are taken a slice after each page, then joined by the
    events read that it did not hold."""
    users = result.users
    audit = result.audit
    since = audit.since
    rows: list[Any] = []
    events: dict[str, list[mc.Event]] = {}
    members: dict[str, list[str]] = {}
    seen: set[str] = set()
    journal = iter(known.events) if known is not None else None
    known_events: dict[str, list[mc.Event]] = {}
    retry_app_updates = False
    for page in graph.pages_together(_listings(graph, since) + group_members):
        if journal is not None and not _take_known(journal, known_events, audit.window, JOURNAL_SLICE):
            journal = None
        if page.key.startswith(MEMBERS):
            gid = page.key[len(MEMBERS):]
            if isinstance(page.error, NotFound):
                result.notes.append(f"Group {result.groups.pop(gid, gid)} was deleted during the snapshot.")
            elif page.error is not None:
                raise page.error
            else:
                members.setdefault(gid, []).extend((m.id or "").lower() for m in page.items if m.kind == "user")
            continue
        if page.error is not None:
            if page.key == "report" and isinstance(page.error, LicenceRequired):
                result.licence_missing = True
                result.licence_message = (
                    "This tenant has no Microsoft Entra ID P1 or P2 licence, so Graph refuses the authentication "
                    "methods registration report. The snapshot falls back to reading each user's methods, for at "
                    f"most {options.fallback_limit:,} users; the others are marked 'not evaluated'.")
                say.warning(result.licence_message + f" (Graph said: {page.error.server_message or page.error})")
            elif page.key == f"audit:{APP_UPDATES}" and isinstance(page.error, BadRequest):
                retry_app_updates = True  # a tenant that refuses the initiator filter
            else:
                raise page.error
            continue
        if page.key == "users":
            before = len(users)
            for user in page.items:
                _add_user(result, user)
            if len(users) // 5000 > before // 5000:
                say.progress(len(users), expected)
        elif page.key == "report":
            rows.extend(page.items)
        else:
            _add_events(page.items, seen, events, audit.fresh)
    if retry_app_updates:
        # read the activity alone and sort the actor here
        app_updates = (a for a in _audit_pages(graph, odata_ge("activityDateTime", since)
                                               & odata_eq("activityDisplayName", "Update user"))
                       if (a.initiated_by_app or "").lower() == MFA_SERVICE_NAME.lower())
        _add_events(app_updates, seen, events, audit.fresh)
    if known is not None:
        if journal is not None:
            _take_known(journal, known_events, audit.window, None)
        events = _with_known(known_events, audit)
    for row in rows:
        rid = (row.id or "").lower()
        rec = users.get(rid)
        if rec is None:
            # in the report but not in the user list: deleted (or created) between the two reads
            rec = users[rid] = UserRecord(mc.UserFacts(
                id=rid, upn=row.user_principal_name or None, display_name=row.user_display_name,
                user_type=row.user_type, deleted=True))
        rec.report = mc.report_row(row)
    result.report_rows = len(rows)
    for uid, found in events.items():
        rec = users.get(uid)
        if rec is not None:
            rec.events.extend(found)
            result.audit_events += len(found)
    if group_members:
        _add_members(result, members)
        say.info(f"Group memberships of {len(result.groups):,} group(s) read.")
    return len(users) + len(rows) + result.audit_events


def _add_user(result: CollectResult, user: Any) -> None:
    uid = (user.id or "").lower()
    if not uid or uid == "none":
        result.notes.append("A user came back without an id; skipped.")
        return
    result.users[uid] = UserRecord(mc.UserFacts(
        id=uid, upn=user.user_principal_name or None, display_name=user.display_name,
        user_type=user.user_type, enabled=user.account_enabled,
        department=(user.extra or {}).get("department") or None, licensed=_licensed(user)))


JOURNAL_SLICE = 2_000  # journal events taken after each page: ~20 ms of work, while the next page is on its way


def _take_known(journal: Iterator[tuple[str, mc.Event]], known: dict[str, list[mc.Event]], window: datetime,
                count: int | None) -> bool:
    """Take ``count`` events (None: all that are left) from the journal into ``known``; False once it is empty."""
    taken = 0
    for uid, event in islice(journal, count):
        taken += 1
        if event.time is not None and event.time >= window:
            if uid in known:
                known[uid].append(event)
            else:
                known[uid] = [event]
    return count is not None and taken == count


def _with_known(known: dict[str, list[mc.Event]], audit: AuditRead) -> dict[str, list[mc.Event]]:
    """The journal's events and, beside them, the events read that it did not hold (the only ones kept as fresh):
    the overlap the read starts with holds events the journal has."""
    held = {e.id for found in known.values() for e in found}
    audit.known = sum(len(found) for found in known.values())
    audit.fresh = [(uid, e) for uid, e in audit.fresh if e.id not in held]
    for uid, event in audit.fresh:
        if uid in known:
            known[uid].append(event)
        else:
            known[uid] = [event]
    return known


def _add_events(audits: Iterable[DirectoryAudit], seen: set[str], events: dict[str, list[mc.Event]],
                fresh: list[tuple[str, mc.Event]]) -> None:
    for audit in audits:
        if audit.id in seen:
            continue
        seen.add(audit.id)
        for uid in mc.event_user_ids(audit):
            event = mc.event_from_audit(audit, uid)
            if event is not None:
                events.setdefault(uid, []).append(event)
                fresh.append((uid, event))


def _questions(result: CollectResult, options: CollectOptions) -> list[str]:
    """User ids whose methods must be read, most important first (administrators, then the rest)."""
    asks: list[tuple[int, str, str]] = []
    for uid, rec in result.users.items():
        reason = ""
        if result.licence_missing:
            if rec.facts.deleted:
                continue
            reason = "no report (licence)"
            rank = 0 if rec.facts.enabled is not False and (rec.facts.user_type or "member").lower() != "guest" else 1
        elif rec.report is None:
            if rec.facts.deleted:
                continue
            reason = "no report row"
            rank = 1
        else:
            latest = max((e.time for e in rec.events if e.time), default=None)
            if latest and rec.report.last_updated and latest > rec.report.last_updated:
                reason = "report older than the audit"
            elif mc.F.UNKNOWN in (families := mc.report_families(rec.report.methods_registered)):
                reason = "unknown method name"
            elif mc.F.TAP in families:
                reason = "temporary access pass"  # the report lists a pass; only the method says if it is usable
            rank = 0 if rec.report.is_admin else 1
        if reason:
            rec.question = reason
            result.questions[reason] = result.questions.get(reason, 0) + 1
            asks.append((rank, rec.facts.upn or uid, uid))
    asks.sort()
    return [uid for _, _, uid in asks]


def _read_methods(graph: Any, result: CollectResult, user_ids: list[str], say: Reporter) -> None:
    total = len(user_ids)
    for start in range(0, total, METHODS_CHUNK):
        chunk = user_ids[start:start + METHODS_CHUNK]
        for item in graph.iter_user_auth_methods(chunk):
            rec = result.users[item.user_id.lower()]
            if item.error is None:
                rec.methods = [mc.method_from(m) for m in item.methods]
                result.methods_read += 1
            elif isinstance(item.error, NotFound):
                rec.facts = _deleted(rec.facts)
                rec.methods_error = "the user was deleted during the snapshot"
            else:
                rec.methods_error = str(item.error)
        say.progress(min(start + len(chunk), total), total)
        say.info(f"Methods read for {min(start + len(chunk), total):,} of {total:,} user(s).")


def _deleted(facts: mc.UserFacts) -> mc.UserFacts:
    from dataclasses import replace

    return replace(facts, deleted=True)

