"""IdFix's multi-tenant rule set, per attribute, as its public source defines it (github.com/microsoft/idfix:
Rules/MultiTenantRuleCollection.cs and the rules it composes; Settings/Constants.cs for the expressions).

Each attribute has a chain of rules. The value passes through the chain; a rule that fails records its
error type and hands its corrected value to the next rule (IdFix's "mimic the previous logic"), so the
proposed value is the last failing rule's output and the errors are the union. Duplicates are not
part of the chain here: :mod:`.duplicates` finds them across the whole scope, across attributes and
against the tenant, which IdFix (one attribute at a time, one forest, no tenant) cannot.

Where this module departs from IdFix it says so, and the finding carries ``beyond_idfix``:

* IdFix's ``RFC2822Rule`` never sets ``success`` to true, so it reports an error with no error type
  for every valid address; a valid address here raises nothing.
* IdFix compares ``msExchRecipientTypeDetails`` with the strings ``"0x1000"``...; AD stores decimal
  numbers, so IdFix never skips those objects. They are compared as numbers here.
* IdFix refuses ``(`` and ``)`` in X500 addresses, yet every Exchange legacyExchangeDN holds
  "Exchange Administrative Group (FYDIBOHF23SPDLT)" and Entra ID keeps it: not reported.
* A proxy address cut to 256 characters is another address: Remove is proposed, not the cut value.
* Checks IdFix's multi-tenant set lacks, reported as beyond IdFix: control characters and lone
  surrogates in any value; ``mail`` format (IdFix's dedicated set); leading/trailing spaces in
  ``displayName`` and the characters IdFix's dedicated set refuses in ``mailNickname``; a mail-enabled
  object without ``mail``/``mailNickname``, a mail contact without ``targetAddress``; the UPN limits
  Entra ID enforces at export (64 characters before the @, 48 after, its character set).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from portal.addressing.validation import upn_problem

from .tlds import is_valid_tld
from .types import Action, Category, Entry, ErrorType, Finding, Fix, Rule, Severity
from .values import CONTROL, SURROGATE, Unreadable, printable

__all__ = ["ATTRIBUTES", "check_entry", "rfc2822", "skip_reason"]

ATTRIBUTES = ("displayName", "givenName", "mail", "mailNickname", "proxyAddresses", "sAMAccountName",
              "targetAddress", "userPrincipalName")

_F = re.IGNORECASE | re.ASCII
# Settings/Constants.cs
DOMAIN_PART = re.compile(r"@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:[a-z]{2,17})\Z", _F)
LOCAL_PART = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@", _F)
# IdFix's RFC2822 expression, [a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@
# (?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:[a-z]{2,17}), case-insensitive, is matched against every distinct address of
# the scan: written here for Python's engine, which it made the costliest step of IdFix's checks. The same language
# (tests/unit/test_address_normal_form.py): capitals listed instead of re.IGNORECASE (ASCII only, as with
# re.ASCII), a domain label as runs of letters and digits joined by hyphens, and possessive repeats where giving
# characters back cannot lead to a match (a run is always followed by a character it cannot hold).
RFC2822 = re.compile(r"[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]++(?:\.[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]++)*+@"
                     r"(?:[a-zA-Z0-9]++(?:-++[a-zA-Z0-9]++)*+\.)+[a-zA-Z]{2,17}", re.ASCII)
# IdFix's is case-insensitive; both cases of its letters listed, the same characters match (and twice as fast).
INVALID_UPN = re.compile(r"[\s\\%&*+/=?'{}|<>();:,\[\]\"äëïöüÿÄËÏÖÜŸ]")
INVALID_PROXY_SMTP = re.compile(r"[\s<>();,\[\]\"']")
INVALID_PROXY = re.compile(r"[\s<>(),\[\]\"']")
INVALID_TARGET_SMTP = re.compile(r"[\s\\<>();,\[\]\"']")
INVALID_TARGET = re.compile(r"[\s\\<>(),\[\]\"']")
INVALID_X400 = re.compile(r"[\f\n\r\t\v()\[\]\"']")
# IdFix's X500 expression without ( ) -- see the module docstring.
INVALID_X500 = re.compile(r"[\f\n\r\t\v\[\]\"']")
INVALID_SAM = re.compile(r"[\\\"|,/\[\]:<>+=;?*]")
LEADING_PERIODS = re.compile(r"^[.]+")
# IdFix's dedicated rule set for mailNickname (beyond the multi-tenant set).
DEDICATED_NICKNAME = re.compile(r"[\s\\!#$%&*+/=?^`{}|~<>()'\;:,\[\]\"@]")
EDGE_SPACE = re.compile(r"^\s+|\s+$")
X400 = re.compile(r"^x\.?400", re.IGNORECASE)
X500 = re.compile(r"^x\.?500", re.IGNORECASE)
_NOT_DOMAIN = re.compile(r"[^a-z0-9.-]", _F)
_NOT_LOCAL = re.compile(r"[^a-z0-9.!#$%&'*+/=?^_`{|}~-]", _F)

# Skip (MultiTenantRuleCollection.Skip): system accounts, conflict objects, Exchange system mailboxes.
WELL_KNOWN_EXCLUSIONS = ("Admini", "CAS_{", "DiscoverySearchMailbox", "FederatedEmail", "Guest", "HTTPConnector",
                         "krbtgt", "iusr_", "iwam", "msol", "support_", "SystemMailbox", "WWIOadmini",
                         "HealthMailbox", "Exchange Online-ApplicationAccount")
_EXCLUSIONS_UPPER = tuple(e.upper() for e in WELL_KNOWN_EXCLUSIONS)
# One search finds whether control_characters has anything to do (most values hold neither).
_CONTROL_OR_SURROGATE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")  # CONTROL and SURROGATE
# Arbitration, discovery, monitoring, ... mailboxes (msExchRecipientTypeDetails).
SKIPPED_RECIPIENT_TYPES = frozenset({0x1000, 0x2000, 0x4000, 0x400000, 0x800000, 0x1000000, 0x20000000})


@dataclass(frozen=True)
class _Step:
    errors: ErrorType
    value: str
    beyond: bool = False


StepRule = Callable[[Entry, str], _Step | None]


def skip_reason(entry: Entry) -> str | None:
    """Why IdFix leaves this object out (its ``Skip``), or None. The reason is shown with the skipped list."""
    cn = entry.first("cn") or entry.dn.partition(",")[0].partition("=")[2]
    if cn.endswith("$"):
        return "its cn ends with $ (a machine or system account)"
    upper = cn.upper()
    if upper.startswith(_EXCLUSIONS_UPPER):  # one call for the common case; the loop only names the match
        for exclusion, exclusion_upper in zip(WELL_KNOWN_EXCLUSIONS, _EXCLUSIONS_UPPER, strict=True):
            if upper.startswith(exclusion_upper):
                return f"its cn begins with {exclusion} (a well-known system account)"
    if "\nCNF:" in entry.dn or "\\0ACNF:" in entry.dn.upper():
        return "it is a replication conflict object (CNF)"
    if (entry.first("isCriticalSystemObject") or "").upper() == "TRUE":
        return "isCriticalSystemObject is TRUE"
    kind = entry.object_class
    if kind == "user":
        sam = (entry.first("sAMAccountName") or "").upper()
        if sam.startswith(("CAS_", "SUPPORT_", "MSOL_")):
            return "its sAMAccountName begins with CAS_, SUPPORT_ or MSOL_"
        nickname = (entry.first("mailNickname") or "").upper()
        if nickname.startswith(("CAS_", "SYSTEMMAILBOX")):
            return "its mailNickname begins with CAS_ or SystemMailbox"
        if (entry.first("msExchHideFromAddressLists") or "").upper() == "TRUE" and \
                (entry.first("displayName") or "").upper().startswith("MSOL"):
            return "a hidden MSOL account"
        try:
            details = int(entry.first("msExchRecipientTypeDetails") or "0")
        except ValueError:
            details = 0
        if details in SKIPPED_RECIPIENT_TYPES:
            return f"an Exchange system mailbox (msExchRecipientTypeDetails {details:#x})"
    if kind == "group":
        try:
            group_type = int(entry.first("groupType") or "0")
        except ValueError:
            group_type = 0
        if group_type < 0 and not entry.has("mail"):
            return "a security group without mail"
        if group_type >= 0 and not entry.has("proxyAddresses"):
            return "a distribution group without proxyAddresses"
    return None


# --- the rules IdFix composes -------------------------------------------------------------------------


def max_length(limit: int) -> StepRule:
    def rule(entry: Entry, value: str) -> _Step | None:
        return _Step(ErrorType.LENGTH, value[:limit]) if len(value) > limit else None
    return rule


def characters(expression: re.Pattern[str], *, beyond: bool = False) -> StepRule:
    """IdFix's RegexRule: the matching characters are removed; nothing left -> the object's cn."""
    def rule(entry: Entry, value: str) -> _Step | None:
        if not expression.search(value):
            return None
        return _Step(ErrorType.CHARACTER, expression.sub("", value) or _cn(entry), beyond)
    return rule


def control_characters(entry: Entry, value: str) -> _Step | None:
    if _CONTROL_OR_SURROGATE.search(value):
        return _Step(ErrorType.CHARACTER, SURROGATE.sub("", CONTROL.sub("", value)) or _cn(entry), True)
    return None


def colon_in_suffix(entry: Entry, value: str) -> _Step | None:
    """FixProxyTargetAddressRule: no ':' after the type prefix."""
    position = value.find(":")
    if position > 0 and value.find(":", position + 1) > 0:
        return _Step(ErrorType.CHARACTER, value[:position] + ":" + value[position + 1:].replace(":", ""))
    return None


def rfc2822(value: str, *, extra_tlds: Iterable[str] = ()) -> tuple[ErrorType, str]:
    """IdFix's RFC2822Rule: the error types of an address (``smtp:`` prefix allowed) and its corrected form."""
    return _rfc2822(value, tuple(extra_tlds))


