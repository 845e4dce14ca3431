"""EntraGraph.pages_together (portal/connectors/graph/together.py): independent listings paged side by side,
one $batch post per round of up to 20 open listings, each following its own nextLink; a throttled item asked
again after its Retry-After; a failing listing reported alone while the others go on."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from portal.connectors.graph import GraphCallStats, LicenceRequired
from portal.connectors.graph.together import Listing, PagingTogetherMixin, listing_url

BASE = "https://graph.example/v1.0"


class FakeBatch(PagingTogetherMixin):
    settings = SimpleNamespace(base=BASE, batch_item_retries=2, max_retry_wait=5, retry_delay=0)

    def __init__(self, answers):
        self.answers, self.posts = answers, []
        self.stats = GraphCallStats()

    def _post_json(self, what, url, body):
        assert url == f"{BASE}/$batch"
        requests = json.loads(body)["requests"]
        assert len(requests) <= 20
        self.posts.append([r["url"] for r in requests])
        self.stats.requests += 1
        return {"responses": [{"id": r["id"], **self.answers(r["url"])} for r in requests]}


def test_listings_page_together_one_post_per_round_and_a_failure_stays_alone(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda s: None)
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
    assert graph.stats.batch_items == 24


def test_listing_urls_encode_the_filter_and_keys_must_be_unique():
    url = listing_url("auditLogs/directoryAudits", filter="activityDisplayName eq 'User registered security info'",
                      top=999)
    assert url == ("/auditLogs/directoryAudits?$filter=activityDisplayName%20eq%20%27User%20registered%20security"
                   "%20info%27&$top=999")
    assert listing_url("users", select=("id", "displayName")) == "/users?$select=id,displayName"
    with pytest.raises(ValueError, match="unique"):
        list(FakeBatch(lambda u: {}).pages_together([Listing("a", "/x", dict), Listing("a", "/y", dict)]))
