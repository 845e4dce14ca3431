"""certificateUserIds, read from the AD attribute the sync rule maps (ADDRESS_REPAIR_CERTIFICATE_ATTRIBUTE).

"Mapping to the certificateUserIds attribute in Microsoft Entra ID": up to 10 values of up to 1024
characters, each unique in the tenant (see :mod:`.duplicates`), in one of the documented patterns
``X509:<PN>``, ``<RFC822>``, ``<I>…<S>…``, ``<S>``, ``<SKI>``, ``<SHA1-PUKEY>``, ``<I>…<SR>…``, whose
prefixes are case-sensitive. A sync rule that writes ``x509:`` gets every export refused with
``DataValidationFailed`` (the field notes); the correction is only the case of the prefix.
"""

from __future__ import annotations

import re

from portal.addressing.validation import (
    CERTIFICATE_MAPPINGS,
    MAX_CERTIFICATE_USER_ID_LENGTH,
    MAX_CERTIFICATE_USER_IDS,
    certificate_user_id_problem,
)

from .types import Action, Category, Entry, ErrorType, Finding, Fix, Rule, Severity
from .values import Unreadable, printable

__all__ = ["check_certificate_user_ids", "corrected_certificate_user_id"]

_TAG = re.compile(r"<([A-Za-z0-9-]+)>")


def corrected_certificate_user_id(value: str) -> str | None:
    """The value with its prefix and mapping tags in the documented case, or None when case is not the
    (only) problem."""
    if value[:5].lower() != "x509:":
        return None
    rest = _TAG.sub(lambda m: f"<{m.group(1).upper()}>" if m.group(1).upper() in (*CERTIFICATE_MAPPINGS, "SR")
                    else m.group(0), value[5:])
    fixed = "X509:" + rest
    return fixed if certificate_user_id_problem(fixed) is None else None


def check_certificate_user_ids(entry: Entry, attribute: str) -> list[Finding]:
    values = entry.values(attribute)
    found: list[Finding] = []

    def finding(value: str, why: str, *, errors: ErrorType, proposed: str | None = None,
                category: Category = Category.DATA_VALIDATION_FAILURE) -> Finding:
        fix = Fix(attribute=attribute, remove=(value,), add=(proposed,)) if proposed else None
        text = (f"certificateUserIds value {why}: Entra ID refuses the export of this user (DataValidationFailed "
                "predicted).")
        if proposed:
            text += f" Proposed: {printable(proposed)}."
        return Finding(dn=entry.dn, object_class=entry.object_class, attribute=attribute,
                       value=printable(value, 1024), rule=Rule.CERTIFICATE_USER_IDS, severity=Severity.ERROR,
                       errors=errors, action=Action.EDIT if proposed else Action.NONE, proposed_value=proposed,
                       category=category, explanation=text, beyond_idfix=True, fix=fix)

    if len(values) > MAX_CERTIFICATE_USER_IDS:
        found.append(finding(f"{len(values)} values", f"count {len(values)} is over {MAX_CERTIFICATE_USER_IDS}",
                             errors=ErrorType.LENGTH, category=Category.LARGE_ATTRIBUTE))
    for value in values:
        if isinstance(value, Unreadable):
            found.append(finding(str(value), f"is not text ({value.reason})", errors=ErrorType.FORMAT))
            continue
        problem = certificate_user_id_problem(value)
        if problem is None:
            continue
        if len(value) > MAX_CERTIFICATE_USER_ID_LENGTH:
            found.append(finding(value, problem, errors=ErrorType.LENGTH))
            continue
        proposed = corrected_certificate_user_id(value)
        if proposed is not None:
            why = ("starts with " + value[:5] + " where the case-sensitive prefix is X509:"
                   if value[:5] != "X509:" else "has a mapping type in the wrong case")
            found.append(finding(value, why, errors=ErrorType.CHARACTER, proposed=proposed))
        elif value[:5].lower() == "x509:" and (m := _TAG.match(value[5:])) and \
                m.group(1).upper() not in CERTIFICATE_MAPPINGS:
            found.append(finding(value, f"uses the unknown mapping type <{m.group(1)}>", errors=ErrorType.FORMAT))
        else:
            found.append(finding(value, problem, errors=ErrorType.FORMAT))
    return found
