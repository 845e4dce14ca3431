"""The garbage collector switched off while a job builds a large heap it keeps (a snapshot of 100,000 users).

CPython's cyclic collector walks every container object it tracks: young ones every 700 allocations, and the
survivors again as they age. A job reading a whole tenant into memory allocates millions of such objects (each
JSON object and list of 350 MB of Graph pages, each converted user and event) and keeps most of them, so it
paid for walks that never free anything: first the full collections (about half of a 20,000-user snapshot's
CPU, December 2026), then, with those held back, the young and middle ones (about a fifth more, measured on a
replay of the same pages; collecting young objects more rarely walks each as often and saves nothing).

Inside :func:`growing_heap` the collector is off. Reference counting still frees everything that is not in a
cycle. The cycle that mattered is broken where it is made: every httpx response and its stream pointed at each
other, holding the page read (``connectors.graph.transport._ReleasingClient`` drops the spent stream). What
cyclic garbage is left (a few hundred objects per snapshot: exception tracebacks, closed connections) is
collected after the block, when the collector is back on.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextlib.contextmanager
def growing_heap() -> Iterator[None]:
    """Switch the cyclic collector off for the block; nests, and is safe to enter from several threads (the
    collector is the process's: the first to enter switches it off, the last to leave puts it back as found)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