def _rfc2822(value: str, extra_tlds: tuple[str, ...]) -> tuple[ErrorType, str]:
    if value[:5].lower() == "smtp:":  # the prefix is "smtp:" in any case: checked without it, given back in front
        errors, check = _address(value[5:], extra_tlds)
        return errors, value[:5] + check
    return _address(value, extra_tlds)


# One address is usually mail, UPN and the primary SMTP proxy address of its object: this cache answers the
# repeats. The UPN is also checked without the tenant's TLDs (the Entra ID limits): _address_shape's cache,
# keyed on the address alone, answers that one. Both bounded: a scan's memory stays flat.
@functools.lru_cache(maxsize=4096)
def _address(check: str, extra_tlds: tuple[str, ...]) -> tuple[ErrorType, str]:
    errors, check_fixed = _address_shape(check)
    if "." in check:
        tld = check.lower()[check.rfind("."):]
        if len(tld) > 1 and not is_valid_tld(tld[1:], extra_tlds):
            errors |= ErrorType.TOP_LEVEL_DOMAIN
    return errors, check_fixed


@functools.lru_cache(maxsize=4096)
def _address_shape(check: str) -> tuple[ErrorType, str]:
    errors = ErrorType.NONE
    if RFC2822.fullmatch(check):
        # A whole valid address also passes the domain-part and local-part searches below and holds one @:
        # only the top-level domain can be wrong, and there is nothing to correct.
        return errors, check
    if not DOMAIN_PART.search(check):
        errors |= ErrorType.DOMAIN_PART
        if "@" in check:
            at = check.rfind("@")
            check = check[:at + 1] + _NOT_DOMAIN.sub("", check[at + 1:])
    if not LOCAL_PART.match(check) or check.count("@") > 1:
        errors |= ErrorType.LOCAL_PART
        if "@" in check:
            at = check.rfind("@")
            check = (_NOT_LOCAL.sub("", check[:at]) + check[at:]).replace(".@", "@")
    if not RFC2822.fullmatch(check):
        errors |= ErrorType.FORMAT
    return errors, check


