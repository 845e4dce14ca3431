"""The hash an approval pins: a change that runs re-computes it and refuses when the plan moved."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def plan_hash(plan: Any) -> str:
    """SHA-256 of the plan's canonical JSON (sorted keys, no spaces): the same plan gives the same hash."""
    return hashlib.sha256(json.dumps(plan, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
