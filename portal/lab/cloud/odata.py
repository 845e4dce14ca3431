"""OData for Graph: the ``$filter`` parser (the subset Graph accepts on directory objects, reports and
audit logs) and the query options every Graph list shares (``$select``, ``$top``, ``$count``,
``$orderby``, ``$skiptoken`` paging with absolute ``@odata.nextLink``)."""

from __future__ import annotations

import functools
import json
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .api import ApiRequest, ApiResponse, RawItems
from .auth import _b64url, _b64url_decode
from .errors import graph_error
from .graph_schema import (
    _COLLECTIONS,
    _ODATA_TYPES,
    _TYPE_NAMES,
    CONTACT_DEFAULT,
    CONTACT_PROPERTIES,
    GROUP_BETA_ONLY,
    GROUP_DEFAULT,
    GROUP_PROPERTIES,
    USER_DEFAULT,
    USER_PROPERTIES,
)
from .store.common import UnsupportedQueryError, parse_datetime
from .store.query import And as AndCondition
from .store.query import AnyOf, Compare, Condition, In, Not, Or, Page, StringMatch

DEFAULT_PAGE = 100
MAX_PAGE = 999

# --------------------------------------------------------------------------------------------
# OData $filter parser (subset Graph accepts on directory objects, reports and audit logs)


class FilterSyntaxError(ValueError):
    def __init__(self, position: int) -> None:
        super().__init__(position)
        self.position = position


_FILTER_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>'(?:[^']|'')*')
  | (?P<dt>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?(?:Z|[+-]\d{2}:\d{2})?)?)(?![\w-])
  | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})
  | (?P<num>-?\d+(?:\.\d+)?)
  | (?P<path>[A-Za-z_@][A-Za-z0-9_@.]*(?:/[A-Za-z_@][A-Za-z0-9_@.]*)*)
  | (?P<punct>[(),:])
