"""The ProxyCalc explainer: untrusted input (a form, or JSON on stdin) checked, run through
:func:`portal.addressing.proxycalc.calculate`, and turned into a plain, JSON-ready answer that says which rule
decided every address. The page (Address repair → ProxyCalc explainer) and ``manage.py proxycalc`` both call
:func:`explain`, so that they can never disagree with each other, with the scan or with the lab's sync engine.

Pure: no Django, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import proxycalc
from .proxycalc import ObjectKind, PrimarySource, Recipient, is_valid_smtp_address, parse_proxy_address

__all__ = ["ExplainInputError", "FIELDS", "explain", "parse"]

# Input keys, in the on-premises attribute names the admin knows.
FIELDS = ("kind", "recipient", "userPrincipalName", "mail", "mailNickname", "proxyAddresses", "targetAddress",
          "verified_domains", "initial_domain", "cloud", "in_use")
MAX_VALUE_LENGTH = 1024
MAX_VALUES = 500
# C0/C1 controls and DEL: no directory value that reaches Exchange holds them, and they garble a page or a log.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_DOMAIN_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")

# The rules of proxycalc's module docstring, by the primary source that they decide.
_PRIMARY_RULE = {
    PrimarySource.ON_PREMISES_PROXY_ADDRESSES: "rule 3: proxyAddresses is set on-premises, its SMTP: value is primary",
    PrimarySource.PREVIOUS_CLOUD_PRIMARY: "rule 3: proxyAddresses holds no SMTP: value, the cloud keeps its primary",
    PrimarySource.MAIL: "rule 4: proxyAddresses is empty on-premises, mail gives the primary",
    PrimarySource.TARGET_ADDRESS: "rule 4: a contact's primary is its targetAddress",
    PrimarySource.USER_PRINCIPAL_NAME: "rule 5: neither proxyAddresses nor mail is set, the UPN is primary",
    PrimarySource.MOERA: "rule 5: without a licence the MOERA is the primary",
}


class ExplainInputError(ValueError):
    """The input cannot be explained; ``problems`` maps a field to what is wrong with it, in plain words."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))


@dataclass(frozen=True)
class Request:
    source: proxycalc.ProxyCalcInput
    verified_domains: tuple[str, ...]
    initial_domain: str
    previous: proxycalc.CloudAddresses | None
    in_use: frozenset[str]