def address(*, beyond: bool = False, extra_tlds: Iterable[str] = ()) -> StepRule:
    tlds = tuple(extra_tlds)

    def rule(entry: Entry, value: str) -> _Step | None:
        errors, fixed = _rfc2822(value, tlds)
        return _Step(errors, fixed, beyond) if errors else None
    return rule


def blank_with_cn(entry: Entry, value: str) -> _Step | None:
    return _Step(ErrorType.BLANK, _cn(entry)) if not value else None


def _cn(entry: Entry) -> str:
    return entry.first("cn") or entry.dn.partition(",")[0].partition("=")[2]


def _is_smtp(value: str) -> bool:
    return value[:5].lower() == "smtp:"


# --- per attribute ----------------------------------------------------------------------------------


def _chain(entry: Entry, value: str, rules: Iterable[StepRule]) -> tuple[ErrorType, str | None, bool]:
    errors, proposed, beyond_only = ErrorType.NONE, None, True
    current = value
    for rule in rules:
        step = rule(entry, current)
        if step is None:
            continue
        errors |= step.errors
        beyond_only = beyond_only and step.beyond
        current = proposed = step.value
    return errors, proposed, beyond_only


def _finding(entry: Entry, attribute: str, value: str, errors: ErrorType, proposed: str | None, beyond: bool,
             *, multi: bool = False, action: Action = Action.EDIT, explanation: str = "",
             severity: Severity | None = None, category: Category = Category.NONE) -> Finding:
    if multi:
        fix = Fix(attribute=attribute, remove=(value,), add=(proposed,) if action is Action.EDIT and proposed else ())
    else:
        fix = Fix(attribute=attribute, replace=proposed) if action is Action.EDIT and proposed is not None else None
    text = explanation or _explain(attribute, errors, proposed, action)
    if beyond:
        text += " (IdFix's multi-tenant rules do not check this; the portal does.)"
    return Finding(dn=entry.dn, object_class=entry.object_class, attribute=attribute, value=printable(value, 1024),
                   rule=Rule.IDFIX, severity=severity or (Severity.WARNING if beyond else Severity.ERROR),
                   errors=errors, action=action, proposed_value=proposed if action is Action.EDIT else None,
                   explanation=text, beyond_idfix=beyond, fix=fix, category=category)


