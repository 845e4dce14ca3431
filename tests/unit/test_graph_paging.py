"""The Graph connector's paging core (portal/connectors/graph/transport.py ``prefetched``, used by every paged
read of EntraGraph): pages in order, the next one read ahead on the connector's loop while the caller works,
nothing read past the last page, an error surfacing after the pages before it, a caller that stops early
leaving no read in flight; and the same through EntraGraph over a mock transport (a throttled page retried
after its Retry-After, an error mid-way stopping the listing)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import pytest

from portal.connectors import graph
from portal.connectors.graph.auth import AccessToken
from portal.connectors.graph.transport import _LoopThread, prefetched
from tests.conftest import wait_for
from tests.support.graph_batch import request_pages

pytestmark = [
    pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:GetQueryParameters is deprecated:DeprecationWarning"),
]

TENANT = "6f1d3c52-1b9e-4f2a-9c31-2a7f0e1b9d44"
CREDS = graph.AppCredentials(tenant_id=TENANT, client_id="c0ffee00-0000-4000-8000-000000000001", client_secret="x")


class Pages:
    """``follow`` for prefetched(): page n answers with cursor n+1 up to ``last``; records what was asked."""

    def __init__(self, last: int, *, fail_at: int | None = None, hold_at: int | None = None) -> None:
        self.last, self.fail_at, self.hold_at = last, fail_at, hold_at
        self.asked: list[int] = []
        self.cancelled = threading.Event()
        self.release: asyncio.Event | None = None

    async def follow(self, cursor: int) -> tuple[str, int | None]:
        self.asked.append(cursor)
        if cursor == self.hold_at:
            self.release = asyncio.Event()
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        if cursor == self.fail_at:
            raise graph.ServiceUnavailable(f"page {cursor} failed")
        return f"page{cursor}", (cursor + 1 if cursor < self.last else None)


@pytest.fixture
def loop():
    runner = _LoopThread("test-paging")
    yield runner
    runner.close()


def test_pages_come_in_order_and_nothing_is_read_past_the_last(loop) -> None:
    pages = Pages(last=4)
    assert list(prefetched(loop.submit, "page1", 2, pages.follow)) == ["page1", "page2", "page3", "page4"]
    assert pages.asked == [2, 3, 4]
    assert list(prefetched(loop.submit, "only", None, pages.follow)) == ["only"] and pages.asked == [2, 3, 4]


def test_the_next_pages_are_read_while_the_caller_holds_the_first(loop) -> None:
    pages = Pages(last=10)
    iterator = prefetched(loop.submit, "page1", 2, pages.follow)
    assert next(iterator) == "page1"
    # without asking for more, the loop has read page 2 and started page 3; it goes no further ahead
    wait_for(lambda: pages.asked == [2, 3], message="the read ahead")
    assert next(iterator) == "page2"
    wait_for(lambda: pages.asked == [2, 3, 4], message="the next read ahead")
    assert list(iterator) == [f"page{n}" for n in range(3, 11)]


def test_an_error_surfaces_after_the_pages_before_it_and_ends_the_iteration(loop) -> None:
    pages = Pages(last=10, fail_at=3)
    iterator = prefetched(loop.submit, "page1", 2, pages.follow)
    assert [next(iterator), next(iterator)] == ["page1", "page2"]
    with pytest.raises(graph.ServiceUnavailable, match="page 3 failed"):
        next(iterator)
    with pytest.raises(StopIteration):
        next(iterator)
    assert pages.asked == [2, 3]


def test_stopping_early_cancels_the_read_in_flight(loop) -> None:
    pages = Pages(last=10, hold_at=2)
    iterator = prefetched(loop.submit, "page1", 2, pages.follow)
    assert next(iterator) == "page1"
    wait_for(lambda: pages.release is not None, message="page 2 in flight")
    iterator.close()
    wait_for(pages.cancelled.is_set, message="the read ahead cancelled")

    async def others() -> int:
        return len([t for t in asyncio.all_tasks() if t is not asyncio.current_task()])

    wait_for(lambda: loop.run(others()) == 0, message="no task left on the loop")
    assert pages.asked == [2]


# --------------------------------------------------------------------------------------------
# through EntraGraph (every paged read goes through _pages)


class Tokens(graph.TokenSource):
    def __init__(self) -> None:
        super().__init__(CREDS)

    def acquire(self, scope: str, *, claims: str | None = None) -> AccessToken:
        return AccessToken(token="t", expires_at=time.time() + 3600, claims={"tid": TENANT})


def paged(pages: int, per_page: int = 3, answer: Any = None,
          tokens: graph.TokenSource | None = None) -> tuple[graph.EntraGraph, list[str]]:
    """A connector over a tenant whose user listing has ``pages`` pages; ``answer(n)`` may replace page n."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        n = int(request.url.params.get("$skiptoken") or 1)
        seen.append(f"page{n}")
        special = answer(n, len([s for s in seen if s == f"page{n}"])) if answer else None
        if special is not None:
            return special
        body: dict[str, Any] = {"value": [{"id": f"u{n}-{i}"} for i in range(per_page)]}
        if n < pages:
            body["@odata.nextLink"] = f"https://graph.test/v1.0/users?$skiptoken={n + 1}"
        return httpx.Response(200, json=body)

    settings = graph.GraphSettings(credentials=CREDS, graph_url="https://graph.test/v1.0", retry_delay=0.0,
                                   max_retries=2)
    return graph.EntraGraph(settings, token_source=tokens or Tokens(), transport=httpx.MockTransport(handler)), seen