def _problem_of_text(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"must be text, not {type(value).__name__}"
    if len(value) > MAX_VALUE_LENGTH:
        return f"is {len(value):,} characters long; a directory value has at most {MAX_VALUE_LENGTH}"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "holds an invalid UTF-16 surrogate (a broken character)"
    if _CONTROL.search(value):
        return "holds a control character (line break, tab, NUL, ...)"
    if "<" in value or ">" in value:
        return "holds < or >, which no address, alias or domain may contain"
    return None


def _domain_problem(name: str) -> str | None:
    labels = name.split(".")
    if len(name) > 255 or len(labels) < 2 or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        return f"{name!r} is not a domain name (like contoso.com)"
    return None


class _Reader:
    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.problems: dict[str, str] = {}

    def text(self, key: str, *, where: Mapping[str, Any] | None = None, label: str | None = None) -> str | None:
        raw = (self.data if where is None else where).get(key)
        if raw is None or raw == "":
            return None
        problem = _problem_of_text(raw)
        if problem:
            self.problems[label or key] = problem
            return None
        return raw.strip() or None

    def texts(self, key: str, *, where: Mapping[str, Any] | None = None, label: str | None = None) -> tuple[str, ...]:
        raw = (self.data if where is None else where).get(key)
        if raw is None or raw == "":
            return ()
        if isinstance(raw, str):
            # From a form: one value a line (or comma-separated for domains).
            raw = [v for v in re.split(r"\r?\n", raw)] if "\n" in raw else [raw]
        if not isinstance(raw, list | tuple):
            self.problems[label or key] = f"must be a list of text values, not {type(raw).__name__}"
            return ()
        if len(raw) > MAX_VALUES:
            self.problems[label or key] = f"has {len(raw):,} values; at most {MAX_VALUES} are explained"
            return ()
        values = []
        for number, value in enumerate(raw, start=1):
            problem = _problem_of_text(value)
            if problem:
                self.problems[label or key] = f"value {number} {problem}"
                return ()
            if value.strip():
                values.append(value.strip())
        return tuple(values)

    def address(self, key: str, what: str) -> str | None:
        value = self.text(key)
        if value is not None and not is_valid_smtp_address(value):
            self.problems[key] = f"{value!r} is not a valid {what} (name@domain, no spaces or quotes)"
            return None
        return value

    def choice(self, key: str, enum: type, default: Any) -> Any:
        raw = self.data.get(key) or default
        try:
            return enum(raw)
        except ValueError:
            allowed = ", ".join(m.value for m in enum)
            self.problems[key] = f"must be one of {allowed}"
            return default


def parse(data: Mapping[str, Any]) -> Request:
    """Check untrusted input; raise :class:`ExplainInputError` naming every field that is wrong."""
    if not isinstance(data, Mapping):
        raise ExplainInputError({"input": "must be an object of attribute names and values"})
    unknown = sorted(str(k) for k in data if k not in FIELDS)
    r = _Reader(data)
    if unknown:
        r.problems["input"] = f"unknown field(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}"
    kind = r.choice("kind", ObjectKind, ObjectKind.USER)
    recipient = r.choice("recipient", Recipient, Recipient.MAILBOX)
    upn = r.address("userPrincipalName", "user principal name")
    mail = r.address("mail", "mail address")
    nickname = r.text("mailNickname")
    if nickname is not None and not is_valid_smtp_address(f"{nickname}@example.com"):
        r.problems["mailNickname"] = (f"{nickname!r} is not a valid alias (letters, digits and ! # $ % & ' * + - / "
                                      "= ? ^ _ ` { | } ~ . only, no spaces)")
    proxies = r.texts("proxyAddresses")
    target = r.text("targetAddress")
    if target is not None:
        parsed = parse_proxy_address(target)
        bare = parsed.address if parsed is not None and parsed.is_smtp else target
        if not is_valid_smtp_address(bare):
            r.problems["targetAddress"] = f"{target!r} is not an SMTP address (SMTP:name@domain or name@domain)"
    domains = tuple(d.lower() for d in r.texts("verified_domains"))
    for name in domains:
        if _domain_problem(name):
            r.problems["verified_domains"] = _domain_problem(name) or ""
            break
    initial = (r.text("initial_domain") or "").lower()
    if not initial:
        r.problems.setdefault("initial_domain", "is required: the tenant's *.onmicrosoft.com domain")
    elif _domain_problem(initial):
        r.problems["initial_domain"] = _domain_problem(initial) or ""
    previous = None
    cloud = data.get("cloud")
    if cloud not in (None, "", {}):
        if not isinstance(cloud, Mapping):
            r.problems["cloud"] = "must be an object with mail, mailNickname and proxyAddresses"
        else:
            previous = proxycalc.CloudAddresses(
                mail=r.text("mail", where=cloud, label="cloud.mail"),
                mail_nickname=r.text("mailNickname", where=cloud, label="cloud.mailNickname"),
                proxy_addresses=r.texts("proxyAddresses", where=cloud, label="cloud.proxyAddresses"))
    in_use = frozenset(a.lower().removeprefix("smtp:") for a in r.texts("in_use"))
    if kind is ObjectKind.USER and recipient is not Recipient.NOT_MAIL_ENABLED and upn is None \
            and "userPrincipalName" not in r.problems:
        r.problems["userPrincipalName"] = "is required for a user that is a mail recipient"
    if recipient is Recipient.MAILBOX and kind is not ObjectKind.USER:
        r.problems["recipient"] = "only a user can have an Exchange Online mailbox"
    if r.problems:
        raise ExplainInputError(r.problems)
    source = proxycalc.ProxyCalcInput(
        kind=kind, recipient=recipient, user_principal_name=upn if kind is ObjectKind.USER else None,
        mail=mail, mail_nickname=nickname, proxy_addresses=proxies,
        target_address=target if kind is ObjectKind.CONTACT else None)
    return Request(source=source, verified_domains=domains, initial_domain=initial, previous=previous,
                   in_use=in_use)


def _decided_by(address: str, result: proxycalc.ProxyCalcResult, request: Request) -> str:
    parsed = parse_proxy_address(address)
    if parsed is None:
        return ""
    lower = parsed.address.lower()
    if parsed.is_primary:
        return _PRIMARY_RULE.get(result.primary_source, result.primary_source.value)
    if not parsed.is_smtp:
        return "rule 3: an address of another type is kept as given on-premises"
    if result.user_principal_name and lower == result.user_principal_name.lower():
        return "rule 8: the UPN is a secondary address of every mail recipient (by design)"
    if result.moera and lower == result.moera.lower():
        return "rule 7: the MOERA (alias@initial domain) is added to a mail recipient and kept"
    on_premises = {p.address.lower() for p in map(parse_proxy_address, request.source.proxy_addresses)
                   if p is not None and p.is_smtp}
    if lower in on_premises:
        return "rule 3: a secondary SMTP address from proxyAddresses on-premises"
    before = {p.address.lower() for p in map(parse_proxy_address, request.previous.proxy_addresses
                                             if request.previous else ()) if p is not None}
    if lower in before:
        return "rule 1: kept from the addresses the cloud object already has"
    return "rule 1: computed by ProxyCalc"


def explain(data: Mapping[str, Any]) -> dict[str, Any]:
    """What Entra ID computes from ``data`` (see :data:`FIELDS`), with the rule behind every address."""
    request = parse(data)
    result = proxycalc.calculate(source=request.source, verified_domains=request.verified_domains,
                                 initial_domain=request.initial_domain, in_use_by_others=request.in_use,
                                 previous=request.previous)
    return {
        "cloud": {"proxyAddresses": list(result.proxy_addresses), "mail": result.mail,
                  "mailNickname": result.mail_nickname, "userPrincipalName": result.user_principal_name,
                  "moera": result.moera},
        "primary_smtp": result.primary_smtp,
        "primary_source": result.primary_source.value,
        "mail_ignored": result.mail_ignored,
        "addresses": [{"address": a, "rule": _decided_by(a, result, request)} for a in result.proxy_addresses],
        "removed": [{"address": r.address, "code": r.reason.name, "reason": r.reason.value} for r in result.removed],
        "steps": list(result.explanation),
    }