_WHY = {
    ErrorType.CHARACTER: "holds characters the sync refuses",
    ErrorType.FORMAT: "is not a valid address",
    ErrorType.TOP_LEVEL_DOMAIN: "ends in a top-level domain that is not on the Internet",
    ErrorType.DOMAIN_PART: "has an invalid domain part",
    ErrorType.LOCAL_PART: "has an invalid part before the @",
    ErrorType.LENGTH: "is too long",
    ErrorType.BLANK: "is empty",
}


def _explain(attribute: str, errors: ErrorType, proposed: str | None, action: Action) -> str:
    reasons = "; ".join(why for flag, why in _WHY.items() if flag in errors)
    if action is Action.REMOVE:
        return f"{attribute} {reasons}. Proposed: remove this value."
    if proposed is not None:
        return f"{attribute} {reasons}. Proposed value (IdFix's correction): {printable(proposed)}."
    return f"{attribute} {reasons}."


def check_entry(entry: Entry, *, extra_tlds: Iterable[str] = (),
                verified_domains: Iterable[str] | None = None) -> list[Finding]:
    """IdFix's findings for one object that is not skipped (duplicates aside: see :mod:`.duplicates`)."""
    verified = tuple(verified_domains) if verified_domains is not None else None
    tlds = _tlds(tuple(extra_tlds), verified or ())
    found: list[Finding] = []
    attributes = entry.attributes
    readable: dict[str, str] = {}
    texts: list[str] = []
    for attribute, key in _ATTRIBUTE_KEYS:
        values = attributes.get(key)
        if values:
            texts += values
            readable[attribute] = values[0]
    # The types of all the values at once: a value that is not text (rare) is looked for only when there is one.
    if texts and {*map(type, texts)} != _TEXT_ONLY:
        found += _unreadable(entry)
        readable = {a: v for a, v in readable.items() if not isinstance(v, Unreadable)}
    # Most objects hold no control character at all: str.isprintable (False for every control character and
    # surrogate, and for a few more) clears their values without a regular expression.
    control = not all(map(str.isprintable, texts)) and any(map(_CONTROL_OR_SURROGATE.search, texts))
    chains = _chains(tlds, control=control)

    get = readable.get
    # displayName: 255, not blank (IdFix proposes the cn); edge spaces from IdFix's dedicated set.
    display = attributes.get("displayname")
    if not display or display[0] == "":
        found.append(_finding(entry, "displayName", "", ErrorType.BLANK, _cn(entry), False))
    else:
        _run(entry, "displayName", get("displayName"), chains["displayName"], found)
    _run(entry, "givenName", get("givenName"), chains["givenName"], found)
    _run(entry, "mail", get("mail"), chains["mail"], found)
    nickname = get("mailNickname")
    _run(entry, "mailNickname", nickname, chains["mailNickname"], found)
    if nickname and not LEADING_PERIODS.search(nickname) and DEDICATED_NICKNAME.search(nickname):
        found.append(_finding(
            entry, "mailNickname", nickname, ErrorType.CHARACTER, DEDICATED_NICKNAME.sub("", nickname) or _cn(entry),
            True, severity=Severity.INFO,
            explanation="mailNickname holds characters IdFix's dedicated rule set refuses (Exchange Online accepts "
                        "them in an alias, many mail systems and scripts do not). Proposed: "
                        f"{printable(DEDICATED_NICKNAME.sub('', nickname) or _cn(entry))}."))
    _run(entry, "sAMAccountName", get("sAMAccountName"),
         chains["sAMAccountName/user" if entry.object_class == "user" else "sAMAccountName"], found)
    target = get("targetAddress")
    if target is not None:
        _run(entry, "targetAddress", target, chains["targetAddress/smtp" if _is_smtp(target) else "targetAddress"],
             found)
    _run(entry, "userPrincipalName", get("userPrincipalName"), chains["userPrincipalName"], found)
    for value in entry.attributes.get("proxyaddresses", ()):
        if isinstance(value, Unreadable):
            continue
        found.extend(_proxy_address(entry, value, chains))
    found.extend(_beyond(entry, readable, verified))
    return found


