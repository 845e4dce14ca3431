"""Validation and scoping (pure): what is in scope, which values the cloud accepts, source anchors."""

from __future__ import annotations

import base64
from typing import Any

from portal.connectors.ad import DirectoryObject

from .constants import GROUP_TYPE_SECURITY, MAX_GROUP_MEMBERS, RTD_EXCLUDED_USERS, RTD_ROLE_GROUP


def source_anchor_of(obj: DirectoryObject) -> str | None:
    """sourceAnchor / immutableId: base64 of mS-DS-ConsistencyGuid when set (users), else of objectGUID."""
    if obj.kind == "user":
        consistency = obj.first("mS-DS-ConsistencyGuid")
        if isinstance(consistency, bytes) and len(consistency) == 16:
            return base64.b64encode(consistency).decode()
    return base64.b64encode(obj.guid.bytes_le).decode() if obj.guid else None


class _Attrs:
    """A DirectoryObject's attributes by lower-case name (the connector's lookups scan every key)."""

    __slots__ = ("obj", "values")

    def __init__(self, obj: DirectoryObject) -> None:
        self.obj = obj
        self.values = {k.lower(): v for k, v in obj.attributes.items()}

    def all(self, name: str) -> list[Any]:
        return self.values.get(name.lower()) or []

    def one(self, name: str) -> Any:
        values = self.values.get(name.lower())
        return values[0] if values else None

    def text(self, name: str) -> str | None:
        value = self.one(name)
        if value is None or isinstance(value, bytes):
            return None
        return value if value != "" else None

    def number(self, name: str) -> int | None:
        value = self.text(name)
        try:
            return int(value) if value is not None else None
        except ValueError:
            return None

    def flag(self, name: str) -> bool | None:
        value = self.text(name)
        return None if value is None else value.upper() == "TRUE"


def scope_problem(obj: DirectoryObject) -> str | None:
    """Why the out-of-box rules leave this AD object out of the sync, or None when it is synchronised."""
    a = _Attrs(obj)
    kind = obj.kind
    if a.flag("isCriticalSystemObject"):
        return "isCriticalSystemObject is set"
    if "\\0ACNF:" in obj.dn or "\nCNF:" in obj.dn:
        return "a replication conflict object"
    sam = a.text("sAMAccountName") or ""
    nickname = a.text("mailNickname") or ""
    rtd = a.number("msExchRecipientTypeDetails") if nickname else None
    if kind == "user":
        if not sam:
            return "no sAMAccountName"
        if sam.startswith(("AAD_", "MSOL_")) or sam == "SUPPORT_388945a0":
            return "a sync service or system account"
        if nickname.startswith("SystemMailbox{") or (nickname.startswith("CAS_") and "}" in nickname) or (
                sam.startswith("CAS_") and "}" in sam):
            return "an Exchange system mailbox"
        if rtd is not None and rtd & RTD_EXCLUDED_USERS:
            return "an Exchange recipient type that does not work in Exchange Online"
        return None
    if kind == "contact":
        if not a.text("mail"):
            return "a contact without mail"
        if not _mail_enabled(a):
            return "a contact that is not mail-enabled"
        if "(MSOL)" in (a.text("displayName") or "") and a.flag("msExchHideFromAddressLists"):
            return "a DirSync service contact"
        if nickname.startswith("CAS_") and "}" in nickname:
            return "an Exchange system contact"
        return None
    if kind == "group":
        if sam == "MSOL_AD_Sync_RichCoexistence":
            return "the legacy DirSync group"
        if rtd is not None and rtd & RTD_ROLE_GROUP:
            return "an Exchange role group"
        group_type = a.number("groupType") or 0
        if not group_type & GROUP_TYPE_SECURITY and not _mail_enabled(a):
            return "a distribution group that is not mail-enabled"
        if len(a.all("member")) >= MAX_GROUP_MEMBERS:
            return f"{MAX_GROUP_MEMBERS:,} members or more"
        return None
    return f"a {kind} object"


def _mail_enabled(a: _Attrs) -> bool:
    """The default configuration's mail-enabled test: proxyAddresses set, and an SMTP: value or mail with an @."""
    proxies = a.all("proxyAddresses")
    if not proxies:
        return False
    primary = next((p for p in proxies if isinstance(p, str) and p.startswith("SMTP:")), None)
    return bool(primary and "@" in primary) or "@" in (a.text("mail") or "")
