"""Figures of a stored record whose rows never change once it is stored (an MFA snapshot, a complete address scan):
computed once per process and kept in the cache under the record's identity, so that nothing has to invalidate them.
The key carries the record's creation time besides its primary key, so that a reused primary key (a test database
rolled back) never meets another record's figures."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache import cache
from django.db.models import Model, QuerySet

# Nothing invalidates these figures; the timeout only bounds how long a process keeps them.
FIGURE_CACHE_SECONDS = 6 * 3600
T = TypeVar("T")


def cached_figure(owner: Model, what: str, compute: Callable[[], T]) -> T:
    created = getattr(owner, "created_at", None)
    key = f"figure:{owner._meta.label_lower}:{owner.pk}:{created.isoformat() if created else ''}:{what}"
    value = cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, FIGURE_CACHE_SECONDS)
    return value


def filtered_count(owner: Model, *, rows: QuerySet, filters: dict[str, Any] | None) -> int | None:
    """How many of the owner's rows a page's filters keep, counted once per owner and filter (None when the filters
    did not validate: the paginator counts as it always did)."""
    if filters is None:
        return None
    used = json.dumps({k: v for k, v in filters.items() if v not in (None, "", [])}, sort_keys=True, default=str)
    return cached_figure(owner, f"count:{hashlib.sha256(used.encode()).hexdigest()[:32]}", rows.count)
