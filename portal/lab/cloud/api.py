"""The lab cloud's request/response model, independent of Starlette so that ``$batch`` reuses the same
handlers, and the shape of a Graph route."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SyncRunner = Callable[[str], dict]
OnPremRunner = Callable[[str, dict], dict]

# --------------------------------------------------------------------------------------------
# request / response model, independent of Starlette so that $batch reuses the same handlers


@dataclass
class ApiRequest:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    base_url: str
    claims: dict[str, Any] | None = None
    version: str = "v1.0"

    def param(self, name: str) -> str | None:
        """A query option; Graph accepts them with or without ``$`` (and case-insensitively)."""
        wanted = {name.lower(), name.lower().lstrip("$")}
        for key, value in self.query:
            if key.lower() in wanted:
                return value
        return None

    def json(self) -> Any:
        if not self.body:
            return None
        return json.loads(self.body)


@dataclass
class ApiResponse:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None


class ApiError(Exception):
    """Raised by handlers; carries the ready response."""

    def __init__(self, response: ApiResponse) -> None:
        super().__init__(response.status)
        self.response = response



@dataclass(frozen=True)
class _Route:
    methods: frozenset[str]
    pattern: re.Pattern[str]
    handler: Callable[[ApiRequest, re.Match[str]], ApiResponse]
