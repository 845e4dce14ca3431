"""The cyclic garbage collector is off while a job builds a large heap, and back as found afterwards, whatever
happened inside (portal/heap.py); a Graph response read in full is freed without it (the connector breaks the
httpx response/stream cycle that held each page); a frozen heap is left out of collections and handed back."""

from __future__ import annotations

import gc
import threading

import httpx
import pytest

from portal.heap import frozen_heap, growing_heap


@pytest.fixture
def collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_the_collector_is_off_inside_and_back_after_nesting_and_errors(collector_on) -> None:
    with growing_heap():
        assert not gc.isenabled()
        with growing_heap():
            pass
        assert not gc.isenabled()  # the inner block left the outer one's setting
        with pytest.raises(RuntimeError, match="the job failed"), growing_heap():
            raise RuntimeError("the job failed")
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_switched_off_before_stays_off() -> None:
    was = gc.isenabled()
    gc.disable()
    try:
        with growing_heap():
            pass
        assert not gc.isenabled()
    finally:
        if was:
            gc.enable()


def test_threads_overlapping_leave_the_collector_as_found(collector_on) -> None:
    entered, release = threading.Event(), threading.Event()

    def job() -> None:
        with growing_heap():
            entered.set()
            release.wait(5)

    thread = threading.Thread(target=job)
    thread.start()
    entered.wait(5)
    with growing_heap():
        pass
    assert not gc.isenabled()  # the other job is still inside
    release.set()
    thread.join(5)
    assert gc.isenabled()


def test_graph_responses_read_in_full_leave_no_cycle_holding_their_page() -> None:
    from tests.unit.test_graph_paging import paged

    client, _ = paged(5, per_page=200)
    with client:
        list(client.iter_users(select=["id"]))  # warm: token, connection pool
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            with growing_heap():
                ids = [u.id for u in client.iter_users(select=["id"])]
            gc.collect()
            left = [o for o in gc.garbage if isinstance(o, httpx.Response)]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
    assert len(ids) == 1_000 and left == []


def test_a_frozen_heap_is_left_out_of_collections_inside_and_handed_back_after() -> None:
    held = [[] for _ in range(1000)]
    frozen_before = gc.get_freeze_count()
    with frozen_heap():
        assert gc.get_freeze_count() >= frozen_before + len(held)
        with frozen_heap():
            pass
        assert gc.get_freeze_count() >= frozen_before + len(held)  # the inner block left it frozen
        garbage: list = []
        garbage.append(garbage)  # made inside: still collected
        del garbage
        assert gc.collect() >= 1
        with pytest.raises(RuntimeError, match="the job failed"), frozen_heap():
            raise RuntimeError("the job failed")
    assert gc.get_freeze_count() == 0
    assert held


def test_what_a_growing_heap_made_leaves_the_young_generation_so_no_young_collection_walks_it(collector_on) -> None:
    with growing_heap():
        kept = [[n] for n in range(20_000)]
    young = {id(o) for o in gc.get_objects(generation=0)} | {id(o) for o in gc.get_objects(generation=1)}
    assert not any(id(o) in young for o in kept)
    assert {id(o) for o in gc.get_objects(generation=2)} >= {id(o) for o in kept[:100]}
    assert gc.get_freeze_count() == 0 and gc.isenabled()


def test_a_growing_heap_ending_inside_a_frozen_heap_leaves_it_frozen(collector_on) -> None:
    with frozen_heap():
        frozen = gc.get_freeze_count()
        with growing_heap():
            made = [[n] for n in range(1000)]
        assert gc.get_freeze_count() == frozen and gc.isenabled()
    assert made and gc.get_freeze_count() == 0
