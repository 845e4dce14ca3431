"""Full garbage collections held back while a job builds a large heap it keeps (a snapshot of 100,000 users).

CPython's cyclic collector runs a full collection whenever the objects that outlived the younger collections
have grown by a quarter of the heap, so a job reading a whole tenant into memory walks everything it already
holds again and again as it grows. Converting and classifying a 20,000-user tenant's users, report rows and
55,000 audit events spent about half its CPU there (bench/mfa_snapshot, December 2026). Inside
:func:`growing_heap` only the youngest generation is collected, every ``YOUNG_COLLECTION_EVERY`` allocations
rather than every 700: the short-lived cycles of the HTTP client and the event loop (an httpx response and its
streams, about one per request, holding the page it read) are still freed, and each object the job keeps is
walked once, not again by the middle generation's collections (a fifth of the 20,000-user snapshot's CPU
went to those young and middle collections; switching the collector off saves it all but keeps every
response's page until the end). The other generations wait for the end.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] | None = None
HELD = 1_000_000  # collections of the younger generation before an older one: never, within a job
YOUNG_COLLECTION_EVERY = 50_000  # allocations (net of deallocations) of container objects


@contextlib.contextmanager
def growing_heap() -> Iterator[None]:
    """Hold back all but rare young collections for the block; nests, and is safe to enter from several threads (the
    thresholds are the process's: the first to enter saves them, the last to leave restores them)."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(YOUNG_COLLECTION_EVERY, HELD, HELD)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None
