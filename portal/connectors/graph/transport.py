"""How requests travel: Graph's JSON pages through the SDK's ``PageIterator``, read ahead of the caller
(:func:`prefetched`), the private event loop the synchronous facade runs on, and the count of HTTP
requests sent.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import orjson
from kiota_abstractions.headers_collection import HeadersCollection
from kiota_abstractions.request_information import RequestInformation
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph_core.models.page_result import PageResult
from msgraph_core.tasks.page_iterator import PageIterator

from .errors import GraphError

T = TypeVar("T")
P = TypeVar("P")


_ERROR_MAP: dict[str, Any] = {"XXX": ODataError}


def parse_json(raw: bytes | str) -> Any:
    """Graph's JSON answer as Python values. orjson, not the standard library: a large tenant's listings are
    hundreds of MB of JSON, which orjson reads in about 0.65 of the time here (bench/mfa_snapshot). Its
    errors are ``ValueError`` as the standard library's are."""
    return orjson.loads(raw)


# --------------------------------------------------------------------------------------------
# paging


async def _send_json(adapter: Any, info: RequestInformation) -> Any:
    """Send through the request adapter (auth, retry, redirects) and read the answer as plain JSON."""
    if not info.headers.contains("Accept"):
        info.headers.try_add("Accept", "application/json")
    raw = await adapter.send_primitive_async(info, "bytes", _ERROR_MAP)
    return parse_json(raw) if raw else {}


def _page(doc: Any) -> PageResult:
    if not isinstance(doc, dict):
        raise GraphError("expected a JSON object with a 'value' list")
    values = doc.get("value")
    return PageResult(odata_next_link=doc.get("@odata.nextLink"), value=list(values) if values else [])


class _JsonPageAdapter:
    """What PageIterator calls to fetch a page: the real adapter's request, the page read as JSON."""

    def __init__(self, adapter: Any) -> None:
        self._adapter = adapter

    async def send_async(self, request_info: RequestInformation, parsable_factory: Any, error_map: Any) -> PageResult:
        return _page(await _send_json(self._adapter, request_info))


class _PageIterator(PageIterator):
    """The SDK's PageIterator, each page request with headers of its own.

    The SDK hands one shared HeadersCollection to every page request, so the Authorization header
    added for the first nextLink would travel to every later one, whatever its host, bypassing the
    token provider's allowed hosts. A fresh copy per page keeps that decision per request.
    """

    async def fetch_next_page(self) -> Any:
        shared = self.headers
        fresh = HeadersCollection()
        for name, values in shared.get_all().items():
            fresh.add(name, list(values))
        self.headers = fresh
        try:
            return await super().fetch_next_page()
        finally:
            self.headers = shared


def prefetched(
    submit: Callable[[Awaitable[Any]], concurrent.futures.Future[Any]],
    first: P,
    cursor: Any,
    follow: Callable[[Any], Awaitable[tuple[Any, Any]]],
    convert: Callable[[Any], P] | None = None,
) -> Iterator[P]:
    """Pages in order, the following ones read ahead on the connector's loop.

    A page's answer names the next one (Graph's ``@odata.nextLink`` is in the body), so one request at a
    time: ``follow(cursor)`` reads a page and returns it with the next cursor (None after the last page,
    and nothing is requested past it). The loop starts each request as soon as the page before it is
    parsed, without waiting for the caller's thread, and the request flies while the caller converts the
    pages before it; at most three pages are held (the caller's, one waiting, one arriving). An error
    surfaces after the pages before it were handed over and ends the iteration; a caller that stops early
    cancels the read ahead. ``submit`` hands a coroutine to the loop.

    ``convert`` (when given) turns each page that ``follow`` read into what the caller gets, on the loop,
    once the request for the page after it is on its way (written, not only scheduled: HANDOFF_YIELDS).
    Converted in the caller's thread instead, the two threads took turns at the GIL and the loop, which gives
    it up at every socket read, waited for it up to a switch interval each time. One more page is then held
    (the one being converted).
    """
    if cursor is None:
        yield first
        return
    ready: asyncio.Queue[tuple[P | None, bool, BaseException | None]] | None = None
    started = threading.Event()

    async def produce() -> None:
        nonlocal ready
        ready = asyncio.Queue(maxsize=1)
        started.set()
        at = cursor
        try:
            if convert is None:
                while at is not None:
                    page, at = await follow(at)
                    await ready.put((page, at is None, None))
                return
            reading: asyncio.Future[tuple[Any, Any]] | None = asyncio.ensure_future(follow(at))
            try:
                while reading is not None:
                    raw, at = await reading
                    reading = asyncio.ensure_future(follow(at)) if at is not None else None
                    if reading is not None:
                        await _let_it_go_out()
                    await ready.put((convert(raw), reading is None, None))
            finally:
                if reading is not None:
                    reading.cancel()
        except Exception as exc:  # noqa: BLE001 - handed to the caller in order, after the pages before it
            await ready.put((None, True, exc))

    producer = submit(produce())
    try:
        yield first
        started.wait()
        while True:
            page, last, error = wait(submit(ready.get()))  # type: ignore[union-attr]
            if error is not None:
                raise error
            yield page  # type: ignore[misc]
            if last:
                return
    finally:
        producer.cancel()  # nothing when it has finished; else the read ahead stops


