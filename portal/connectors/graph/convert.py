"""Graph's JSON to the values of :mod:`.types`.

Results are read from Graph's JSON, not from the SDK's models: the generated ``Entity`` model
runs some 2,400 import statements for every object it deserializes (about 5 ms per user here),
which turns 10,000 users into 40 s; reading the same pages as JSON takes a fraction of a second.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from portal.frozen import frozen_instance as _frozen

from .types import (
    AuditTarget,
    AuthMethod,
    DirectoryAudit,
    EntraGroup,
    EntraUser,
    GroupMember,
    ProvisioningError,
    RegistrationDetails,
)


def _texts(doc: Mapping[str, Any], key: str) -> tuple[str, ...]:
    values = doc.get(key)
    if not values:
        return ()
    return tuple([v if type(v) is str else str(v) for v in values if v is not None])


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime) or value is None:
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _provisioning_errors(values: Iterable[Any] | None) -> tuple[ProvisioningError, ...]:
    if not values:
        return ()
    return tuple(
        ProvisioningError(e.get("category"), e.get("propertyCausingError"), e.get("value"),
                          _parse_time(e.get("occurredDateTime")))
        for e in values or () if isinstance(e, dict)
    )


_USER_FIELDS = frozenset({
    "id", "userPrincipalName", "displayName", "mail", "mailNickname", "proxyAddresses", "accountEnabled", "userType",
    "onPremisesSyncEnabled", "onPremisesImmutableId", "onPremisesDistinguishedName", "onPremisesSamAccountName",
    "onPremisesDomainName", "onPremisesLastSyncDateTime", "authorizationInfo", "onPremisesProvisioningErrors",
    "createdDateTime",
})
_GROUP_FIELDS = frozenset({
    "id", "displayName", "mail", "mailNickname", "mailEnabled", "securityEnabled", "groupTypes", "proxyAddresses",
    "description", "onPremisesSyncEnabled", "onPremisesSecurityIdentifier", "onPremisesSamAccountName",
    "onPremisesDomainName", "onPremisesLastSyncDateTime", "onPremisesProvisioningErrors", "createdDateTime",
})


def _extra(doc: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in known and not k.startswith("@odata.")}


def _user(doc: Mapping[str, Any]) -> EntraUser:
    info = doc.get("authorizationInfo") or {}
    return _frozen(
        EntraUser,
        id=str(doc.get("id")),
        user_principal_name=doc.get("userPrincipalName"),
        display_name=doc.get("displayName"),
        mail=doc.get("mail"),
        mail_nickname=doc.get("mailNickname"),
        proxy_addresses=_texts(doc, "proxyAddresses"),
        account_enabled=doc.get("accountEnabled"),
        user_type=doc.get("userType"),
        on_premises_sync_enabled=doc.get("onPremisesSyncEnabled"),
        on_premises_immutable_id=doc.get("onPremisesImmutableId"),
        on_premises_distinguished_name=doc.get("onPremisesDistinguishedName"),
        on_premises_sam_account_name=doc.get("onPremisesSamAccountName"),
        on_premises_domain_name=doc.get("onPremisesDomainName"),
        on_premises_last_sync=_parse_time(doc.get("onPremisesLastSyncDateTime")),
        certificate_user_ids=_texts(info, "certificateUserIds") if isinstance(info, dict) else (),
        provisioning_errors=_provisioning_errors(doc.get("onPremisesProvisioningErrors")),
        created=_parse_time(doc.get("createdDateTime")),
        extra=_extra(doc, _USER_FIELDS),
    )


def _group(doc: Mapping[str, Any]) -> EntraGroup:
    return _frozen(
        EntraGroup,
        id=str(doc.get("id")),
        display_name=doc.get("displayName"),
        mail=doc.get("mail"),
        mail_nickname=doc.get("mailNickname"),
        mail_enabled=doc.get("mailEnabled"),
        security_enabled=doc.get("securityEnabled"),
        group_types=_texts(doc, "groupTypes"),
        proxy_addresses=_texts(doc, "proxyAddresses"),
        description=doc.get("description"),
        on_premises_sync_enabled=doc.get("onPremisesSyncEnabled"),
        on_premises_security_identifier=doc.get("onPremisesSecurityIdentifier"),
        on_premises_sam_account_name=doc.get("onPremisesSamAccountName"),
        on_premises_domain_name=doc.get("onPremisesDomainName"),
        on_premises_last_sync=_parse_time(doc.get("onPremisesLastSyncDateTime")),
        provisioning_errors=_provisioning_errors(doc.get("onPremisesProvisioningErrors")),
        created=_parse_time(doc.get("createdDateTime")),
        extra=_extra(doc, _GROUP_FIELDS),
    )


def _member(doc: Mapping[str, Any]) -> GroupMember:
    odata_type = str(doc.get("@odata.type") or "")
    return _frozen(
        GroupMember,
        id=str(doc.get("id")),
        kind=odata_type.rsplit(".", 1)[-1] if odata_type else "directoryObject",
        display_name=doc.get("displayName"),
        user_principal_name=doc.get("userPrincipalName"),
        mail=doc.get("mail"),
        on_premises_sync_enabled=doc.get("onPremisesSyncEnabled"),
        security_enabled=doc.get("securityEnabled"),
        mail_enabled=doc.get("mailEnabled"),
        group_types=_texts(doc, "groupTypes"),
        proxy_addresses=_texts(doc, "proxyAddresses"),
    )


def _registration(doc: Mapping[str, Any]) -> RegistrationDetails:
    return _frozen(
        RegistrationDetails,
        id=str(doc.get("id")),
        user_principal_name=doc.get("userPrincipalName"),
        user_display_name=doc.get("userDisplayName"),
        user_type=doc.get("userType"),
        is_admin=doc.get("isAdmin"),
        is_mfa_capable=doc.get("isMfaCapable"),
        is_mfa_registered=doc.get("isMfaRegistered"),
        is_passwordless_capable=doc.get("isPasswordlessCapable"),
        is_sspr_capable=doc.get("isSsprCapable"),
        is_sspr_enabled=doc.get("isSsprEnabled"),
        is_sspr_registered=doc.get("isSsprRegistered"),
        is_system_preferred_method_enabled=doc.get("isSystemPreferredAuthenticationMethodEnabled"),
        system_preferred_methods=_texts(doc, "systemPreferredAuthenticationMethods"),
        methods_registered=_texts(doc, "methodsRegistered"),
        user_preferred_method_for_secondary_authentication=doc.get("userPreferredMethodForSecondaryAuthentication"),
        last_updated=_parse_time(doc.get("lastUpdatedDateTime")),
    )


def _audit(doc: Mapping[str, Any]) -> DirectoryAudit:
    initiator = doc.get("initiatedBy") or {}
    user = initiator.get("user") or {}
    app = initiator.get("app") or {}
    targets = tuple(
        _frozen(
            AuditTarget,
            id=t.get("id"), display_name=t.get("displayName"), type=t.get("type"),
            user_principal_name=t.get("userPrincipalName"),
            modified_properties=tuple((p.get("displayName"), p.get("oldValue"), p.get("newValue"))
                                      for p in t.get("modifiedProperties") or () if isinstance(p, dict)),
        )
        for t in doc.get("targetResources") or () if isinstance(t, dict)
    )
    return _frozen(
        DirectoryAudit,
        id=str(doc.get("id")),
        activity=doc.get("activityDisplayName"),
        activity_time=_parse_time(doc.get("activityDateTime")),
        category=doc.get("category"),
        result=doc.get("result"),
        result_reason=doc.get("resultReason"),
        operation_type=doc.get("operationType"),
        logged_by_service=doc.get("loggedByService"),
        correlation_id=doc.get("correlationId"),
        initiated_by_user_id=user.get("id"),
        initiated_by_upn=user.get("userPrincipalName"),
        initiated_by_app=app.get("displayName") or app.get("appId"),
        targets=targets,
        additional_details={kv.get("key"): kv.get("value") for kv in doc.get("additionalDetails") or ()
                            if isinstance(kv, dict) and kv.get("key")},
    )


def _auth_method(doc: Mapping[str, Any]) -> AuthMethod:
    odata_type = doc.get("@odata.type")
    method = (odata_type or "").rsplit(".", 1)[-1]
    method = method[: -len("AuthenticationMethod")] if method.endswith("AuthenticationMethod") else method
    details = {k: v for k, v in doc.items() if k not in ("id", "@odata.type", "displayName", "createdDateTime")}
    return _frozen(
        AuthMethod,
        id=str(doc.get("id")),
        method=method or "unknown",
        odata_type=odata_type,
        display_name=doc.get("displayName"),
        created=_parse_time(doc.get("createdDateTime")),
        details=details,
    )


DEFAULT_USER_SELECT: tuple[str, ...] = (
    "id", "userPrincipalName", "displayName", "mail", "mailNickname", "proxyAddresses", "accountEnabled", "userType",
    "onPremisesSyncEnabled", "onPremisesImmutableId", "onPremisesDistinguishedName", "onPremisesSamAccountName",
    "onPremisesDomainName", "onPremisesLastSyncDateTime", "createdDateTime",
)
DEFAULT_GROUP_SELECT: tuple[str, ...] = (
    "id", "displayName", "mail", "mailNickname", "mailEnabled", "securityEnabled", "groupTypes", "proxyAddresses",
    "description", "onPremisesSyncEnabled", "onPremisesSecurityIdentifier", "onPremisesSamAccountName",
    "onPremisesDomainName", "onPremisesLastSyncDateTime", "createdDateTime",
)
DEFAULT_MEMBER_SELECT: tuple[str, ...] = ("id", "displayName", "userPrincipalName", "mail")
# What a member is beyond its kind: synchronized from AD or cloud-only; for a group, security or mail.
MEMBER_KIND_SELECT: tuple[str, ...] = ("id", "displayName", "onPremisesSyncEnabled", "securityEnabled", "mailEnabled",
                                       "groupTypes")
# A member as Exchange Online shows it: its addresses (the primary is the ``SMTP:`` one), synced or cloud-only.
MEMBER_ADDRESS_SELECT: tuple[str, ...] = (*MEMBER_KIND_SELECT, "mail", "proxyAddresses")
