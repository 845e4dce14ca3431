"""Making frozen dataclasses in bulk: a snapshot or a scan makes hundreds of thousands of them."""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any, TypeVar

F = TypeVar("F")


def frozen_instance(cls: type[F], /, **values: Any) -> F:
    """``cls(**values)`` for a frozen dataclass without ``__post_init__``.

    A frozen dataclass's ``__init__`` assigns every field through ``object.__setattr__``: for a user's 18
    fields that costs more than reading the user from JSON, seconds for a 100,000-user listing. With every
    field given, filling the instance's ``__dict__`` makes the same object; otherwise (a field missing or
    unknown) the real constructor runs, with its defaults and its errors.
    """
    if values.keys() != _field_names(cls):
        return cls(**values)
    made = object.__new__(cls)
    made.__dict__.update(values)
    return made


@cache
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))
