"""EntraGraph.pages_together (portal/connectors/graph/together.py): independent listings paged side by side,
one $batch post per round of up to 20 open listings, each following its own nextLink; a throttled item asked
again after its Retry-After; a failing listing reported alone while the others go on."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from portal.connectors import graph
from portal.connectors.graph import LicenceRequired
from portal.connectors.graph.auth import AccessToken
from portal.connectors.graph.together import Listing, listing_url
from tests.support.graph_batch import InFlightBatch

BASE = "https://graph.example/v1.0"
TENANT = "6f1d3c52-1b9e-4f2a-9c31-2a7f0e1b9d44"
CREDS = graph.AppCredentials(tenant_id=TENANT, client_id="c0ffee00-0000-4000-8000-000000000001", client_secret="x")

pytestmark = [pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning")]


class Tokens(graph.TokenSource):
    def __init__(self) -> None:
        super().__init__(CREDS)

    def acquire(self, scope, *, claims=None):
        return AccessToken(token="t", expires_at=time.time() + 3600, claims={"tid": TENANT})


class FakeBatch(graph.EntraGraph):
    """The real connector; its $batch endpoint answers each item with ``answers(url)``."""

    def __init__(self, answers):
        self.answers, self.posts = answers, []
        settings = graph.GraphSettings(credentials=CREDS, graph_url=BASE, batch_item_retries=2, max_retry_wait=5,
                                       retry_delay=0)
        super().__init__(settings, token_source=Tokens(), transport=httpx.MockTransport(self._handle))

    def _handle(self, request):
        assert str(request.url) == f"{BASE}/$batch" and request.method == "POST"
        requests = json.loads(request.content)["requests"]
        assert len(requests) <= 20
        self.posts.append([r["url"] for r in requests])
        return httpx.Response(200, json={"responses": [{"id": r["id"], **self.answers(r["url"])} for r in requests]})


@pytest.fixture
def round_waits(monkeypatch):
    waits = []

    async def sleep(seconds):
        waits.append(seconds)

    monkeypatch.setattr("portal.connectors.graph.together._sleep", sleep)
    return waits


def test_listings_page_together_one_post_per_round_and_a_failure_stays_alone(round_waits):
    throttled = {"n": 0}

    def answers(url):
        if url.startswith("/users"):
            page = 2 if "skip" in url else 1
            body = {"value": [{"id": f"u{page}"}]}
            if page == 1:
                body["@odata.nextLink"] = f"{BASE}/users?$skiptoken=skip"
            return {"status": 200, "body": body}
        if url.startswith("/report"):
            return {"status": 403, "body": {"error": {"code": "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                                                      "message": "not premium"}}}
        throttled["n"] += 1
        if throttled["n"] == 1:
            return {"status": 429, "headers": {"Retry-After": "1"}, "body": {"error": {"code": "TooManyRequests"}}}
        return {"status": 200, "body": {"value": [{"id": "a1"}, {"id": "a2"}]}}

    graph = FakeBatch(answers)
    listings = [Listing("users", "/users?$top=1", dict), Listing("report", "/report", dict, "read the report"),
                *(Listing(f"audit:{n}", f"/audit?{n}", dict) for n in range(20))]
    pages = list(graph.pages_together(listings))
    # round 1: 22 listings -> two posts; round 2: users' next page and the throttled audit -> one post
    assert [len(p) for p in graph.posts] == [20, 2, 2]
    assert graph.posts[2] == ["/users?$skiptoken=skip", "/audit?0"] and graph.stats.requests == 3
    users = [item["id"] for p in pages if p.key == "users" for item in p.items]
    assert users == ["u1", "u2"]
    report = [p for p in pages if p.key == "report"]
    assert len(report) == 1 and isinstance(report[0].error, LicenceRequired)
    assert sum(len(p.items) for p in pages if p.key.startswith("audit:")) == 40
    assert graph.stats.batch_items == 24 and round_waits == [1]
    graph.close()


def test_listing_urls_encode_the_filter_and_keys_must_be_unique():
    url = listing_url("auditLogs/directoryAudits", filter="activityDisplayName eq 'User registered security info'",
                      top=999)
    assert url == ("/auditLogs/directoryAudits?$filter=activityDisplayName%20eq%20%27User%20registered%20security"
                   "%20info%27&$top=999")
    assert listing_url("users", select=("id", "displayName")) == "/users?$select=id,displayName"
    with FakeBatch(lambda u: {}) as client, pytest.raises(ValueError, match="unique"):
        list(client.pages_together([Listing("a", "/x", dict), Listing("a", "/y", dict)]))


def test_the_next_round_is_posted_while_the_caller_uses_the_pages_before_it():
    from tests.conftest import wait_for

    def answers(url):
        n = int(url.rsplit("=", 1)[1]) if "skip" in url else 1
        body = {"value": [{"id": f"{url[:2]}{n}"}]}
        if n < 30:
            body["@odata.nextLink"] = f"{BASE}{url.split('?')[0]}?$skiptoken={n + 1}"
        return {"status": 200, "body": body}

    with FakeBatch(answers) as client:
        pages = client.pages_together([Listing("users", "/users", dict), Listing("groups", "/groups", dict)])
        assert next(pages).items == [{"id": "/u1"}]
        wait_for(lambda: len(client.posts) >= 2, timeout=10, message="round 2 posted before the caller asks")
        pages.close()
        assert len(client.posts) <= 4  # no further than one round waiting, one being converted, one in flight
        rounds = len(client.posts)
        again = list(client.pages_together([Listing("users", "/users", dict)]))
        assert [p.items[0]["id"] for p in again] == [f"/u{n}" for n in range(1, 31)]
        assert len(client.posts) == rounds + 30


def in_flight(answers, *, concurrency=4):
    """The real connector against a $batch endpoint that answers after a network's pause (tests/support)."""
    settings = graph.GraphSettings(credentials=CREDS, graph_url=BASE, batch_item_retries=2, max_retry_wait=5,
                                   retry_delay=0, batch_concurrency=concurrency)
    return InFlightBatch(answers, settings=settings, token_source=Tokens())