_ATTRIBUTE_KEYS = tuple((a, a.lower()) for a in ATTRIBUTES)
_TEXT_ONLY = {str}


def _unreadable(entry: Entry) -> list[Finding]:
    return [Finding(dn=entry.dn, object_class=entry.object_class, attribute=attribute, value=str(value),
                    rule=Rule.BAD_VALUE, severity=Severity.ERROR, errors=ErrorType.FORMAT, beyond_idfix=True,
                    explanation=f"{attribute} holds a value that is not text ({value.reason}); the sync cannot read "
                                "it. Correct it in AD.")
            for attribute, key in _ATTRIBUTE_KEYS for value in entry.attributes.get(key, ())
            if isinstance(value, Unreadable)]


@functools.lru_cache(maxsize=16)
def _tlds(extra_tlds: tuple[str, ...], verified_domains: tuple[str, ...]) -> tuple[str, ...]:
    return extra_tlds + tuple(d.rpartition(".")[2] for d in verified_domains)


@functools.lru_cache(maxsize=16)
def _lower_domains(domains: tuple[str, ...]) -> frozenset[str]:
    return frozenset(d.lower() for d in domains)


def _run(entry: Entry, attribute: str, value: str | None, chain: _Chain, found: list[Finding]) -> None:
    if value is None or chain.passes(value):
        return
    errors, proposed, beyond = _chain(entry, value, chain.rules)
    if errors:
        found.append(_finding(entry, attribute, value, errors, proposed, beyond))


