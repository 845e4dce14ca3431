"""The lab's one OPATH reader: Exchange's ``-Filter``/``-RecipientFilter`` language, for the lab cloud's
Exchange Online cmdlets and the lab's Exchange on-premises alike.

One tree (:class:`OpathTerm`, :class:`OpathBool`, :class:`OpathNot`), one parser. What the two Exchanges
differ in (the quotes and operators each accepts, the script-block form, their error wording) is a
:class:`Dialect`; the caller resolves property names (``resolve``), so each keeps its own filterable
properties. :func:`matches` evaluates a tree against a record (the lab cloud filters its stored
recipients with it); :func:`render` writes Exchange's normal form (the on-premises side renders stored
filters back). Translation to and from LDAP stays with the on-premises side that needs it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CLOUD", "ONPREM", "Dialect", "OpathBool", "OpathError", "OpathNode", "OpathNot", "OpathTerm", "matches",
    "parse_opath", "render",
]


@dataclass(frozen=True)
class OpathTerm:
    prop: str  # the canonical name the resolver gave
    op: str  # eq ne like notlike gt ge lt le
    value: Any  # str | bool | None


@dataclass(frozen=True)
class OpathBool:
    op: str  # and | or
    items: tuple[Any, ...]  # a run of the same operator is one node


@dataclass(frozen=True)
class OpathNot:
    item: Any


OpathNode = OpathTerm | OpathBool | OpathNot


class OpathError(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Dialect:
    """What one Exchange's OPATH reader accepts and how it words a refusal."""

    token: re.Pattern[str]
    operators: Mapping[str, str]  # the operator as written (lower case, with its dash) -> the tree's operator
    unquote: Callable[[str], str]  # a quoted token -> its text
    script_block: bool  # ``{ ... }`` accepted around the filter (the text is stripped first)
    syntax: Callable[[str, int], str]  # (filter, position) -> the unparsable-filter message
    unknown: Callable[[str, str, int], str]  # (name, filter, position) -> the unknown-property message
    paren_at_open: bool  # an unclosed "(" is reported where it opens, not where the parser stopped


_COMPARISONS = ("eq", "ne", "like", "notlike", "gt", "ge", "lt", "le")


def _cloud_syntax(text: str, position: int) -> str:
    # Exchange's wording for an unparsable -Filter (ParameterBindingException around the OPATH parser).
    return ('Cannot bind parameter \'Filter\' to the target. Exception setting "Filter": "Invalid filter syntax. '
            f'For a description of the filter parameter syntax see the command help.\n"{text}" at position '
            f'{position + 1}."')


def _cloud_unknown(name: str, text: str, position: int) -> str:
    return (f'Cannot bind parameter \'Filter\' to the target. Exception setting "Filter": "\"{name}\" is not a '
            'recognized filterable property. For a description of the filterable properties see the command '
            f'help.\n"{text}" at position {position + 1}."')


def _onprem_syntax(text: str, position: int) -> str:
    # the caller wraps it in the binding error of its parameter (-Filter or -RecipientFilter)
    return ("Invalid filter syntax. For a description of the filter parameter syntax see the command help.\n"
            f'"{text}" at position {position + 1}.')


def _onprem_unknown(name: str, text: str, position: int) -> str:
    return (f'"{name}" is not a recognized filterable property. For a description of the '
            f'filterable properties see the command help.\n"{text}" at position {position + 1}.')


def _onprem_unquote(raw: str) -> str:
    inner = raw[1:-1]
    return re.sub(r"(['\u2018\u2019])\1", r"\1", inner) if raw[0] != '"' else inner.replace('""', '"')


# The lab cloud's Exchange Online: -ceq/-clike (compared as -eq/-like), straight quotes only.
CLOUD = Dialect(
    token=re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<var>\$(?:true|false|null))
  | (?P<op>-(?:and|or|not|eq|ne|like|notlike|gt|ge|lt|le|ceq|clike)\b)
  | (?P<punct>[()])
  | (?P<word>[^\s()'"]+)
""", re.VERBOSE | re.IGNORECASE),
    operators={**{f"-{op}": op for op in _COMPARISONS}, "-ceq": "eq", "-clike": "like"},
    unquote=lambda raw: raw[1:-1].replace(raw[0] * 2, raw[0]),
    script_block=False, syntax=_cloud_syntax, unknown=_cloud_unknown, paren_at_open=False,
)

# The lab's Exchange on-premises: PowerShell's curly single quotes, the -i operators, { ... }.
ONPREM = Dialect(
    token=re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>'(?:[^'\u2018\u2019]|['\u2018\u2019]{2})*'|"(?:[^"]|"")*")
  | (?P<var>\$(?:true|false|null)\b)
  | (?P<op>-(?:and|or|not|eq|ne|like|notlike|gt|ge|lt|le|ieq|ine|ilike|inotlike)\b)
  | (?P<punct>[()])
  | (?P<word>[^\s()'"$]+)
""", re.VERBOSE | re.IGNORECASE),
    operators={**{f"-{op}": op for op in _COMPARISONS}, **{f"-i{op}": op for op in ("eq", "ne", "like", "notlike")}},
    unquote=_onprem_unquote,
    script_block=True, syntax=_onprem_syntax, unknown=_onprem_unknown, paren_at_open=True,
)


