"""Reads made once and answered from memory after: what is the same for every list of a batch.

The batch preflight judges all its lists with one read of each (``batch_preflight``); a batch's run reads
the organisation's settings once per batch (:func:`batch_memo`, in Redis) instead of once per list.
"""

from __future__ import annotations

import dataclasses
import pickle
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import Connectors

# What a list's run may take from an earlier list of its batch: the organisation's settings, not the state of
# any recipient (lists of the batch migrate meanwhile).
RUN_SHARED_READS = {
    "exchange": ("get_accepted_domains", "get_outbound_connectors"),
    "sync": ("in_scope", "server_version"),
}
_BATCH_MEMO_SECONDS = 12 * 3600  # a batch's run window at most; the memory goes with it


class _BatchMemo:
    """One batch's answers in Redis, shared by every worker (each job runs in a forked work horse, so a
    process's memory would not outlive one list). Only answers are kept, never an error."""

    def __init__(self, batch_id: int, label: str) -> None:
        self._key = f"dl-batch:{batch_id}:reads:{label}"

    @staticmethod
    def _redis() -> Any:
        import django_rq

        return django_rq.get_connection("default")

    def __contains__(self, key: tuple) -> bool:
        return bool(self._redis().hexists(self._key, repr(key)))

    def __getitem__(self, key: tuple) -> tuple[bool, Any]:
        raw = self._redis().hget(self._key, repr(key))
        if raw is None:
            raise KeyError(key)
        return True, pickle.loads(raw)  # noqa: S301 - written by this module into the portal's own Redis

    def __setitem__(self, key: tuple, value: tuple[bool, Any]) -> None:
        ok, answer = value
        if ok:
            redis = self._redis()
            redis.hset(self._key, repr(key), pickle.dumps(answer))
            redis.expire(self._key, _BATCH_MEMO_SECONDS)


class ReadOnce:
    """Answers a repeated read from memory. ``remember_errors``: an exception is remembered too (it would be
    raised again by a read made at the same moment); otherwise the next call reads again."""

    def __init__(self, target: Any, methods: tuple[str, ...], counter: Counter, label: str, *,
                 memo: dict | None = None, remember_errors: bool = True) -> None:
        self._target, self._methods, self._counter, self._label = target, methods, counter, label
        self._memo: Any = {} if memo is None else memo
        self._remember_errors = remember_errors

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if name not in self._methods:
            return attr

        def once(*args: Any, **kwargs: Any) -> Any:
            key = (name, args, tuple(sorted(kwargs.items())))
            if key not in self._memo:
                self._counter[f"{self._label}.{name}"] += 1
                try:
                    result = (True, attr(*args, **kwargs))
                except Exception as exc:
                    if not self._remember_errors:
                        raise
                    result = (False, exc)
                self._memo[key] = result
            ok, value = self._memo[key]
            if not ok:
                raise value
            return value

        return once


def shared(c: Connectors, reads: dict[str, tuple[str, ...]], *, counter: Counter | None = None,
           memos: dict[str, Any] | None = None, remember_errors: bool = True) -> Connectors:
    counter = Counter() if counter is None else counter
    return dataclasses.replace(c, **{
        label: ReadOnce(getattr(c, label), methods, counter, label, remember_errors=remember_errors,
                        memo=None if memos is None else memos.setdefault(label, {}))
        for label, methods in reads.items()})


def batch_memo(batch_id: int) -> dict[str, Any]:
    """The batch's shared reads, remembered for all its workers."""
    return {label: _BatchMemo(batch_id, label) for label in RUN_SHARED_READS}


def wave_memo(batch_id: int, round_number: int) -> _BatchMemo:
    """What one wave's read of its lists' twins found (after its delta sync), for every worker of the batch."""
    return _BatchMemo(batch_id, f"round-{round_number}-twins")


def for_run(c: Connectors, memos: dict[str, Any] | None) -> Connectors:
    """The connectors a list's run reads through: a batch list's take the organisation's settings from memory."""
    if memos is None:
        return c
    return shared(c, RUN_SHARED_READS, memos=memos, remember_errors=False)
