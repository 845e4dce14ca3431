"""Value checks: every parameter value is checked here before it reaches LDAP."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from .errors import _ALIAS_RULE, _BINDING, _DATA_VALIDATION, _TRANSFORMATION, CmdletError, _bad_smtp, _conversion

_SMTP_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")
_SMTP_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                          r"[A-Za-z0-9])?\Z")
_ALIAS = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u00a1-\u00ff]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~"
                    r"\u00a1-\u00ff]+)*\Z")
_PREFIX = re.compile(r"([A-Za-z0-9]{1,9}):(.+)\Z", re.S)


def _no_controls(value: str) -> bool:
    return not any(ord(ch) < 0x20 or ch == "\x7f" for ch in value)


def is_smtp(value: str) -> bool:
    if not isinstance(value, str) or len(value) > 320 or value.count("@") != 1:
        return False
    local, domain = value.split("@")
    return 0 < len(local) <= 64 and bool(_SMTP_LOCAL.match(local)) and bool(_SMTP_DOMAIN.match(domain))


@dataclass(frozen=True)
class Proxy:
    """One proxy address: ``SMTP:a@b`` (primary), ``smtp:a@b``, ``X500:/o=...``."""

    prefix: str
    address: str

    @property
    def is_smtp(self) -> bool:
        return self.prefix.lower() == "smtp"

    @property
    def is_primary(self) -> bool:
        return self.prefix == "SMTP"

    @property
    def key(self) -> tuple[str, str]:
        return self.prefix.lower(), self.address.lower()

    def __str__(self) -> str:
        # A stored value without a prefix (malformed, but AD holds what it was given) prints as it was.
        return f"{self.prefix}:{self.address}" if self.prefix else self.address

    def as_primary(self, primary: bool) -> Proxy:
        return Proxy("SMTP" if primary else "smtp", self.address) if self.is_smtp else self


def parse_proxy(value: Any, *, parameter: str) -> Proxy:
    """A proxy address given to a cmdlet: no prefix means SMTP (secondary), SMTP parts validated."""
    if not isinstance(value, str) or not value.strip() or not _no_controls(value) or len(value) > 1123:
        raise _conversion(parameter, value, "Microsoft.Exchange.Data.ProxyAddress")
    text = value.strip()
    match = _PREFIX.match(text)
    prefix, address = (match.group(1), match.group(2)) if match else ("smtp", text)
    if prefix.lower() == "smtp":
        if not is_smtp(address):
            raise _bad_smtp(parameter, address)
        prefix = "SMTP" if prefix == "SMTP" else "smtp"
    elif prefix.lower() == "x500" and not address.startswith("/"):
        raise _conversion(parameter, value, "Microsoft.Exchange.Data.ProxyAddress",
                          f'The X500 address "{address}" isn\'t valid.')  # lab wording
    return Proxy(prefix, address)


def stored_proxies(values: Iterable[Any]) -> list[Proxy]:
    """proxyAddresses as AD holds them (data written by anyone: malformed values are kept, not judged)."""
    out: list[Proxy] = []
    for value in values:
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        prefix, sep, address = text.partition(":")
        out.append(Proxy(prefix, address) if sep else Proxy("", text))
    return out


def _smtp_value(value: Any, parameter: str) -> str:
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str) and text.lower().startswith("smtp:"):
        text = text[5:]
    if not isinstance(text, str) or not is_smtp(text):
        raise _bad_smtp(parameter, value)
    return text


def _alias_value(value: Any, parameter: str = "Alias") -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 64 or not _ALIAS.match(value):
        raise CmdletError(_DATA_VALIDATION, f'Property expression "{value}" isn\'t valid. {_ALIAS_RULE}',
                          category="InvalidData", target=str(value))
    return value


def _name_value(value: Any, parameter: str, limit: int = 64) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CmdletError(_BINDING, f"Cannot validate argument on parameter '{parameter}'. The argument is null or "
                          "empty. Provide an argument that is not null or empty, and then try the command again.",
                          category="InvalidData", fq_error_id="ParameterArgumentValidationError")
    if len(value) > limit or not _no_controls(value):
        raise CmdletError(_DATA_VALIDATION, f"The length of the property is too long. The maximum length is {limit} "
                          f"and the length of the value provided is {len(value)}." if len(value) > limit else
                          f"The value of {parameter} contains a control character.",  # second: lab wording
                          category="InvalidData")
    return value.strip()


def _text_value(value: Any, parameter: str, limit: int) -> str | None:
    """A clearable text property: None or '' clears."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _no_controls(value.replace("\r", "").replace("\n", "")):
        raise _conversion(parameter, value, "System.String")
    if len(value) > limit:
        raise CmdletError(_DATA_VALIDATION, f"The length of the property is too long. The maximum length is {limit} "
                          f"and the length of the value provided is {len(value)}.", category="InvalidData")
    return value


def _bool_value(value: Any, parameter: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower().lstrip("$") in {"true", "false", "1", "0"}:
        return value.strip().lower().lstrip("$") in {"true", "1"}
    # PowerShell's wording for a non-Boolean value bound to a Boolean parameter.
    raise CmdletError(_TRANSFORMATION, f"Cannot process argument transformation on parameter '{parameter}'. Cannot "
                      f'convert value "{value}" to type "System.Boolean". Boolean parameters accept only Boolean '
                      "values and numbers, such as $True, $False, 1 or 0.", category="InvalidData",
                      fq_error_id="ParameterArgumentTransformationError")


def _identity_value(value: Any, parameter: str = "Identity") -> str:
    if isinstance(value, dict):  # a piped object: its Identity, DistinguishedName or Guid
        value = value.get("DistinguishedName") or value.get("Guid") or value.get("Identity")
    if isinstance(value, UUID):
        return str(value)
    if not isinstance(value, str) or not value.strip() or len(value) > 1024 or not _no_controls(value):
        raise _conversion(parameter, value, "Microsoft.Exchange.Configuration.Tasks.RecipientIdParameter")
    return value.strip()


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


@dataclass(frozen=True)
class MultiValued:
    """A multi-valued parameter: a list replaces; ``@{Add=...; Remove=...}`` edits."""

    replace: list[Any] | None = None
    add: list[Any] = field(default_factory=list)
    remove: list[Any] = field(default_factory=list)


def _multi_value(value: Any, parameter: str) -> MultiValued:
    if isinstance(value, dict):
        known = {k.lower(): v for k, v in value.items() if not str(k).startswith("@")}
        unknown = set(known) - {"add", "remove"}
        if unknown:
            raise _conversion(parameter, value, "Microsoft.Exchange.Data.MultiValuedProperty",
                              f"The hash table key {sorted(unknown)[0]} isn't Add or Remove.")  # lab wording
        return MultiValued(add=_as_list(known.get("add")), remove=_as_list(known.get("remove")))
    if isinstance(value, str) and "," in value:  # "a,b" as PowerShell's binder splits an unquoted list
        return MultiValued(replace=[v.strip() for v in value.split(",") if v.strip()])
    return MultiValued(replace=_as_list(value))
