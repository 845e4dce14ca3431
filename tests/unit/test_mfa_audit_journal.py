"""The MFA snapshots' audit journal: a snapshot that follows another reads the directory audit only from the
latest read less a day, takes the rest of its window from the journal, and classifies every user exactly as a
full read would; a journal that cannot stand in (none, other filters, a narrower window) means a full read."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import unquote

import pytest
from django.urls import reverse

from diagnostics_app.mfa.collect import AUDIT_LATE, CollectOptions, KnownAudit, collect
from diagnostics_app.mfa.selectors import known_audit
from diagnostics_app.mfa.services import do_start_snapshot, do_store_snapshot
from diagnostics_app.models import MfaAuditEvent, MfaAuditJournal, MfaSnapshot
from portal.connectors.graph import GraphCallStats
from portal.connectors.graph.together import ListingPage
from portal.jobs.services import run_job_inline

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]  # the journal is read apart on each database

T1 = datetime(2026, 11, 20, 12, tzinfo=UTC)
USERS = 40
OPTIONS = CollectOptions(read_groups=False, read_policies=False)
GE = re.compile(r"activityDateTime ge (\S+?)Z?\)")
ACTIVITY = re.compile(r"activityDisplayName eq '([^']+)'")


def audit(n: int, when: datetime, user: int, activity: str, reason: str = "") -> SimpleNamespace:
    return SimpleNamespace(id=f"a{n}", activity=activity, activity_time=when, result_reason=reason,
                           initiated_by_upn=f"user{user}@contoso.com", initiated_by_app=None,
                           initiated_by_user_id=f"u{user}",
                           targets=(SimpleNamespace(id=f"u{user}", type="User", modified_properties=()),))


class AuditGraph:
    """Users, a registration report and a directory audit that honours the ``activityDateTime ge`` and activity
    filters as Graph does; it notes where each audit read started."""

    tenant_id = "tenant-1"
    settings = SimpleNamespace(page_size=999)

    def __init__(self) -> None:
        self.stats = GraphCallStats()
        self.audits: list[SimpleNamespace] = []
        self.read_from: set[datetime] = set()
        self.journal_taken: list[int] = []  # journal events a test's counter saw taken, page by page
        self.count_taken = None
        # ~5 events per user over the 40 days before T1: started and never finished, registered, deleted
        kinds = ("User started security info registration", "User registered security info",
                 "User deleted security info")
        for n in range(USERS * 5):
            self.add(T1 - timedelta(days=40) + timedelta(hours=n * 4.8), n % USERS, kinds[n % 3])
        # the MFA service stamping Authenticator devices on a user: an event with a device list
        stamped = audit(len(self.audits), T1 - timedelta(days=2), 9, "Update user")
        stamped.initiated_by_app, stamped.initiated_by_upn = "Azure MFA StrongAuthenticationService", None
        stamped.targets = (SimpleNamespace(id="u9", type="User", modified_properties=(
            ("StrongAuthenticationPhoneAppDetail", '[{"Id": "d0", "DeviceName": "iPhone"}]',
             '[{"Id": "d0", "DeviceName": "iPhone"}, {"Id": "d1", "DeviceName": "Pixel 8 \u2013 Zo\u00eb"}]'),)),)
        self.audits.append(stamped)

    def add(self, when: datetime, user: int, activity: str) -> None:
        self.audits.append(audit(len(self.audits), when, user, activity, f"{activity} (Authenticator App)"))

    def count_users(self):
        return USERS

    def pages_together(self, listings):
        self.stats.requests += 1
        for listing in listings:
            if self.count_taken is not None:
                self.journal_taken.append(self.count_taken())
            if listing.key == "users":
                yield ListingPage("users", [SimpleNamespace(
                    id=f"u{i}", user_principal_name=f"user{i}@contoso.com", display_name=f"User {i}",
                    account_enabled=True, user_type="Member", extra={"department": "Sales"}) for i in range(USERS)])
            elif listing.key == "report":
                yield ListingPage("report", [SimpleNamespace(
                    id=f"u{i}", user_principal_name=f"user{i}@contoso.com", user_display_name=None, user_type="member",
                    is_admin=False, is_mfa_registered=i % 2 == 0, is_mfa_capable=i % 2 == 0,
                    is_passwordless_capable=False,
                    methods_registered=("microsoftAuthenticatorPush",) if i % 2 == 0 else (),
                    last_updated=T1 + timedelta(days=30), user_preferred_method_for_secondary_authentication=None)
                    for i in range(USERS)])
            else:
                url = unquote(listing.url)
                since = datetime.fromisoformat(GE.search(url).group(1)).replace(tzinfo=UTC)
                name = ACTIVITY.search(url).group(1)
                self.read_from.add(since)
                yield ListingPage(listing.key, [a for a in self.audits
                                                if a.activity == name and a.activity_time >= since])


def verdicts(result) -> dict[str, tuple]:
    return {uid: (r.verdict.classification, r.verdict.reasons, r.verdict.evidence, sorted(e.id for e in r.events))
            for uid, r in result.users.items()}


def test_a_snapshot_after_the_journal_reads_a_day_before_its_latest_read_and_classifies_as_a_full_read():
    graph = AuditGraph()
    first = collect(graph, now=T1, options=OPTIONS)
    assert graph.read_from == {T1 - timedelta(days=30)} and not first.audit.incremental
    do_store_snapshot(first, tenant="tenant-1")
    in_window = [a for a in graph.audits if a.activity_time >= T1 - timedelta(days=30)]
    assert MfaAuditEvent.objects.count() == len(first.audit.fresh) == len(in_window)

    # three days on: events logged since, and one Microsoft logged late (dated before the last read)
    t2 = T1 + timedelta(days=3)
    graph.add(T1 + timedelta(hours=5), 3, "User registered security info")
    graph.add(T1 - timedelta(hours=6), 4, "User started security info registration")
    graph.add(t2 - timedelta(minutes=1), 5, "User deleted security info")
    graph.read_from.clear()
    known = known_audit(tenant="tenant-1", since=t2 - timedelta(days=30))
    second = collect(graph, now=t2, options=OPTIONS, known_audit=known)
    assert graph.read_from == {T1 - AUDIT_LATE} and second.audit.incremental
    assert sorted(e.id for _, e in second.audit.fresh) == ["a201", "a202", "a203"]
    assert any("came from the portal's journal" in note for note in second.notes)

    full = collect(graph, now=t2, options=OPTIONS)  # what a full read says at the same moment
    assert verdicts(second) == verdicts(full)
    stamped = [e for e in second.users["u9"].events if e.kind == "app_detail"]
    assert [(e.added_devices, e.had_devices) for e in stamped] == [(("Pixel 8 – Zoë",), 1)]
    assert second.audit_events == full.audit_events and second.audit.known + 3 == full.audit_events

    do_store_snapshot(second, tenant="tenant-1")  # the new events kept, those no window reaches dropped
    assert MfaAuditEvent.objects.count() == second.audit_events == sum(
        1 for a in graph.audits if a.activity_time >= t2 - timedelta(days=30))
    journal = MfaAuditJournal.objects.get()
    assert journal.read_until == t2 and journal.covered_from == t2 - timedelta(days=30)


def test_the_journal_is_taken_a_slice_after_each_page_while_the_next_is_awaited(monkeypatch):
    monkeypatch.setattr("diagnostics_app.mfa.collect.JOURNAL_SLICE", 10)
    graph = AuditGraph()
    do_store_snapshot(collect(graph, now=T1, options=OPTIONS), tenant="tenant-1")
    t2 = T1 + timedelta(hours=1)
    known = known_audit(tenant="tenant-1", since=t2 - timedelta(days=30))
    taken = []

    def counted():
        for item in known.events:
            taken.append(item)
            yield item

    graph.count_taken = lambda: len(taken)
    result = collect(graph, now=t2, options=OPTIONS, known_audit=KnownAudit(read_until=known.read_until,
                                                                            events=counted()))
    pages = len(graph.journal_taken)  # users, report and one page per audit listing
    assert graph.journal_taken == [10 * n for n in range(pages)] and 10 * pages < len(taken)
    assert result.audit.known == len(taken) and verdicts(result) == verdicts(collect(graph, now=t2, options=OPTIONS))


def test_a_journal_that_cannot_stand_in_means_a_full_read_which_replaces_it():
    graph = AuditGraph()
    do_store_snapshot(collect(graph, now=T1, options=CollectOptions(read_groups=False, read_policies=False,
                                                                    audit_days=7)), tenant="tenant-1")
    # a wider window than the journal covers
    assert known_audit(tenant="tenant-1", since=T1 - timedelta(days=30)) is None
    assert known_audit(tenant="tenant-1", since=T1 - timedelta(days=7)) is not None
    # another tenant, or a journal written by other filters (an older version of the portal)
    assert known_audit(tenant="tenant-2", since=T1 - timedelta(days=7)) is None
    MfaAuditJournal.objects.update(read_key="other")
    assert known_audit(tenant="tenant-1", since=T1 - timedelta(days=7)) is None
    result = collect(graph, now=T1 + timedelta(days=1), options=OPTIONS, known_audit=None)
    do_store_snapshot(result, tenant="tenant-1")
    journal = MfaAuditJournal.objects.get()
    assert journal.read_key != "other" and journal.covered_from == T1 + timedelta(days=1) - timedelta(days=30)
    assert MfaAuditEvent.objects.count() == len(result.audit.fresh)


def test_a_journal_older_than_the_window_is_a_full_read_and_old_events_are_dropped():
    graph = AuditGraph()
    do_store_snapshot(collect(graph, now=T1, options=OPTIONS), tenant="tenant-1")
    later = T1 + timedelta(days=31)  # the last read is out of the window: nothing it holds helps
    graph.read_from.clear()
    result = collect(graph, now=later, options=OPTIONS,
                     known_audit=known_audit(tenant="tenant-1", since=later - timedelta(days=30)))
    assert not result.audit.incremental and graph.read_from == {later - timedelta(days=30)}
    # told to read the whole window, the collection does so whatever journal it is given
    result = collect(graph, now=T1 + timedelta(days=1), options=CollectOptions(
        read_groups=False, read_policies=False, full_audit=True), known_audit=known_audit(
        tenant="tenant-1", since=T1 - timedelta(days=29)))
    assert not result.audit.incremental and result.audit.known == 0

    t2 = T1 + timedelta(days=10)  # a read that follows: events past the widest window leave the journal
    known = known_audit(tenant="tenant-1", since=t2 - timedelta(days=30))
    do_store_snapshot(collect(graph, now=t2, options=OPTIONS, known_audit=known), tenant="tenant-1")
    assert not MfaAuditEvent.objects.filter(time__lt=t2 - timedelta(days=30)).exists()
    assert MfaAuditJournal.objects.get().covered_from == t2 - timedelta(days=30)


def test_events_two_snapshots_side_by_side_both_read_are_kept_once():
    graph = AuditGraph()
    first = collect(graph, now=T1, options=OPTIONS)
    do_store_snapshot(first, tenant="tenant-1")
    t2 = T1 + timedelta(hours=2)
    graph.add(T1 + timedelta(hours=1), 7, "User registered security info")
    both = [collect(graph, now=t2, options=OPTIONS, known_audit=known_audit(tenant="tenant-1",
                                                                           since=t2 - timedelta(days=30)))
            for _ in range(2)]  # both started from the same journal
    for result in both:
        do_store_snapshot(result, tenant="tenant-1")
    assert [len(r.audit.fresh) for r in both] == [1, 1]
    assert MfaAuditEvent.objects.filter(audit_id="a201").count() == 1
    known = known_audit(tenant="tenant-1", since=t2 - timedelta(days=30))
    assert [e.id for uid, e in known.events if uid == "u7"].count("a201") == 1


@pytest.mark.django_db(transaction=True)
def test_the_snapshot_job_uses_the_journal_unless_told_to_read_the_whole_window(monkeypatch, role_users, client):
    graph = AuditGraph()

    class Connected:
        def __enter__(self):
            return graph

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr("diagnostics_app.mfa.jobs.entra_graph", Connected)
    monkeypatch.setattr("diagnostics_app.mfa.jobs.options_from", lambda params: CollectOptions(
        read_groups=False, read_policies=False, full_audit=bool(params.get("full_audit"))))
    admin = role_users["Administrator"]
    jobs = [run_job_inline(do_start_snapshot(user=admin, enqueue=False, **flags))
            for flags in ({}, {}, {"full_audit": True})]
    assert [j.status for j in jobs] == ["succeeded"] * 3, [j.error for j in jobs]
    snapshots = [MfaSnapshot.objects.get(job=j) for j in jobs]
    assert [any("portal's journal" in n for n in s.notes) for s in snapshots] == [False, True, False]
    assert [(s.audit_read > 0, s.audit_from_journal > 0) for s in snapshots] == [(True, False), (False, True),
                                                                                  (True, False)]
    logged = list(jobs[1].log_lines.values_list("message", flat=True))
    assert any("came from the portal's journal" in m for m in logged)
    assert MfaAuditJournal.objects.get().tenant == "tenant-1"
    # the report says where the evidence of a snapshot that used the journal came from
    client.force_login(admin)
    page = client.get(reverse("diagnostics_app:mfa"), {"snapshot": snapshots[1].pk}).content.decode()
    assert "earlier events of the window from earlier snapshots" in page
    assert "audit-source" not in client.get(reverse("diagnostics_app:mfa"),
                                            {"snapshot": snapshots[2].pk}).content.decode()