def test_per_user_mfa_states_are_read_in_beta_batches_in_flight_together_a_throttled_one_again(round_waits):
    throttled = set()

    def answers(url):
        uid = url.split("/")[2]
        if uid == "gone":
            return {"status": 404, "body": {"error": {"code": "Request_ResourceNotFound", "message": "gone"}}}
        if uid == "u7" and uid not in throttled:
            throttled.add(uid)
            return {"status": 429, "headers": {"Retry-After": "2"}, "body": {"error": {"code": "TooManyRequests"}}}
        state = {"u1": "enforced", "u2": "enabled"}.get(uid, "disabled")
        return {"status": 200, "body": {"perUserMfaState": state}}

    ids = [f"u{n}" for n in range(60)] + ["gone", "u1"]
    with in_flight(answers, concurrency=3) as client:
        states = client.per_user_mfa_states(ids)
    assert states["u1"] == "enforced" and states["u2"] == "enabled" and states["u7"] == "disabled"
    assert states["gone"] is None and len(states) == 61
    # 61 users: four posts to beta's $batch, three in flight at once; then u7 again, after its Retry-After
    assert all(url == "https://graph.example/beta/$batch" for url, _ in client.posts)
    assert sorted(len(urls) for _, urls in client.posts) == [1, 1, 20, 20, 20]
    assert client.posts[-1][1] == ["/users/u7/authentication/requirements"] and round_waits == [2]
    assert client.most == 3 and client.stats.requests == 5


def test_a_rounds_posts_fly_together_up_to_the_connectors_concurrency(round_waits):
    with in_flight(lambda url: {"status": 200, "body": {"value": [{"id": url}]}}, concurrency=2) as client:
        pages = list(client.pages_together([Listing(f"g{n}", f"/groups/g{n}/members", dict) for n in range(70)]))
    assert len(pages) == 70 and [len(urls) for _, urls in client.posts] == [20, 20, 20, 10]
    assert client.most == 2
