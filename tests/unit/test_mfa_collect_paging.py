"""The MFA collector over 100,000 users, with a fake Graph that pages as Graph does (999 per page) and counts.

Unit level on purpose: a 100,000-user lab tenant takes ~30 s to build and the collection ~1 min against
it (bench/mfa_snapshot.py measures that); tests/integration/test_mfa_snapshot.py pages a 2,500-user lab
tenant for real. This test shows the collector's cost is pages, not users, and that it holds up at size.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from diagnostics_app.mfa.choices import MfaClass
from diagnostics_app.mfa.collect import MEMBERS, CollectOptions, collect
from portal.connectors.graph import ConditionalAccessPolicy, GraphCallStats, NotFound, UserAuthMethods

N = 100_000
PAGE = 999
NOW = datetime(2026, 11, 20, tzinfo=UTC)


class FakeGraph:
    settings = SimpleNamespace(page_size=PAGE)

    def __init__(self, n: int, *, stale: set[int], groups: dict[str, list[int] | None] | None = None) -> None:
        self.n, self.stale = n, stale
        self.groups = groups or {}  # group id -> its users' numbers, or None: deleted before its members are read
        self.stats = GraphCallStats()

    def _paged(self, items):
        for start in range(0, len(items), PAGE):
            self.stats.requests += 1
            yield from items[start:start + PAGE]

    def count_users(self):
        self.stats.requests += 1
        return self.n

    def iter_users(self, select=None):
        self.stats.requests += 1  # first page fetched at the call
        users = (SimpleNamespace(id=f"u{i}", user_principal_name=f"user{i}@contoso.com", display_name=f"User {i}",
                                 account_enabled=True, user_type="Member", extra={"department": "Sales"})
                 for i in range(self.n))
        for i, user in enumerate(users):
            if i and i % PAGE == 0:
                self.stats.requests += 1
            yield user

    def iter_groups(self, select=None):
        self.stats.requests += 1
        return iter([SimpleNamespace(id=gid.upper(), display_name=gid[2:].title()) for gid in self.groups])

    # conditional access: one tenant-wide enabled policy, so every user is evaluated against it
    def security_defaults_enabled(self):
        self.stats.requests += 1
        return False

    def conditional_access_policies(self):
        self.stats.requests += 1
        return iter([ConditionalAccessPolicy(
            id="p-all", display_name="All users: MFA", state="enabled", users={"includeUsers": ["All"]},
            operator="OR", built_in_controls=("mfa",), custom_controls=(), terms_of_use=(), strength=None,
            strength_id=None)])

    def authentication_strengths(self):
        self.stats.requests += 1
        return iter(())

    def directory_roles(self):
        self.stats.requests += 1
        return []

    def user_registration_details(self, top=None):
        updated = NOW - timedelta(hours=3)
        rows = [SimpleNamespace(id=f"u{i}", user_principal_name=f"user{i}@contoso.com", user_display_name=None,
                                user_type="member", is_admin=i % 1000 == 0, is_mfa_registered=i % 4 != 0,
                                is_mfa_capable=i % 4 != 0, is_passwordless_capable=False,
                                methods_registered=("microsoftAuthenticatorPush",) if i % 4 else (),
                                last_updated=updated, user_preferred_method_for_secondary_authentication="push")
                for i in range(self.n)]
        return self._paged(rows)

    def directory_audits(self, filter=None, top=None):  # noqa: A002
        if "User registered security info" not in str(filter):
            self.stats.requests += 1
            return iter(())
        target = lambda i: SimpleNamespace(id=f"u{i}", type="User", modified_properties=())  # noqa: E731
        events = [SimpleNamespace(id=f"e{i}", activity="User registered security info", activity_time=NOW,
                                  result_reason="User registered Authenticator App", initiated_by_upn=None,
                                  initiated_by_app=None, initiated_by_user_id=None, targets=(target(i),))
                  for i in sorted(self.stale)]
        return self._paged(events)

    def pages_together(self, listings):
        """As EntraGraph.pages_together: each round, one $batch post per 20 open listings, a page of each."""
        from portal.connectors.graph.together import ListingPage

        streams = {}
        before = self.stats.requests  # the listings' own paging is not what is counted: the rounds are
        for listing in listings:
            if listing.key == "users":
                items = list(self.iter_users())
            elif listing.key == "report":
                items = list(self.user_registration_details())
            elif listing.key.startswith(MEMBERS):
                numbers = self.groups[listing.key[len(MEMBERS):]]
                if numbers is None:
                    streams[listing.key] = [NotFound("read the members: the group does not exist")]
                    continue
                items = [SimpleNamespace(id=f"U{i}", kind="user") for i in numbers]
                items.insert(1, SimpleNamespace(id="nested-group", kind="group"))
            else:
                items = list(self.directory_audits(filter=listing.key))
            streams[listing.key] = [items[i:i + PAGE] for i in range(0, len(items), PAGE)] or [[]]
        self.stats.requests = before
        self.rounds = 0
        while streams:
            self.rounds += 1
            self.stats.requests += -(-len(streams) // 20)
            for key in list(streams):
                page = streams[key].pop(0)
                yield ListingPage(key, error=page) if isinstance(page, NotFound) else ListingPage(key, page)
                if not streams[key]:
                    del streams[key]

    def iter_user_auth_methods(self, ids):
        for start in range(0, len(ids), 20):
            self.stats.requests += 1
            self.stats.batch_items += len(ids[start:start + 20])
        for uid in ids:
            yield UserAuthMethods(user_id=uid, methods=(SimpleNamespace(
                id="m", method="microsoftAuthenticator", display_name="Pixel", created=NOW),))


def test_collect_pages_a_hundred_thousand_users_and_reads_methods_only_for_questions():
    stale = set(range(7, N, 2000))  # 50 users registered after the report was computed
    fake = FakeGraph(N, stale=stale)
    result = collect(fake, now=NOW, options=CollectOptions(read_groups=False))
    assert len(result.users) == N
    pages = -(-N // PAGE)
    # users, report and the eleven audit listings paged side by side: one $batch post per round
    assert fake.rounds == pages and result.phases["listings"]["calls"] == 1 + pages  # $count + the rounds
    assert result.phases["methods"]["calls"] == -(-len(stale) // 20)
    assert result.methods_read == len(stale) and result.questions == {"report older than the audit": len(stale)}
    assert result.phases["policies"]["calls"] == 4
    outcomes = {rec.policy.outcome for rec in result.users.values()}
    assert outcomes == {"covered_able", "covered_interrupted"}
    assert result.graph_calls["requests"] < 300  # against 100,000+ for one read per user
    counts = result.counts()
    assert counts[MfaClass.NOT_REGISTERED] == N // 4 - N // 1000  # every 1000th user is an admin without one
    assert counts[MfaClass.ADMIN_NO_STRONG] == N // 1000
    assert sum(counts.values()) == N


def test_group_members_ride_in_the_listing_rounds_and_a_group_deleted_meanwhile_is_dropped():
    members = list(range(0, 3_000, 3))  # 1,000 users: two pages of members, read beside the users' 4 pages
    fake = FakeGraph(3_500, stale=set(), groups={"g-sales": members, "g-gone": None})
    result = collect(fake, now=NOW)
    pages = -(-3_500 // PAGE)
    assert fake.rounds == pages and "groups" not in result.phases
    # $count and the groups' list, then the rounds: 12 listings + 2 groups' members in one $batch post each
    assert result.phases["listings"]["calls"] == 2 + pages
    assert result.groups == {"g-sales": "Sales"}
    assert "Group Gone was deleted during the snapshot." in result.notes
    assert [uid for uid, rec in result.users.items() if rec.groups] == [f"u{i}" for i in members]
    assert all(rec.groups == ["g-sales"] for rec in result.users.values() if rec.groups)
