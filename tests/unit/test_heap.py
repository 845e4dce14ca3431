"""Full garbage collections are held back while a job builds a large heap, and the process's thresholds come
back afterwards, whatever happened inside (portal/heap.py)."""

from __future__ import annotations

import gc
import threading

import pytest

from portal.heap import growing_heap


def test_full_collections_wait_inside_and_the_thresholds_come_back_after_nesting_and_errors() -> None:
    before = gc.get_threshold()
    with growing_heap():
        inside = gc.get_threshold()
        assert inside[:2] == before[:2] and inside[2] >= 1000 * before[2]
        with growing_heap():
            pass
        assert gc.get_threshold() == inside  # the inner block left the outer one's setting
        with pytest.raises(RuntimeError, match="the job failed"), growing_heap():
            raise RuntimeError("the job failed")
        assert gc.get_threshold() == inside
    assert gc.get_threshold() == before


def test_young_generations_are_still_collected_inside() -> None:
    collected: list[int] = []

    def seen(phase: str, info: dict) -> None:
        if phase == "stop":
            collected.append(info["generation"])

    gc.callbacks.append(seen)
    try:
        with growing_heap():
            for _ in range(50_000):
                a: list = []
                a.append(a)  # a cycle only the collector frees
    finally:
        gc.callbacks.remove(seen)
    assert collected and 2 not in collected


def test_threads_overlapping_leave_the_thresholds_as_found() -> None:
    before = gc.get_threshold()
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
    assert gc.get_threshold()[2] > before[2]  # the other job is still inside
    release.set()
    thread.join(5)
    assert gc.get_threshold() == before


def test_a_frozen_heap_is_left_out_of_collections_inside_and_handed_back_after() -> None:
    from portal.heap import frozen_heap

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
