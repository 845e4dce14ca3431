"""Parameter binding: the cmdlet specs' parameters, as PowerShell binds them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .directory import _Session
from .errors import _BINDING, CmdletError, _conversion, _not_implemented, _parameter_not_found
from .recipient_types import _CONDITIONALS
from .values import _bool_value

_COMMON = frozenset({
    "ErrorAction", "WarningAction", "InformationAction", "ErrorVariable", "WarningVariable", "InformationVariable",
    "OutVariable", "OutBuffer", "PipelineVariable", "Verbose", "Debug", "Confirm", "WhatIf", "DomainController",
})
_CUSTOM = tuple(f"CustomAttribute{i}" for i in range(1, 16))
# Real parameters of these cmdlets the lab does not emulate (refused by name, not as unknown).
_UNSUPPORTED_SET = frozenset({
    "AcceptMessagesOnlyFrom", "AcceptMessagesOnlyFromDLMembers", "AcceptMessagesOnlyFromSendersOrMembers",
    "ArbitrationMailbox", "BypassModerationFromSendersOrMembers", "CreateDTMFMap", "EmailAddressPolicyEnabled",
    *(f"ExtensionCustomAttribute{i}" for i in range(1, 6)), "ForceUpgrade", "GrantSendOnBehalfTo",
    "IgnoreDefaultScope", "MailTip", "MailTipTranslations", "MaxReceiveSize", "MaxSendSize", "ModeratedBy",
    "ModerationEnabled", "RejectMessagesFrom", "RejectMessagesFromDLMembers", "RejectMessagesFromSendersOrMembers",
    "SendModerationNotifications", "SimpleDisplayName", "UMDtmfMap", "WindowsEmailAddress", "PhoneticDisplayName",
    "MacAttachmentFormat", "MessageBodyFormat", "MessageFormat", "UsePreferMessageFormat", "UseMapiRichTextFormat",
    "UserCertificate", "UserSMimeCertificate", "RemovePicture", "RemoveSpokenName", "SecondaryAddress",
    "SecondaryDialPlan", "MaxRecipientPerMessage", "ManagedBy", "Notes", "ReportToManagerEnabled",
    "ReportToOriginatorEnabled", "SendOofMessageToOriginatorEnabled", "ExpansionServer", "ForceMembershipRefresh",
    "IncludedRecipients", "DirectMembershipOnly", "MemberJoinRestriction", "MemberDepartRestriction",
    "BypassNestedModerationEnabled", "BypassSecurityGroupManagerCheck", "Description", "HiddenGroupMembershipEnabled",
    "RoomList", "IgnoreNamingPolicy", *_CONDITIONALS,
})
_UNSUPPORTED_GET = frozenset({"Anr", "Credential", "IgnoreDefaultScope", "ReadFromDomainController", "SortBy",
                              "RecipientType", "RecipientTypeDetails", "PropertySet", "Properties", "ManagedBy",
                              "Database", "Capabilities", "AuthenticationType", "BookmarkDisplayName",
                              "IncludeBookmarkObject", "IncludeSystemObjects", "IncludeManagerWithDisplayName",
                              "IncludeSoftDeletedRecipients", "RecipientPreviewFilter"})
_UNSUPPORTED_NEW_DDL = frozenset({"ArbitrationMailbox", "ModeratedBy", "ModerationEnabled",
                                  "SendModerationNotifications", "DirectMembershipOnly", "Organization",
                                  "OverrideRecipientQuotas"})


@dataclass(frozen=True)
class _Spec:
    name: str
    handler: Callable[[_Session, dict[str, Any]], Any]
    parameters: frozenset[str]
    required: tuple[str, ...] = ()
    unsupported: frozenset[str] = frozenset()
    confirm: bool = False  # destructive: prompts unless -Confirm:$false


def _bind(spec: _Spec, params: Mapping[str, Any]) -> dict[str, Any]:
    """PowerShell's binder, reduced: case-insensitive names, unknown names and repeats refused,
    mandatory parameters required (a remote session cannot prompt for them)."""
    implemented = {p.lower(): p for p in spec.parameters | _COMMON}
    unsupported = {p.lower(): p for p in spec.unsupported}
    bound: dict[str, Any] = {}
    for key, value in params.items():
        if not isinstance(key, str):
            raise _parameter_not_found(str(key))
        if key.startswith("@"):
            continue
        raw = key.lstrip("-")
        lowered = raw.lower()
        if lowered in unsupported and lowered not in implemented:
            raise _not_implemented(spec.name, f"the -{unsupported[lowered]} parameter")
        name = implemented.get(lowered)
        if name is None:
            raise _parameter_not_found(raw)
        if name in bound:
            raise CmdletError(_BINDING, f"Cannot bind parameter because parameter '{name}' is specified more than "
                              "once. To provide multiple values to parameters that can accept multiple values, use "
                              'the array syntax. For example, "-parameter value1,value2,value3".',
                              category="InvalidArgument", fq_error_id="ParameterAlreadyBound")
        bound[name] = value
    missing = [p for p in spec.required if bound.get(p) in (None, "", [])]
    if missing:
        raise CmdletError(_BINDING, "Cannot process command because of one or more missing mandatory parameters: "
                          f"{' '.join(missing)}.", category="InvalidArgument",
                          fq_error_id="MissingMandatoryParameter")
    return bound


def _result_size(bound: Mapping[str, Any]) -> int | None:
    raw = bound.get("ResultSize")
    if raw is None:
        return 1000
    if isinstance(raw, str) and raw.strip().lower() == "unlimited":
        return None
    try:
        size = int(raw)
    except (TypeError, ValueError):
        raise _conversion("ResultSize", raw, "Microsoft.Exchange.Data.Unlimited`1[System.UInt32]") from None
    if size < 1:
        raise _conversion("ResultSize", raw, "Microsoft.Exchange.Data.Unlimited`1[System.UInt32]")
    return size


def _what_if(bound: Mapping[str, Any]) -> bool:
    return "WhatIf" in bound and _bool_value(bound["WhatIf"] if bound["WhatIf"] is not None else True, "WhatIf")
