"""The values of a fix whose target is Exchange Online, read and written in AD's attribute names.

A cloud-managed object (its source of authority is the cloud, or a mailbox with ``IsExchangeCloudManaged``) and a
contact created in Exchange Online take no value from AD: their addresses are changed with the Set-* cmdlet of
the recipient's type (portal.connectors.exchange builds and checks the parameters). The plan, the apply job's
drift check, the backup and the undo all see the values through :func:`read_values` in the same shape AD's
values have, so one plan format serves both directories.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# AD attribute (lower case) -> the Exchange Online recipient property that holds the same value.
PROPERTY = {"proxyaddresses": "EmailAddresses", "mail": "PrimarySmtpAddress", "mailnickname": "Alias",
            "displayname": "DisplayName", "targetaddress": "ExternalEmailAddress"}


def fixable_in_exchange(attribute: str) -> bool:
    return attribute.lower() in PROPERTY


def _values(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def read_values(exchange: Any, wanted: Mapping[str, tuple[str, set[str]]]
                ) -> tuple[dict[str, dict[str, list[str]]], dict[str, str]]:
    """``wanted``: finding DN -> (Entra object id, AD attribute names). Returns the values in AD's names per DN
    (a recipient that is gone is left out, as :func:`fixes.current_values` leaves out a gone AD object) and
    each recipient's RecipientTypeDetails, which picks the Set-* cmdlet."""
    from portal.connectors.exchange.errors import ObjectNotFound

    values: dict[str, dict[str, list[str]]] = {}
    kinds: dict[str, str] = {}
    for dn, (identity, attributes) in wanted.items():
        try:
            recipient = exchange.get_recipient(identity)
        except ObjectNotFound:
            continue
        raw = recipient.raw
        values[dn] = {a: _values(raw.get(PROPERTY[a.lower()])) for a in attributes if fixable_in_exchange(a)}
        kinds[dn] = recipient.recipient_type_details or ""
    return values, kinds


def write_values(exchange: Any, *, identity: str, recipient_type_details: str,
                 replace: Mapping[str, list[str]]) -> None:
    """One Set-* call for one recipient: every attribute of the plan for it at once."""
    changes: dict[str, Any] = {}
    for attribute, values in replace.items():
        prop = PROPERTY[attribute.lower()]
        if prop == "EmailAddresses":
            changes[prop] = list(values)
        else:
            changes[prop] = values[0] if values else None
    exchange.set_recipient(identity, recipient_type_details=recipient_type_details, changes=changes)
