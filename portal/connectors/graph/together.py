"""Several independent listings paged side by side through ``$batch``.

Each round, one ``$batch`` post carries the next page request of every listing still open (20 per post,
Graph's limit), and each listing follows its own ``@odata.nextLink``. Read one after the other, the users,
the registration report and the audit of a 100,000-user tenant are one call per page each; read together, a
round of up to 20 pages is one call. A throttled item (429/503/504) is asked again in the next round after
its ``Retry-After``; any other error ends that listing alone, reported with the page it stopped on.

Rounds go through the connector's paging core (:func:`.transport.prefetched`): the next round is posted as
soon as the one before it is parsed, and the pages are converted on the connector's loop meanwhile.

A mixin of :class:`.client.EntraGraph` (it uses the connector's loop, ``_post_json_async``, settings and stats).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .errors import GraphError, _retry_after, error_for_status
from .query import ODataFilter, _filter_text, _select
from .transport import parse_json, prefetched

BATCH_LIMIT = 20  # requests in one $batch post (Graph's documented maximum)


@dataclass(frozen=True)
class Listing:
    """One paged collection: a key the caller chose, its first URL relative to the version root, and how
    each item becomes a connector type."""

    key: str
    url: str
    convert: Callable[[Mapping[str, Any]], Any]
    what: str = ""
    single: bool = False  # the URL reads one object (its page is that object alone), not a collection


@dataclass
class ListingPage:
    key: str
    items: list[Any] = field(default_factory=list)
    error: GraphError | None = None


def listing_url(path: str, *, select: Iterable[str] | None = None, filter: ODataFilter | str | None = None,  # noqa: A002
                top: int | None = None) -> str:
    """``/path?$select=…&$filter=…&$top=…`` with the values percent-encoded as the SDK's builders do."""
    parts = []
    fields = _select(select)
    if fields:
        parts.append("$select=" + quote(",".join(fields), safe=","))
    text = _filter_text(filter)
    if text:
        parts.append("$filter=" + quote(text, safe=""))
    if top:
        parts.append(f"$top={int(top)}")
    return "/" + path.lstrip("/") + ("?" + "&".join(parts) if parts else "")


@dataclass(frozen=True)
class _Round:
    """Where the listings stand before a round: the next URL of each open one, its throttled attempts so
    far, and the Retry-After to wait before posting."""

    open_urls: Mapping[str, str]
    attempts: Mapping[str, int] = field(default_factory=dict)
    wait: float = 0.0


# what a round gives each listing it carried: the page's raw items, or the error that ended the listing
_Answer = tuple[str, list[Any], GraphError | None]


class PagingTogetherMixin:
    _call: Any
    _run: Any
    _post_json_async: Any
    _runner: Any
    settings: Any
    stats: Any

    def pages_together(self, listings: Sequence[Listing], *, beta: bool = False) -> Iterator[ListingPage]:
        """Yield every page of every listing as it arrives (listings interleave; pages of one listing come
        in order). A listing that fails yields one page with ``error`` set and no more. ``beta``: the URLs are
        relative to the beta root (posted to its ``$batch``)."""
        by_key = {listing.key: listing for listing in listings}
        if len(by_key) != len(listings):
            raise ValueError("listing keys must be unique")
        if not listings:
            return
        what = f"read {len(listings)} listing(s) together"
        base = self.settings.beta if beta else self.settings.base

        def post_round(state: _Round) -> Any:
            return self._call(what, lambda client: self._round(client, state, by_key, base))

        start = _Round({listing.key: listing.url for listing in listings})
        def converted(answers: list[_Answer]) -> list[ListingPage]:
            # on the connector's loop, while the next round is posted (transport.prefetched)
            return [ListingPage(key, [by_key[key].convert(d) for d in items], error) for key, items, error in answers]

        first, state = self._run(what, lambda client: self._round(client, start, by_key, base))
        for pages in prefetched(self._runner.submit, converted(first), state, post_round, converted):
            yield from pages

    async def _round(self, client: Any, state: _Round, by_key: Mapping[str, Listing],
                     base: str) -> tuple[list[_Answer], _Round | None]:
        """Post one round ($batch posts of up to 20 open listings, ``batch_concurrency`` of them in flight at
        once); the answers and where the listings stand."""
        from .client import _relative_url

        if state.wait:
            await _sleep(min(state.wait, self.settings.max_retry_wait))
        open_urls, attempts = dict(state.open_urls), dict(state.attempts)
        keys = list(open_urls)
        chunks = [keys[start:start + BATCH_LIMIT] for start in range(0, len(keys), BATCH_LIMIT)]
        posted: list[dict[str, Any]] = []
        step = self.settings.batch_concurrency
        for first in range(0, len(chunks), step):
            posted += await asyncio.gather(*(self._post_chunk(client, chunk, open_urls, len(keys), base)
                                             for chunk in chunks[first:first + step]))
        out: list[_Answer] = []
        wait = 0.0
        for chunk, got in zip(chunks, posted, strict=True):
            for n, key in enumerate(chunk):
                item = got.get(str(n)) or {}
                status, headers, doc = int(item.get("status") or 0), item.get("headers") or {}, item.get("body")
                if isinstance(doc, str):
                    with contextlib.suppress(ValueError):
                        doc = parse_json(base64.b64decode(doc))
                if 200 <= status < 300 and isinstance(doc, dict):
                    attempts.pop(key, None)
                    if by_key[key].single:
                        del open_urls[key]
                        out.append((key, [doc], None))
                        continue
                    next_link = doc.get("@odata.nextLink")
                    if next_link:
                        open_urls[key] = _relative_url(str(next_link), base)
                    else:
                        del open_urls[key]
                    out.append((key, list(doc.get("value") or ()), None))
                    continue
                after = _retry_after(headers)
                tries = attempts.get(key, 0)
                if status in (429, 503, 504) and tries < self.settings.batch_item_retries and (
                        after is None or after <= self.settings.max_retry_wait):
                    attempts[key] = tries + 1
                    wait = max(wait, after if after is not None else self.settings.retry_delay * 2 ** tries)
                    continue
                error = doc.get("error") if isinstance(doc, dict) else None
                error = error if isinstance(error, dict) else {}
                inner = error.get("innerError") or {}
                del open_urls[key]
                listing = by_key[key]
                out.append((key, [], error_for_status(
                    listing.what or f"read {key}", status or None, code=error.get("code"),
                    message=error.get("message") or ("the batch returned no response for this listing"
                                                     if not item else None),
                    request_id=inner.get("request-id"), retry_after=after)))
        return out, (_Round(open_urls, attempts, wait) if open_urls else None)

    async def _post_chunk(self, client: Any, chunk: Sequence[str], open_urls: Mapping[str, str], listings: int,
                          base: str) -> dict[str, Any]:
        """One ``$batch`` post of up to 20 listings' next requests; its answers by request id."""
        self.stats.batch_items += len(chunk)
        answer = await self._post_json_async(client, f"read {len(chunk)} page(s) of {listings} listing(s)",
                                             f"{base}/$batch", batch_body((str(n), open_urls[key])
                                                                          for n, key in enumerate(chunk)))
        return {str(item.get("id")): item for item in answer.get("responses") or () if isinstance(item, dict)}


def batch_body(requests: Iterable[tuple[str, str]]) -> bytes:
    """A ``$batch`` post's JSON body of GET requests, each (request id, URL relative to the version root)."""
    return json.dumps({"requests": [{"id": rid, "method": "GET", "url": url} for rid, url in requests]}).encode()


async def _sleep(seconds: float) -> None:
    # one place a throttled round waits (tests record it instead)
    await asyncio.sleep(seconds)