# A task started with ensure_future runs only once this one awaits something that suspends, and each
# asyncio.sleep(0) lets it run to its next await. A page request passes ~4 of them (the adapter, httpx's
# middleware, httpcore's connection pool and anyio's checkpoints) before its body is written and it waits for
# the answer: yielding fewer times left it unsent until the page before it was converted (10 ms for 999 users),
# so nothing overlapped (bench/graph_paging at 100,000 users, load 5-6: connector 16.0-16.6 s yielding 0 times,
# 8.9-9.7 s yielding 10-40 times; raw 7.8 s). The bound leaves room; a request that goes to a thread (a token
# renewal) is simply sent after the conversion, as before.
HANDOFF_YIELDS = 16


async def _let_it_go_out() -> None:
    for _ in range(HANDOFF_YIELDS):
        await asyncio.sleep(0)


def wait(future: concurrent.futures.Future[T]) -> T:
    """The result of work handed to the loop; the work is cancelled if this thread is interrupted."""
    try:
        return future.result()
    except BaseException:
        if not future.done():
            future.cancel()  # e.g. KeyboardInterrupt or a job being stopped
        raise


# --------------------------------------------------------------------------------------------
# the private event loop


class _LoopThread:
    """One asyncio loop in a daemon thread; synchronous callers hand it coroutines."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.generation = 0  # bumped when the loop is replaced; clients bound to the old one are stale

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is not None and self._pid != os.getpid():
                # A fork (RQ's work horse) copies the loop object but not the thread that runs it.
                self._loop = self._thread = None
                self.generation += 1
            if self._loop is None:
                self._pid = os.getpid()
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=self._serve, args=(loop,), name=self._name, daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        loop.run_forever()

    def submit(self, coro: Awaitable[T]) -> concurrent.futures.Future[T]:
        if self._thread is not None and threading.current_thread() is self._thread:
            raise RuntimeError("the connector's own loop cannot wait for itself")
        return asyncio.run_coroutine_threadsafe(coro, self._ensure())  # type: ignore[arg-type]

    def run(self, coro: Awaitable[T]) -> T:
        return wait(self.submit(coro))

    @property
    def started(self) -> bool:
        return self._loop is not None

    def close(self, final: Callable[[], Awaitable[Any]] | None = None) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            # a page still being read ahead for an abandoned iteration ends here, not as a destroyed task
            asyncio.run_coroutine_threadsafe(_finish(final), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        with contextlib.suppress(Exception):
            loop.close()


async def _finish(final: Callable[[], Awaitable[Any]] | None) -> None:
    current = asyncio.current_task()
    others = [task for task in asyncio.all_tasks() if task is not current]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)
    if final is not None:
        await final()


# --------------------------------------------------------------------------------------------
# counting the calls made


@dataclass
class GraphCallStats:
    """HTTP requests this connector sent to Graph (retries and ``$batch`` posts each count once),
    the answers that were 429, and the items carried inside ``$batch`` posts."""

    requests: int = 0
    throttled: int = 0
    batch_items: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"requests": self.requests, "throttled": self.throttled, "batch_items": self.batch_items}


class _ReleasingClient(httpx.AsyncClient):
    """httpx links a response and its stream both ways (``response.stream`` wraps the transport's stream and
    points back at the response), so a response read in full, with the page it holds (MBs for a 999-user
    page), waits for the cyclic garbage collector. Once the body is read (the SDK never streams) the spent
    stream is dropped: reference counting then frees the response as soon as the SDK lets go of it, and
    :func:`portal.heap.growing_heap` can switch the collector off while a snapshot fills the heap."""

    async def send(self, request: httpx.Request, *, stream: bool = False, **kwargs: Any) -> httpx.Response:
        response = await super().send(request, stream=stream, **kwargs)
        if not stream:
            response.stream = _SPENT  # the content stays in the response; only the read stream goes
        return response


_SPENT = httpx.ByteStream(b"")


class _CountingTransport(httpx.AsyncBaseTransport):
    """Below the SDK's middleware, so every attempt the retry handler makes is counted."""

    def __init__(self, inner: httpx.AsyncBaseTransport, stats: GraphCallStats) -> None:
        self._inner = inner
        self._stats = stats

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._stats.requests += 1
        response = await self._inner.handle_async_request(request)
        if response.status_code == 429:
            self._stats.throttled += 1
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
