"""Full garbage collections held back while a job builds a large heap it keeps (a snapshot of 100,000 users).

CPython's cyclic collector runs a full collection whenever the objects that outlived the younger collections
have grown by a quarter of the heap, so a job reading a whole tenant into memory walks everything it already
holds again and again as it grows. Converting and classifying a 20,000-user tenant's users, report rows and
55,000 audit events spent about half its CPU there (bench/mfa_snapshot, December 2026). Inside
:func:`growing_heap` the young generations are still collected, so the short-lived cycles of the HTTP client
and the event loop are freed as before; only the full collections wait for the end.

:func:`frozen_heap` is for a job that streams (the address scan reads 100,000 objects page by page) and must go on
freeing its cycles: what the process already holds when it starts (Django, every module, the job's inputs) is
left out of every collection for the block, so a full collection walks only what the job made since. The
address scan's read alone spent ~38 us of CPU per object in full collections walking that (bench/address_scan,
lab, 15,000 objects), ~3 us with it frozen.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] | None = None
FULL_COLLECTION_HELD = 1_000_000  # collections of the middle generation before a full one: never, within a job


@contextlib.contextmanager
def growing_heap() -> Iterator[None]:
    """Hold back full collections for the block; nests, and is safe to enter from several threads (the
    thresholds are the process's: the first to enter saves them, the last to leave restores them)."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(_saved[0], _saved[1], FULL_COLLECTION_HELD)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None


_frozen_depth = 0


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Leave what the process holds now out of the collector's walks for the block (gc.freeze: the permanent
    generation), and hand it back afterwards (gc.unfreeze: the oldest generation). A cycle among those objects that
    becomes garbage inside is freed after the block. Nests, and is safe to enter from several threads (the first
    to enter freezes, the last to leave unfreezes)."""
    global _frozen_depth
    with _lock:
        if _frozen_depth == 0:
            gc.freeze()
        _frozen_depth += 1
    try:
        yield
    finally:
        with _lock:
            _frozen_depth -= 1
            if _frozen_depth == 0:
                gc.unfreeze()