def test_a_listing_keeps_its_order_and_reads_each_page_once() -> None:
    client, seen = paged(5)
    with client:
        ids = [u.id for u in client.iter_users(select=["id"])]
        assert ids == [f"u{n}-{i}" for n in range(1, 6) for i in range(3)]
        assert seen == [f"page{n}" for n in range(1, 6)] and client.stats.requests == 5


def test_a_throttled_page_is_retried_after_its_retry_after(graph_retry_waits: list[float]) -> None:
    def answer(n: int, attempt: int) -> httpx.Response | None:
        if n == 3 and attempt == 1:
            return httpx.Response(429, json={"error": {"code": "TooManyRequests", "message": "slow down"}},
                                  headers={"Retry-After": "2"})
        return None

    client, seen = paged(4, answer=answer)
    with client:
        ids = [u.id for u in client.iter_users(select=["id"])]
        assert ids == [f"u{n}-{i}" for n in range(1, 5) for i in range(3)]
        assert (client.stats.requests, client.stats.throttled) == (5, 1)
    assert seen == ["page1", "page2", "page3", "page3", "page4"] and graph_retry_waits == [2]


def test_an_error_mid_way_surfaces_after_the_pages_before_it_and_nothing_more_is_read() -> None:
    def answer(n: int, attempt: int) -> httpx.Response | None:
        if n == 3:
            return httpx.Response(403, json={"error": {"code": "Authorization_RequestDenied", "message": "no"}})
        return None

    client, seen = paged(6, answer=answer)
    with client:
        users = client.iter_users(select=["id"])
        got = [next(users).id for _ in range(6)]
        assert got == [f"u{n}-{i}" for n in (1, 2) for i in range(3)]
        with pytest.raises(graph.Forbidden):
            next(users)
        assert list(users) == []
    assert seen == ["page1", "page2", "page3"]


def test_a_caller_that_stops_early_leaves_the_connector_usable() -> None:
    client, seen = paged(50, per_page=2)
    with client:
        users = client.iter_users(select=["id"])
        assert next(users).id == "u1-0"
        wait_for(lambda: len(seen) >= 2, timeout=10, message="page 2 read before the caller asks for it")
        users.close()
        # the read ahead goes at most three pages past what the caller took (one waiting, one being converted
        # on the loop, one arriving), and the connector still works
        assert len(seen) <= 4
        assert [u.id for u in client.iter_users(select=["id"])][-1] == "u50-1"