def parse_opath(text: str, *, resolve: Callable[[str], str | None], dialect: Dialect) -> OpathNode:
    """An OPATH filter as a tree. ``-and`` and ``-or`` have equal precedence and group left to right
    (PowerShell's rule); parentheses decide otherwise. ``resolve`` maps a property name as written to
    its canonical name, or None when it is not filterable. Raises OpathError in the dialect's wording."""
    body = text
    if dialect.script_block:
        body = text.strip()
        if body.startswith("{") and body.endswith("}"):
            body = body[1:-1]
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(body):
        match = dialect.token.match(body, pos)
        if not match:
            raise OpathError(dialect.syntax(text, pos))
        if match.lastgroup != "ws":
            tokens.append((match.lastgroup or "", match.group(), pos))
        pos = match.end()
    if not tokens:
        raise OpathError(dialect.syntax(text, 0))
    index = 0

    def peek() -> tuple[str, str, int] | None:
        return tokens[index] if index < len(tokens) else None

    def take() -> tuple[str, str, int]:
        nonlocal index
        if index >= len(tokens):
            raise OpathError(dialect.syntax(text, len(body)))
        index += 1
        return tokens[index - 1]

    def expression() -> OpathNode:
        left = unary()
        while (tok := peek()) and tok[0] == "op" and tok[1].lower() in {"-and", "-or"}:
            take()
            op = tok[1].lower()[1:]
            right = unary()
            items = (*left.items, right) if isinstance(left, OpathBool) and left.op == op else (left, right)
            left = OpathBool(op, items)
        return left

    def unary() -> OpathNode:
        tok = peek()
        if tok and tok[0] == "op" and tok[1].lower() == "-not":
            take()
            return OpathNot(unary())
        return primary()

    def primary() -> OpathNode:
        kind, value, at = take()
        if value == "(":
            inner = expression()
            _, closing, closing_at = take()
            if closing != ")":
                raise OpathError(dialect.syntax(text, at if dialect.paren_at_open else closing_at))
            return inner
        if kind != "word":
            raise OpathError(dialect.syntax(text, at))
        prop = resolve(value)
        if prop is None:
            raise OpathError(dialect.unknown(value, text, at))
        op_kind, op, op_at = take()
        if op_kind != "op" or op.lower() in {"-and", "-or", "-not"}:
            raise OpathError(dialect.syntax(text, op_at))
        val_kind, raw, val_at = take()
        if val_kind == "str":
            literal: Any = dialect.unquote(raw)
        elif val_kind == "var":
            literal = {"$true": True, "$false": False, "$null": None}[raw.lower()]
        elif val_kind == "word":
            literal = raw
        else:
            raise OpathError(dialect.syntax(text, val_at))
        return OpathTerm(prop, dialect.operators[op.lower()], literal)

    tree = expression()
    if index != len(tokens):
        raise OpathError(dialect.syntax(text, tokens[index][2]))
    return tree


def render(node: OpathNode) -> str:
    """Exchange's normal form: every statement in parentheses, values quoted with ' doubled."""
    if isinstance(node, OpathTerm):
        return f"({node.prop} -{node.op} {_literal(node.value)})"
    if isinstance(node, OpathNot):
        return f"(-not{render(node.item)})"
    return "(" + f" -{node.op} ".join(render(item) for item in node.items) + ")"


def _literal(value: Any) -> str:
    if value is None:
        return "$null"
    if isinstance(value, bool):
        return "$true" if value else "$false"
    return "'" + re.sub(r"(['\u2018\u2019])", r"\1\1", str(value)) + "'"


def matches(node: OpathNode, get: Callable[[str], Any]) -> bool:
    """Whether a record passes the filter, ``get`` giving a property's value (a list for multi-valued
    ones); text compares case-insensitively, as Exchange does."""
    if isinstance(node, OpathBool):
        if node.op == "and":
            return all(matches(item, get) for item in node.items)
        return any(matches(item, get) for item in node.items)
    if isinstance(node, OpathNot):
        return not matches(node.item, get)
    term: OpathTerm = node
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
            return _compare(left, right, term.op)
        return _compare(str(candidate).lower(), str(term.value).lower(), term.op)

    if term.op in {"ne", "notlike"}:
        positive = "eq" if term.op == "ne" else "like"
        return not any(_compare(str(v).lower(), str(term.value).lower(), positive) for v in values if v is not None)
    return any(one(v) for v in values)


def _compare(left: str, right: str, op: str) -> bool:
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
