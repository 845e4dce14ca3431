"""The lab cloud's request/response model, independent of Starlette so that ``$batch`` reuses the same
handlers, and the shape of a Graph route."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

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


class RawItems:
    """A listing's items as the JSON texts the store holds (Graph's shape already): the answer splices them
    in (:func:`encode_json`) instead of decoding every stored object and encoding it again, page after page."""

    __slots__ = ("texts",)

    def __init__(self, texts: Sequence[str]) -> None:
        self.texts = texts

    def decoded(self) -> list[Any]:
        return [json.loads(text) for text in self.texts]


def encode_json(body: Any) -> bytes:
    """A response body as compact UTF-8 JSON, :class:`RawItems` spliced in as arrays of their texts.

    Each RawItems is first written as a string naming it with a per-answer random nonce (no directory
    value can spell it by chance), then every such string is replaced by its array in one pass. orjson, not
    the standard library: a 100,000-user tenant's listings are hundreds of MB a snapshot, and encoding them
    was a fifth of the lab's CPU (bench/mfa_snapshot). Datetimes still go to ``default`` and are refused, as
    the standard library refused them: a handler must write Graph's own time format.
    """
    raws: list[RawItems] = []
    nonce = secrets.token_hex(8)

    def placeholder(value: Any) -> str:
        if not isinstance(value, RawItems):
            raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
        raws.append(value)
        return f"@raw:{nonce}:{len(raws) - 1}"

    data = orjson.dumps(body, default=placeholder, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME)
    if not raws:
        return data
    return re.sub(b'"@raw:' + nonce.encode() + rb':(\d+)"',
                  lambda found: ("[" + ",".join(raws[int(found[1])].texts) + "]").encode(), data)


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