""", re.VERBOSE)

_COMPARE_OPS = {"eq", "ne", "gt", "ge", "lt", "le"}


@dataclass
class FilterInfo:
    condition: Condition
    advanced: set[str] = field(default_factory=set)  # features Graph only allows as advanced queries


class _FilterParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            match = _FILTER_TOKEN.match(text, pos)
            if not match:
                raise FilterSyntaxError(pos)
            kind = match.lastgroup or ""
            if kind != "ws":
                self.tokens.append((kind, match.group(), pos))
            pos = match.end()
        self.index = 0
        self.advanced: set[str] = set()

    def parse(self) -> FilterInfo:
        if not self.tokens:
            raise FilterSyntaxError(0)
        cond = self._or()
        if self.index != len(self.tokens):
            raise FilterSyntaxError(self.tokens[self.index][2])
        return FilterInfo(cond, self.advanced)

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _take(self) -> tuple[str, str, int]:
        token = self._peek()
        if token is None:
            raise FilterSyntaxError(len(self.text))
        self.index += 1
        return token

    def _expect(self, text: str) -> None:
        kind, value, pos = self._take()
        if value != text:
            raise FilterSyntaxError(pos)

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        if token and token[0] == "path" and token[1].lower() == word:
            self.index += 1
            return True
        return False

    def _or(self) -> Condition:
        items = [self._and()]
        while self._keyword("or"):
            items.append(self._and())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def _and(self) -> Condition:
        items = [self._unary()]
        while self._keyword("and"):
            items.append(self._unary())
        return items[0] if len(items) == 1 else AndCondition(tuple(items))

    def _unary(self) -> Condition:
        if self._keyword("not"):
            self.advanced.add("not")
            return Not(self._unary())
        return self._primary()

    def _primary(self) -> Condition:
        kind, value, pos = self._take()
        if value == "(":
            cond = self._or()
            self._expect(")")
            return cond
        if kind != "path":
            raise FilterSyntaxError(pos)
        nxt = self._peek()
        lowered = value.lower()
        if nxt and nxt[1] == "(" and lowered in {"startswith", "endswith", "contains"}:
            self.index += 1
            path = self._path()
            self._expect(",")
            literal = self._value()
            self._expect(")")
            if not isinstance(literal, str):
                raise FilterSyntaxError(pos)
            if lowered == "endswith":
                self.advanced.add("endsWith")
            if lowered == "contains":
                self.advanced.add("contains")
            return StringMatch(path, lowered, literal)  # type: ignore[arg-type]
        segments = tuple(value.split("/"))
        if nxt and nxt[1] == "(" and segments[-1].lower() in {"any", "all"} and len(segments) > 1:
            self.index += 1
            collection = segments[:-1]
            if self._peek() and self._peek()[1] == ")":  # type: ignore[index]
                self.index += 1
                return AnyOf(collection, "_", None)
            var_kind, variable, var_pos = self._take()
            if var_kind != "path" or "/" in variable:
                raise FilterSyntaxError(var_pos)
            self._expect(":")
            body = self._or()
            self._expect(")")
            if segments[-1].lower() == "all":
                return Not(AnyOf(collection, variable, Not(body)))
            return AnyOf(collection, variable, body)
        op_kind, op, op_pos = self._take()
        op = op.lower()
        if op_kind != "path" or op not in _COMPARE_OPS | {"in"}:
            raise FilterSyntaxError(op_pos)
        if op == "in":
            self._expect("(")
            values = [self._value()]
            while self._peek() and self._peek()[1] == ",":  # type: ignore[index]
                self.index += 1
                values.append(self._value())
            self._expect(")")
            return In(segments, tuple(values))
        if op == "ne":
            self.advanced.add("ne")
        return Compare(segments, op, self._value())  # type: ignore[arg-type]

    def _path(self) -> tuple[str, ...]:
        kind, value, pos = self._take()
        if kind != "path":
            raise FilterSyntaxError(pos)
        return tuple(value.split("/"))

    def _value(self) -> Any:
        kind, value, pos = self._take()
        if kind == "str":
            return value[1:-1].replace("''", "'")
        if kind == "dt":
            try:
                return parse_datetime(value)
            except ValueError as exc:
                raise FilterSyntaxError(pos) from exc
        if kind == "guid":
            return value.lower()
        if kind == "num":
            return float(value) if "." in value else int(value)
        if kind == "path" and value.lower() in {"true", "false", "null"}:
            return {"true": True, "false": False, "null": None}[value.lower()]
        raise FilterSyntaxError(pos)


def parse_filter(text: str) -> FilterInfo:
    return _FilterParser(text).parse()



class GraphQueryMixin:
    """Query options and paged collections for the Graph handlers; part of ``LabCloud``."""

    def _context(self, req: ApiRequest, fragment: str) -> str:
        return f"{req.base_url}/{req.version}/$metadata#{fragment}"

    def _top(self, req: ApiRequest) -> int:
        raw = req.param("$top")
        if raw is None:
            return DEFAULT_PAGE
        try:
            top = int(raw)
        except ValueError:
            raise graph_error(400, "BadRequest", f"Invalid value '{raw}' for $top query option found.", req) from None
        if not 1 <= top <= MAX_PAGE:
            raise graph_error(400, "Request_UnsupportedQuery",
                              f"Invalid page size specified: '{top}'. Must be between 1 and {MAX_PAGE} inclusive.", req)
        return top

    def _eventual(self, req: ApiRequest) -> bool:
        return req.headers.get("consistencylevel", "").lower() == "eventual"

    def _count_requested(self, req: ApiRequest) -> bool:
        raw = req.param("$count")
        if raw is None:
            return False
        if raw.lower() not in {"true", "false"}:
            raise graph_error(400, "BadRequest", f"Invalid value '{raw}' for $count query option found.", req)
        return raw.lower() == "true"

    def _filter(self, req: ApiRequest, *, directory: bool) -> Condition | None:
        raw = req.param("$filter")
        if raw is None:
            return None
        try:
            info = parse_filter(raw)
        except FilterSyntaxError as exc:
            raise graph_error(400, "BadRequest",
                              f"Invalid filter clause: Syntax error at position {exc.position} in '{raw}'.",
                              req) from None
        if directory and info.advanced and not self._eventual(req):
            feature = sorted(info.advanced)[0]
            # Graph's advanced-query refusal (same family as the "Raw count ... header is missing"
            # message quoted in azurekid/ScEntra#13).
            raise graph_error(400, "Request_UnsupportedQuery",
                              f"Operator '{feature}' is not supported because the 'ConsistencyLevel:eventual' header "
                              "is missing. Refer to https://aka.ms/graph-docs/advanced-queries for more information",
                              req)
        if "contains" in info.advanced and directory:
            raise graph_error(400, "Request_UnsupportedQuery", "Unsupported Query.", req)
        return info.condition

    def _order(self, req: ApiRequest) -> list[tuple[str, bool]]:
        raw = req.param("$orderby")
        if not raw:
            return []
        result = []
        for part in raw.split(","):
            words = part.split()
            if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in {"asc", "desc"}):
                raise graph_error(400, "BadRequest", f"Invalid $orderby clause: '{raw}'.", req)
            result.append((words[0], len(words) == 2 and words[1].lower() == "desc"))
        return result

    def _select(self, req: ApiRequest, kinds: Iterable[str]) -> list[str] | None:
        raw = req.param("$select")
        if raw is None or not raw.strip():
            return None
        wanted = [p.strip() for p in raw.split(",") if p.strip()]
        kinds = list(kinds)
        for prop in wanted:
            if prop == "*":
                continue
            if not any(prop in self._known_properties(kind, req.version) for kind in kinds):
                type_name = _TYPE_NAMES.get(kinds[0], "microsoft.graph.directoryObject") if len(kinds) == 1 else \
                    "microsoft.graph.directoryObject"
                # Graph's wording for an unknown $select property.
                raise graph_error(400, "BadRequest", "Parsing OData Select and Expand failed: Could not find a "
                                  f"property named '{prop}' on type '{type_name}'.", req)
        return wanted

    def _known_properties(self, kind: str, version: str) -> frozenset[str]:
        return _known_properties(kind, version)

    def _project(self, item: Mapping[str, Any], select: Sequence[str] | None, version: str,
                 odata_type: bool = False) -> dict[str, Any]:
        kind = item.get("@kind", "user")
        out: dict[str, Any] = {"@odata.type": _ODATA_TYPES[kind]} if odata_type else {}
        for name in _projected(kind, tuple(select) if select is not None else None, version):
            value = item.get(name)
            if value is None and name in _COLLECTIONS:
                value = []
            out[name] = value
        return out

    def _skiptoken(self, req: ApiRequest) -> str | None:
        raw = req.param("$skiptoken")
        if raw is None:
            return None
        try:
            data = json.loads(_b64url_decode(raw))
            return str(data["t"])
        except (ValueError, KeyError, TypeError):
            raise graph_error(400, "Request_BadRequest", "Invalid skip token.", req) from None

    def _next_link(self, req: ApiRequest, path: str, token: str | None) -> str | None:
        if token is None:
            return None
        encoded = _b64url(json.dumps({"t": token, "v": 1}).encode())
        params = [(k, v) for k, v in req.query if k.lower().lstrip("$") != "skiptoken"]
        params.append(("$skiptoken", encoded))
        query = "&".join(f"{urllib.parse.quote(k, safe='$')}={urllib.parse.quote(v, safe=chr(36) + ',()/:@')}"
                         for k, v in params)
        return f"{req.base_url}/{req.version}{path}?{query}"

    def _collection(self, req: ApiRequest, path: str, context: str, page: Page,
                    items: list[dict[str, Any]] | RawItems, count: bool) -> ApiResponse:
        body: dict[str, Any] = {"@odata.context": self._context(req, context)}
        if count:
            body["@odata.count"] = page.total
        next_link = self._next_link(req, path, page.next_token)
        if next_link:
            body["@odata.nextLink"] = next_link
        body["value"] = items
        return ApiResponse(200, body)

    def _store_query(self, req: ApiRequest, fn: Callable[[], Page]) -> Page:
        try:
            return fn()
        except UnsupportedQueryError as exc:
            raise graph_error(400, "Request_UnsupportedQuery",
                              f"Unsupported or invalid query filter clause specified for property "
                              f"'{exc.property_name}' of resource '{exc.resource}'.", req) from None
        except ValueError:
            raise graph_error(400, "Request_BadRequest", "Invalid skip token.", req) from None

    # -- directory object listings

    def _list_kind(self, req: ApiRequest, kind: str) -> ApiResponse:
        self._require_read(req, kind)
        select = self._select(req, [kind])
        where = self._filter(req, directory=True)
        order = self._order(req)
        count = self._count_requested(req)
        if count and not self._eventual(req):
            raise graph_error(400, "Request_BadRequest", "$count is not currently supported.", req)
        if order and where is not None and not self._eventual(req):
            raise graph_error(400, "Request_UnsupportedQuery",
                              "Sorting not supported for current query. Use 'ConsistencyLevel:eventual' header.", req)
        top = self._top(req)
        token = self._skiptoken(req)
        page = self._store_query(req, lambda: self.store.list_objects(
            kind=kind, where=where, order_by=order, limit=top, token=token, with_total=count))  # type: ignore[arg-type]
        items = [self._project(item, select, req.version) for item in page.items]
        name = {"user": "users", "group": "groups", "contact": "contacts"}[kind]
        context = f"{name}({','.join(select)})" if select else name
        return self._collection(req, f"/{name}", context, page, items, count)

    def _count_kind(self, req: ApiRequest, kind: str) -> ApiResponse:
        self._require_read(req, kind)
        if not self._eventual(req):
            raise graph_error(400, "Request_UnsupportedQuery",
                              "Raw count (/$count) is not supported because the 'ConsistencyLevel:eventual' header is "
                              "missing. Refer to https://aka.ms/graph-docs/advanced-queries for more information", req)
        where = self._filter(req, directory=True)
        total = self._store_query(req, lambda: self.store.list_objects(
            kind=kind, where=where, limit=1, with_total=True)).total  # type: ignore[arg-type]
        return ApiResponse(200, str(total or 0), content_type="text/plain")

    def _require_read(self, req: ApiRequest, kind: str) -> None:
        roles = {"user": ("User.Read.All", "User.ReadWrite.All"), "group": ("Group.Read.All", "Group.ReadWrite.All"),
                 "contact": ("OrgContact.Read.All",)}.get(kind, ())
        self._require(req, "Directory.Read.All", "Directory.ReadWrite.All", *roles)

    def _object_or_404(self, req: ApiRequest, ident: str, kind: str | None) -> dict[str, Any]:
        if kind == "user":
            item = self.store.get_user(id_or_upn=ident)
        else:
            item = self.store.get_object(object_id=ident, kind=kind)  # type: ignore[arg-type]
        if item is None:
            raise graph_error(404, "Request_ResourceNotFound",
                              f"Resource '{ident}' does not exist or one of its queried reference-property objects "
                              "are not present.", req)
        return item


def _known_properties(kind: str, version: str) -> frozenset[str]:
    if kind == "user":
        return USER_PROPERTIES
    if kind == "group":
        return GROUP_PROPERTIES | (GROUP_BETA_ONLY if version == "beta" else frozenset())
    return CONTACT_PROPERTIES


@functools.lru_cache(maxsize=512)
def _projected(kind: str, select: tuple[str, ...] | None, version: str) -> tuple[str, ...]:
    """The properties a listing answers for each object of ``kind``: worked out once per query shape, not
    once per object of a 999-object page."""
    if select is None or "*" in select:
        names: Sequence[str] = {"user": USER_DEFAULT, "group": GROUP_DEFAULT, "contact": CONTACT_DEFAULT}[kind]
        if kind == "group" and version == "beta":
            names = (*names, "writebackConfiguration")
    else:
        names = select
    known = _known_properties(kind, version)
    return tuple(name for name in names
                 if name in known and not (kind == "group" and name in GROUP_BETA_ONLY and version != "beta"))