@dataclass(frozen=True)
class _Chain:
    """An attribute's rules in IdFix's order, and the test that lets a value none of them would change (most
    values) skip them, so that no step is built for it. Rules always come in this order: control characters,
    length, colon after the prefix, forbidden characters, address; the test is the same checks on the value as
    it is (a value that fails none of them goes through the chain unchanged)."""

    rules: tuple[StepRule, ...]
    control: bool
    limit: int
    colon: bool
    forbidden: re.Pattern[str] | None
    tlds: tuple[str, ...] | None  # None: no address rule

    def passes(self, value: str) -> bool:
        if len(value) > self.limit or (self.control and _CONTROL_OR_SURROGATE.search(value)):
            return False
        if self.colon:
            position = value.find(":")
            if position > 0 and value.find(":", position + 1) > 0:
                return False
        if self.forbidden is not None and self.forbidden.search(value):
            return False
        # (ErrorType.NONE is one object: _address builds every other value from it with |.)
        return self.tlds is None or _rfc2822(value, self.tlds)[0] is ErrorType.NONE


def _chain_of(limit: int, *, control: bool, colon: bool = False, forbidden: re.Pattern[str] | None = None,
              beyond: bool = False, tlds: tuple[str, ...] | None = None, address_beyond: bool = False) -> _Chain:
    rules: list[StepRule] = [control_characters] if control else []
    rules.append(max_length(limit))
    if colon:
        rules.append(colon_in_suffix)
    if forbidden is not None:
        rules.append(characters(forbidden, beyond=beyond))
    if tlds is not None:
        rules.append(address(beyond=address_beyond, extra_tlds=tlds))
    return _Chain(tuple(rules), control, limit, colon, forbidden, tlds)


@functools.lru_cache(maxsize=16)
def _chains(tlds: tuple[str, ...], *, control: bool) -> dict[str, _Chain]:
    """Each attribute's chain, control characters first (left out when the object holds none: the rule would
    pass every value). Built once per set of TLDs (a scan has one), not once per object: the rules are closures
    over their limits and expressions only."""
    c = control
    return {
        "displayName": _chain_of(255, control=c, forbidden=EDGE_SPACE, beyond=True),
        "givenName": _chain_of(63, control=c),
        "mail": _chain_of(256, control=c, tlds=tlds, address_beyond=True),
        "mailNickname": _chain_of(64, control=c, forbidden=LEADING_PERIODS),
        "sAMAccountName/user": _chain_of(20, control=c, forbidden=INVALID_SAM),
        "sAMAccountName": _chain_of(256, control=c, forbidden=INVALID_SAM),
        "targetAddress/smtp": _chain_of(255, control=c, colon=True, forbidden=INVALID_TARGET_SMTP, tlds=tlds),
        "targetAddress": _chain_of(255, control=c, colon=True, forbidden=INVALID_TARGET),
        "userPrincipalName": _chain_of(113, control=c, forbidden=INVALID_UPN, tlds=tlds),
        "proxyAddresses/smtp": _chain_of(256, control=c, colon=True, forbidden=INVALID_PROXY_SMTP, tlds=tlds),
        "proxyAddresses/x400": _chain_of(256, control=c, colon=True, forbidden=INVALID_X400),
        "proxyAddresses/x500": _chain_of(256, control=c, colon=True, forbidden=INVALID_X500),
        "proxyAddresses": _chain_of(256, control=c, colon=True, forbidden=INVALID_PROXY),
    }


def _proxy_address(entry: Entry, value: str, chains: dict[str, _Chain]) -> list[Finding]:
    if _is_smtp(value):
        chain = chains["proxyAddresses/smtp"]
    elif X400.match(value):
        chain = chains["proxyAddresses/x400"]
    elif X500.match(value):
        chain = chains["proxyAddresses/x500"]
    else:
        chain = chains["proxyAddresses"]
    if chain.passes(value):
        return []
    errors, proposed, beyond = _chain(entry, value, chain.rules)
    if not errors:
        return []
    if ErrorType.LENGTH in errors and not value.startswith("SMTP:"):
        return [_finding(entry, "proxyAddresses", value, errors, None, beyond, multi=True, action=Action.REMOVE,
                         explanation=f"This proxy address is {len(value)} characters long; Entra ID keeps at most "
                                     "256. Cut short it would be another address, so removing it is proposed "
                                     "(IdFix proposes the cut value).")]
    return [_finding(entry, "proxyAddresses", value, errors, proposed, beyond, multi=True)]


