"""Export helpers every diagnostics area shares."""

from __future__ import annotations

from typing import Any


def safe_cell(value: Any) -> Any:
    """A spreadsheet runs a cell starting with = + - @ (or a tab / CR) as a formula; directory data is untrusted."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
