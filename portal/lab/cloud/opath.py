"""Exchange OPATH (``-Filter``) subset: parse and match, as the lab's Exchange cmdlets use it."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# --------------------------------------------------------------------------------------------
# Exchange OPATH (-Filter) subset


class OpathError(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


_OPATH_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<var>\$(?:true|false|null))
  | (?P<op>-(?:and|or|not|eq|ne|like|notlike|gt|ge|lt|le|ceq|clike)\b)
  | (?P<punct>[()])
  | (?P<word>[^\s()'"]+)
""", re.VERBOSE | re.IGNORECASE)


@dataclass(frozen=True)
class _OpathTerm:
    prop: str
    op: str
    value: Any


@dataclass(frozen=True)
class _OpathBool:
    op: str  # and | or
    left: Any
    right: Any


@dataclass(frozen=True)
class _OpathNot:
    item: Any


def parse_opath(text: str, *, known: Callable[[str], str | None]) -> Any:
    """Parse an OPATH filter. ``-and`` and ``-or`` have equal precedence and group left to right,
    as PowerShell's operators do; parentheses decide otherwise. ``known`` maps a property name
    (any case) to its canonical name, or None when it is not filterable."""
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        match = _OPATH_TOKEN.match(text, pos)
        if not match:
            raise OpathError(_opath_syntax(text, pos))
        if match.lastgroup != "ws":
            tokens.append((match.lastgroup or "", match.group(), pos))
        pos = match.end()
    index = 0

    def peek() -> tuple[str, str, int] | None:
        return tokens[index] if index < len(tokens) else None

    def take() -> tuple[str, str, int]:
        nonlocal index
        if index >= len(tokens):
            raise OpathError(_opath_syntax(text, len(text)))
        index += 1
        return tokens[index - 1]

    def expression() -> Any:
        left = unary()
        while (tok := peek()) and tok[0] == "op" and tok[1].lower() in {"-and", "-or"}:
            take()
            left = _OpathBool(tok[1].lower()[1:], left, unary())
        return left

    def unary() -> Any:
        tok = peek()
        if tok and tok[0] == "op" and tok[1].lower() == "-not":
            take()
            return _OpathNot(unary())
        return primary()

    def primary() -> Any:
        kind, value, at = take()
        if value == "(":
            inner = expression()
            kind2, value2, at2 = take()
            if value2 != ")":
                raise OpathError(_opath_syntax(text, at2))
            return inner
        if kind != "word":
            raise OpathError(_opath_syntax(text, at))
        canonical = known(value)
        if canonical is None:
            raise OpathError(
                f'Cannot bind parameter \'Filter\' to the target. Exception setting "Filter": "\"{value}\" is not a '
                'recognized filterable property. For a description of the filterable properties see the command '
                f'help.\n"{text}" at position {at + 1}."'
            )
        op_kind, op, op_at = take()
        if op_kind != "op" or op.lower() in {"-and", "-or", "-not"}:
            raise OpathError(_opath_syntax(text, op_at))
        val_kind, raw, _val_at = take()
        if val_kind == "str":
            literal: Any = raw[1:-1].replace(raw[0] * 2, raw[0])
        elif val_kind == "var":
            literal = {"$true": True, "$false": False, "$null": None}[raw.lower()]
        elif val_kind == "word":
            literal = raw
        else:
            raise OpathError(_opath_syntax(text, _val_at))
        return _OpathTerm(canonical, op.lower().lstrip("-").replace("ceq", "eq").replace("clike", "like"), literal)

    if not tokens:
        raise OpathError(_opath_syntax(text, 0))
    tree = expression()
    if index != len(tokens):
        raise OpathError(_opath_syntax(text, tokens[index][2]))
    return tree


def _opath_syntax(text: str, position: int) -> str:
    # Exchange's wording for an unparsable -Filter (ParameterBindingException around the OPATH parser).
    return ('Cannot bind parameter \'Filter\' to the target. Exception setting "Filter": "Invalid filter syntax. '
            f'For a description of the filter parameter syntax see the command help.\n"{text}" at position '
            f'{position + 1}."')


def _opath_match(tree: Any, get: Callable[[str], Any]) -> bool:
    if isinstance(tree, _OpathBool):
        if tree.op == "and":
            return _opath_match(tree.left, get) and _opath_match(tree.right, get)
        return _opath_match(tree.left, get) or _opath_match(tree.right, get)
    if isinstance(tree, _OpathNot):
        return not _opath_match(tree.item, get)
    term: _OpathTerm = tree
    actual = get(term.prop)
    values = actual if isinstance(actual, list) else [actual]
    if term.value is None:
        empty = actual is None or actual == "" or actual == []
        return empty if term.op == "eq" else not empty if term.op == "ne" else False

    def one(candidate: Any) -> bool:
        if candidate is None:
            return False
        if isinstance(candidate, bool) or isinstance(term.value, bool):
            left = str(candidate).lower()
            right = str(term.value).lower().lstrip("$")
            return _cmp(left, right, term.op)
        return _cmp(str(candidate).lower(), str(term.value).lower(), term.op)

    if term.op in {"ne", "notlike"}:
        positive = "eq" if term.op == "ne" else "like"
        return not any(_cmp(str(v).lower(), str(term.value).lower(), positive) for v in values if v is not None)
    return any(one(v) for v in values)


def _cmp(left: str, right: str, op: str) -> bool:
    if op == "eq":
        return left == right
    if op == "like":
        return fnmatch.fnmatchcase(left, right.replace("[", "[[]"))
    if op == "gt":
        return left > right
    if op == "ge":
        return left >= right
    if op == "lt":
        return left < right
    if op == "le":
        return left <= right
    return False
