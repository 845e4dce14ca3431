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
collected by the first full collection after the block.

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
_was_enabled = False


@contextlib.contextmanager
def growing_heap() -> Iterator[None]:
    """Switch the cyclic collector off for the block; nests, and is safe to enter from several threads (the
    collector is the process's: the first to enter switches it off, the last to leave puts it back as found).

    What the block made is kept (that is why it ran without the collector), yet all of it is still in the youngest
    generation when the block ends: the first young collection after it walked the whole heap, 1.4 s of a
    100,000-user snapshot. Leaving, the block moves it to the oldest generation in one step (gc.freeze, then
    gc.unfreeze: each a list splice), unless a :func:`frozen_heap` block is open (unfreezing would end it)."""
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
                if _frozen_depth == 0:
                    gc.freeze()
                    gc.unfreeze()
                gc.enable()


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
