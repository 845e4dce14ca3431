"""Keeps secrets out of job logs: a line is redacted before it is stored or printed."""

from __future__ import annotations

import re
from typing import Any

MASK = "********"
_SECRET_KEYS = re.compile(r"(pass(word|wd)?|secret|token|credential|private[_-]?key|api[_-]?key)", re.I)
_INLINE = [
    # key=value and "key": "value" forms, as connection strings and JSON bodies print them
    re.compile(r"(?P<k>\b[\w-]*(?:password|passwd|secret|token|apikey|api_key)[\w-]*\b[\"']?\s*[=:]\s*)"
               r"(?P<q>[\"']?)[^\s\"',;&]+", re.I),
    re.compile(r"(?P<k>\bBearer\s+)(?P<q>)[A-Za-z0-9\-._~+/]+=*", re.I),
    re.compile(r"(?P<k>-----BEGIN [A-Z ]*PRIVATE KEY-----)(?P<q>)[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
]
_known_values: set[str] = set()


def register_secret(value: str | None) -> None:
    """Values read from the environment or files; any later appearance in a log line is masked."""
    if value and len(value) >= 4:
        _known_values.add(value)


def redact(text: str) -> str:
    for value in _known_values:
        if value in text:
            text = text.replace(value, MASK)
    for pattern in _INLINE:
        text = pattern.sub(lambda m: f"{m.group('k')}{m.group('q')}{MASK}", text)
    return text


def redact_data(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: (MASK if isinstance(k, str) and _SECRET_KEYS.search(k) else redact_data(v)) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact_data(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value
