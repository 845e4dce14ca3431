"""A Graph $batch endpoint with a network's latency, for the connector's unit tests: it answers each post after a
short pause and counts the posts in flight at once, which is how a test sees that a round's posts overlap. The pause
is the fake server's, as the test jobs' injected sleeps are; no test waits on it. Also a paged read's request with
its hand-offs to the loop (request_pages), for the paging core's tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx

from portal.connectors import graph

LATENCY_SECONDS = 0.05


class InFlightBatch(graph.EntraGraph):
    """The real connector against a $batch endpoint (v1.0 or beta) answering each item with ``answers(url)``."""

    def __init__(self, answers: Callable[[str], dict[str, Any]], *, settings: graph.GraphSettings,
                 token_source: graph.TokenSource) -> None:
        self.answers, self.posts, self.flying, self.most = answers, [], 0, 0
        super().__init__(settings, token_source=token_source, transport=httpx.MockTransport(self._handle))

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        self.flying += 1
        self.most = max(self.most, self.flying)
        await asyncio.sleep(LATENCY_SECONDS)
        self.flying -= 1
        requests = json.loads(request.content)["requests"]
        assert len(requests) <= 20
        self.posts.append((str(request.url), [r["url"] for r in requests]))
        return httpx.Response(200, json={"responses": [{"id": r["id"], **self.answers(r["url"])} for r in requests]})


def request_pages(sent: list[int], *, last: int, awaits: int = 4, answer_seconds: float = 0.01):
    """A paged read's follow(cursor) as a real request behaves: ``awaits`` hand-offs to the loop before its body
    is written (then its cursor joins ``sent``), its answer ``answer_seconds`` later; pages 1..``last``."""

    async def follow(cursor: int) -> tuple[str, int | None]:
        for _ in range(awaits):
            await asyncio.sleep(0)
        sent.append(cursor)
        await asyncio.sleep(answer_seconds)
        return f"page{cursor}", (cursor + 1 if cursor < last else None)

    return follow