def test_pages_use_the_token_in_hand_until_it_nears_expiry(monkeypatch) -> None:
    import msal

    asked: list[str] = []

    class App:
        def __init__(self, client_id: str, **kwargs: Any) -> None:
            pass

        def acquire_token_for_client(self, scopes: list[str], claims_challenge: str | None = None) -> dict[str, Any]:
            asked.append(scopes[0])
            return {"access_token": f"token-{len(asked)}", "expires_in": 3599}

    monkeypatch.setattr(msal, "ConfidentialClientApplication", App)
    source = graph.TokenSource(CREDS)
    client, seen = paged(5, tokens=source)
    with client:
        assert len(list(client.iter_users(select=["id"]))) == 15
        assert asked == [graph.GRAPH_SCOPE]  # one token for five pages, not one msal call per page
        source._held[graph.GRAPH_SCOPE] = AccessToken(token="old", expires_at=time.time() + 60)
        assert len(list(client.iter_users(select=["id"]))) == 15
        assert len(asked) == 2  # a token about to expire is renewed through msal
        source.invalidate()
        assert source.held(graph.GRAPH_SCOPE) is None


def test_converted_values_are_the_frozen_dataclasses_the_constructor_makes() -> None:
    import dataclasses

    from portal.connectors.graph.convert import _user
    from portal.connectors.graph.types import EntraUser
    from portal.frozen import frozen_instance

    user = _user({"id": "u1", "userPrincipalName": "pat@contoso.com", "proxyAddresses": ["SMTP:pat@contoso.com"],
                  "department": "Sales"})
    assert user == EntraUser(id="u1", user_principal_name="pat@contoso.com", proxy_addresses=("SMTP:pat@contoso.com",),
                             extra={"department": "Sales"})
    assert hash(user.id) and dataclasses.replace(user, mail="x").mail == "x"
    with pytest.raises(dataclasses.FrozenInstanceError):
        user.mail = "changed"  # type: ignore[misc]
    # a field left out takes the constructor's default; an unknown one is the constructor's error
    assert frozen_instance(EntraUser, id="u2") == EntraUser(id="u2")
    with pytest.raises(TypeError, match="unexpected keyword argument .nickname."):
        frozen_instance(EntraUser, id="u3", nickname="x")


def test_the_next_request_is_sent_before_the_page_before_it_is_converted(loop) -> None:
    # a task started with ensure_future runs only when the loop gets control: converting right away left the
    # next request unsent (its adapter, middleware and connection pool await several times before writing)
    sent: list[int] = []
    seen_when_converting: dict[str, list[int]] = {}

    follow = request_pages(sent, last=5)  # its awaits before the body is written, then the answer

    def convert(page: str) -> str:
        seen_when_converting[page] = list(sent)
        return page.upper()

    assert list(prefetched(loop.submit, "PAGE1", 2, follow, convert)) == [f"PAGE{n}" for n in range(1, 6)]
    for n in range(2, 5):
        assert n + 1 in seen_when_converting[f"page{n}"], seen_when_converting


def test_pages_are_converted_on_the_connectors_loop_while_the_next_is_read(loop) -> None:
    # converting in the caller's thread made the two threads take turns at the GIL (bench/graph_paging.py)
    pages = Pages(last=5)
    threads: list[str] = []

    def convert(page: str) -> str:
        threads.append(threading.current_thread().name)
        return page.upper()

    iterator = prefetched(loop.submit, "PAGE1", 2, pages.follow, convert)
    assert next(iterator) == "PAGE1"
    # pages 2 and 3 read and converted (one waiting, one held back), page 4 on its way
    wait_for(lambda: len(threads) == 2 and pages.asked == [2, 3, 4], message="pages converted ahead")
    assert list(iterator) == ["PAGE2", "PAGE3", "PAGE4", "PAGE5"] and set(threads) == {"test-paging"}