_MAIL_RECIPIENT_ATTRIBUTES = ("msExchRecipientTypeDetails", "homeMDB", "msExchRemoteRecipientType")


def _beyond(entry: Entry, readable: dict[str, str], verified_domains: tuple[str, ...] | None) -> list[Finding]:
    found: list[Finding] = []
    # (The object's mail and mailNickname are looked at first: most objects have both, and nothing below needs
    # to know whether they are a recipient then.)
    if not (entry.has("mail") and entry.has("mailNickname")) and entry.object_class in ("user", "group", "contact") \
            and (any(entry.has(a) for a in _MAIL_RECIPIENT_ATTRIBUTES) or entry.has("proxyAddresses")):
        primary = next((v[5:] for v in entry.values("proxyAddresses") if v.startswith("SMTP:")), None)
        if not entry.has("mail"):
            found.append(_finding(
                entry, "mail", "", ErrorType.BLANK, primary, True, action=Action.EDIT if primary else Action.NONE,
                explanation="A mail-enabled object without mail: Exchange Online and the address book show no "
                            "address for it." + (f" Proposed: its primary SMTP address {primary}." if primary
                                                 else "")))
        if not entry.has("mailNickname"):
            alias = (primary or readable.get("mail") or "").partition("@")[0] or readable.get("sAMAccountName")
            found.append(_finding(
                entry, "mailNickname", "", ErrorType.BLANK, alias, True,
                action=Action.EDIT if alias else Action.NONE,
                explanation="A mail-enabled object without mailNickname (alias): Exchange requires one and Entra ID "
                            "builds the MOERA from it." + (f" Proposed: {alias}." if alias else "")))
    if entry.object_class == "contact" and entry.has("mail") and not entry.has("targetAddress"):
        mail = readable.get("mail")
        found.append(_finding(
            entry, "targetAddress", "", ErrorType.BLANK, f"SMTP:{mail}" if mail else None, True,
            action=Action.EDIT if mail else Action.NONE,
            explanation="A mail contact without targetAddress: mail to it cannot be routed."
                        + (f" Proposed: SMTP:{mail}." if mail else "")))
    upn = readable.get("userPrincipalName")
    if upn is not None and len(upn) <= 113 and not INVALID_UPN.search(upn) and \
            _rfc2822(upn, ())[0] is ErrorType.NONE:
        problem = _entra_upn_problem(upn)
        if problem is not None:
            errors, why = problem
            found.append(_finding(
                entry, "userPrincipalName", upn, errors, None, True, action=Action.NONE,
                severity=Severity.ERROR, category=Category.DATA_VALIDATION_FAILURE,
                explanation=f"Entra ID refuses this userPrincipalName at export ({why}): DataValidationFailed is "
                            "predicted."))
    if upn is not None and verified_domains is not None and "@" in upn:
        suffix = upn.rpartition("@")[2].lower()
        if suffix not in _lower_domains(verified_domains):
            found.append(Finding(
                dn=entry.dn, object_class=entry.object_class, attribute="userPrincipalName", value=printable(upn),
                rule=Rule.IDFIX, severity=Severity.WARNING, beyond_idfix=True,
                explanation=f"The UPN suffix {suffix} is not a verified domain of the tenant: Entra ID gives the "
                            "user <alias>@<initial domain> instead, and the user signs in with that."))
    return found


def _entra_upn_problem(upn: str) -> tuple[ErrorType, str] | None:
    why = upn_problem(upn)
    if why is None:
        return None
    if "longer" in why:
        return ErrorType.LENGTH, why
    if "characters" in why:
        return ErrorType.CHARACTER, why
    return ErrorType.FORMAT, why

