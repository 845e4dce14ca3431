"""Keeps secrets out of job logs: a line is redacted before it is stored or printed."""

from __future__ import annotations

import re
from typing import Any

MASK = "********"

# A bare "pass" only as a whole word: Exchange's Bypass* parameters and isPasswordlessCapable are not secrets.
_SECRET_KEYS = re.compile(
    r"passphrase|passw(?:or)?d(?!less)|(?<![a-z])pass(?![a-z])|pwd|secret|token|credential|authorization"
    r"|private[_-]?key|api[_-]?key",
    re.I,
)
# Facts about a secret (pwdLastSet, badPwdCount, token_type, lastPasswordChangeDateTime) are what admins
# read in a log to find out why a sign-in fails; hiding them helps nobody.
_ABOUT_A_SECRET = re.compile(
    r"(?:last[_-]?set|count|time|age|length|properties|policies|capable|type|expir\w*|endpoint\w*)$", re.I
)

# A value as a log line prints it: quoted (spaces allowed; an unclosed quote runs to the end of the line)
# or one bare word.
_QUOTED = r"\"(?:[^\"\\\n]|\\.)*\"?|'(?:[^'\\\n]|\\.)*'?"
_VALUE = rf"{_QUOTED}|[^\s\"',;&]+"
_KEY_WORDS = r"passphrase|password|passwd|pwd|secret|token|apikey|api_key"
_PS_SWITCHES = r"(?:\s+-(?:AsPlainText|Force|String)\b(?::\$\w+)?)*"

# Each pattern masks its group "v" and keeps everything else, so the line still says what was masked.
_INLINE = [
    # key=value and "key": "value" forms, as connection strings (Pwd=), JSON bodies and YAML print them
    re.compile(rf"\b(?P<name>[\w-]*(?:{_KEY_WORDS})[\w-]*)\b[\"']?[ \t]*[=:][ \t]*(?P<v>{_VALUE})", re.I),
    re.compile(r"\bAuthorization[\"']?[ \t]*[=:][ \t]*[\"']?(?:(?:Basic|Bearer|Negotiate|NTLM)[ \t]+)?"
               r"(?P<v>[^\s\"',;]+)", re.I),
    re.compile(r"\bBearer\s+(?P<v>[A-Za-z0-9\-._~+/]+=*)", re.I),
    # URL user-info: scheme://user:password@host
    re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/:@]*:(?P<v>[^\s/]+)@", re.I),
    # PowerShell: ConvertTo-SecureString [-String] 'x' [-AsPlainText] [-Force]; a $variable is no secret
    re.compile(rf"\bConvertTo-SecureString{_PS_SWITCHES}\s+(?P<v>{_QUOTED}|[^\s\-$(\"'|;][^\s|;)]*)", re.I),
    re.compile(rf"(?P<v>{_QUOTED})\s*\|\s*ConvertTo-SecureString\b", re.I),
    # a PEM private key, also when the line was cut before its END line
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?P<v>[\s\S]+?)(?=-----END [A-Z ]*PRIVATE KEY-----|\Z)"),
]
_known_values: set[str] = set()


def register_secret(value: str | None) -> None:
    """Values read from the environment or files; any later appearance in a log line is masked."""
    if value and len(value) >= 4:
        _known_values.add(value)


def _masked(value: str) -> str:
    quote = value[:1]
    if quote in ("'", '"'):
        return f"{quote}{MASK}{quote if len(value) > 1 and value.endswith(quote) else ''}"
    return MASK


def _mask_value(match: re.Match[str]) -> str:
    name = match.groupdict().get("name")
    if name and _ABOUT_A_SECRET.search(name):
        return match.group(0)
    start, end = match.start("v") - match.start(), match.end("v") - match.start()
    whole = match.group(0)
    return f"{whole[:start]}{_masked(match.group('v'))}{whole[end:]}"


def redact(text: str) -> str:
    for value in _known_values:
        if value in text:
            text = text.replace(value, MASK)
    for pattern in _INLINE:
        text = pattern.sub(_mask_value, text)
    return text


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEYS.search(key)) and not _ABOUT_A_SECRET.search(key)


def _secret_item(key: Any, value: Any) -> bool:
    # A secret is text; a count or a flag under a secret-sounding key ("password_changes": 3) is not.
    return isinstance(key, str) and is_secret_key(key) and isinstance(value, (str, bytes))


def redact_data(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (MASK if _secret_item(k, v) else redact_data(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_data(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value
