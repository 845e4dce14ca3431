"""What Entra ID refuses at export (DataValidationFailed): pure checks shared by the lab's sync engine and the
product's Address repair scan, so that what the portal predicts is what the (lab) sync server does.

Sources: "Mapping to the certificateUserIds attribute in Microsoft Entra ID" (up to 10 values, 1024 characters
each, unique in the tenant, the ``X509:<Mapping>`` prefixes case-sensitive); "Prepare for directory
synchronization" (UPN: 113 characters, 64 before the @, 48 after it; the characters allowed).
"""

from __future__ import annotations

import re

__all__ = ["CERTIFICATE_MAPPINGS", "MAX_CERTIFICATE_USER_IDS", "MAX_CERTIFICATE_USER_ID_LENGTH",
           "certificate_user_id_problem", "upn_problem"]


_UPN_LOCAL = re.compile(r"[A-Za-z0-9'.\-_!#^~]+")
# The mapping types the article lists; <SR> (serial number) only follows an <I> (issuer).
CERTIFICATE_MAPPINGS = ("PN", "RFC822", "I", "S", "SKI", "SHA1-PUKEY")
_CERT_MAPPING = re.compile(r"<(PN|RFC822|SKI|SHA1-PUKEY|S|I)>(.+)", re.DOTALL)
MAX_CERTIFICATE_USER_IDS = 10
MAX_CERTIFICATE_USER_ID_LENGTH = 1024


def upn_problem(upn: str) -> str | None:
    """Why Entra ID refuses this userPrincipalName (after the suffix rule), or None."""
    local, sep, domain = upn.rpartition("@")
    if not sep or not local:
        return "it has no user name before the @"
    if len(upn) > 113 or len(local) > 64 or len(domain) > 48:
        return "it is longer than 113 characters, or than 64 before the @ or 48 after it"
    if not _UPN_LOCAL.fullmatch(local):
        return "the user name holds characters other than A-Z a-z 0-9 ' . - _ ! # ^ ~"
    if local.endswith("."):
        return "the user name ends with a period"
    return None


def certificate_user_id_problem(value: str) -> str | None:
    """Why a certificateUserIds value is refused, or None (prefixes are case-sensitive)."""
    if len(value) > MAX_CERTIFICATE_USER_ID_LENGTH:
        return f"it is longer than {MAX_CERTIFICATE_USER_ID_LENGTH} characters"
    if not value.startswith("X509:"):
        return "it does not start with X509: (upper-case X; the prefix is case-sensitive)"
    match = _CERT_MAPPING.fullmatch(value[5:])
    if match is None:
        return "X509: is not followed by <PN>, <RFC822>, <I>, <S>, <SKI> or <SHA1-PUKEY> and a value"
    if match.group(1) == "I" and not re.search(r"<(S|SR)>.", match.group(2)):
        return "an <I> (issuer) mapping needs <S> (subject) or <SR> (serial number) after it"
    return None


