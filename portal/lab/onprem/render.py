"""Recipients as Exchange shows them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from portal.connectors import ad
from portal.connectors.ad import DirectoryObject
from portal.lab.opath import render as render_opath

from .filters import _Unrenderable, ldap_to_opath
from .names import canonical_name
from .recipient_types import _DETAILS_BY_VALUE, _TYPE_OF_DETAILS, GROUP_SECURITY_BIT
from .values import Proxy, stored_proxies


def _details(obj: DirectoryObject) -> str | None:
    value = obj.first("msExchRecipientTypeDetails")
    if value is not None:
        try:
            return _DETAILS_BY_VALUE.get(int(value), str(value))
        except ValueError:
            return str(value)
    return _inferred_details(obj)


def _inferred_details(obj: DirectoryObject) -> str | None:
    """What Exchange would make of a mail-enabled object nobody stamped yet (Update-Recipient stamps it)."""
    kind = obj.kind
    if kind == "contact":
        return "MailContact"
    if kind == "dynamic-dl":
        return "DynamicDistributionGroup"
    if kind == "group":
        group_type = int(obj.first("groupType", "0") or 0)
        return "MailUniversalSecurityGroup" if group_type & GROUP_SECURITY_BIT else "MailUniversalDistributionGroup"
    if kind == "user" and obj.first("targetAddress"):
        return "MailUser"
    return None


def _primary(proxies: Sequence[Proxy], obj: DirectoryObject) -> str:
    primary = next((p.address for p in proxies if p.is_primary), None)
    return primary or obj.first("mail") or ""


def _when(value: Any) -> str | None:
    if not value:
        return None
    try:
        moment = datetime.strptime(str(value).split(".")[0].rstrip("Z"), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return moment.isoformat().replace("+00:00", "Z")


def _flag(obj: DirectoryObject, attribute: str) -> bool:
    return str(obj.first(attribute, "")).upper() == "TRUE"


def render_recipient(obj: DirectoryObject) -> dict[str, Any]:
    """A recipient with the properties Exchange on-premises shows (PascalCase, as PSRP deserializes them)."""
    proxies = stored_proxies(obj.get("proxyAddresses"))
    details = _details(obj)
    name = obj.first("name") or obj.first("cn") or ad.parse_dn(obj.dn).rdn_value
    identity = canonical_name(obj.dn)
    doc: dict[str, Any] = {
        "Name": name,
        "DisplayName": obj.first("displayName") or name,
        "Alias": obj.first("mailNickname"),
        "Identity": identity,
        "Id": identity,
        "DistinguishedName": obj.dn,
        "Guid": str(obj.guid) if obj.guid else None,
        "OrganizationalUnit": canonical_name(str(ad.parse_dn(obj.dn).parent)),
        "PrimarySmtpAddress": _primary(proxies, obj),
        "WindowsEmailAddress": obj.first("mail") or "",
        "EmailAddresses": [str(p) for p in proxies],
        "RecipientType": _TYPE_OF_DETAILS.get(details or "", details),
        "RecipientTypeDetails": details,
        "LegacyExchangeDN": obj.first("legacyExchangeDN") or "",
        "HiddenFromAddressListsEnabled": _flag(obj, "msExchHideFromAddressLists"),
        "RequireSenderAuthenticationEnabled": _flag(obj, "msExchRequireAuthToSendTo"),
        "ExternalDirectoryObjectId": obj.first("msDS-ExternalDirectoryObjectId") or "",
        # On-premises objects are the source, never synchronized into Exchange on-premises.
        "IsDirSynced": False,
        "EmailAddressPolicyEnabled": False,
        "ObjectClass": list(obj.object_classes),
        "WhenCreatedUTC": _when(obj.first("whenCreated")),
        "WhenChangedUTC": _when(obj.first("whenChanged")),
    }
    for i in range(1, 16):
        doc[f"CustomAttribute{i}"] = obj.first(f"extensionAttribute{i}") or ""
    if obj.kind in ("contact", "user"):
        doc["ExternalEmailAddress"] = obj.first("targetAddress") or None
    if obj.kind == "user":
        doc["UserPrincipalName"] = obj.first("userPrincipalName") or ""
        doc["SamAccountName"] = obj.first("sAMAccountName") or ""
    if obj.kind in ("group", "dynamic-dl"):
        doc["ManagedBy"] = [canonical_name(v) for v in obj.get("managedBy")]
    if obj.kind == "group":
        group_type = int(obj.first("groupType", "0") or 0)
        doc["GroupType"] = "Universal, SecurityEnabled" if group_type & GROUP_SECURITY_BIT else "Universal"
        doc["SamAccountName"] = obj.first("sAMAccountName") or ""
    if obj.kind == "dynamic-dl":
        doc.update(_filter_view(obj))
    return doc


def _filter_view(obj: DirectoryObject) -> dict[str, Any]:
    ldap_text = obj.first("msExchDynamicDLFilter") or ""
    base = obj.first("msExchDynamicDLBaseDN")
    try:
        opath = render_opath(ldap_to_opath(ldap_text)) if ldap_text else ""
        filter_type = "Custom"
    except _Unrenderable:
        # Exchange shows a filter it cannot express in OPATH (an Exchange 2003 one) as Legacy.
        opath, filter_type = "", "Legacy"
    return {
        "RecipientFilter": opath,
        "LdapRecipientFilter": ldap_text,
        "RecipientFilterType": filter_type,
        "IncludedRecipients": None,
        "RecipientContainer": canonical_name(base) if base else None,
        "ExpansionServer": "",
    }
