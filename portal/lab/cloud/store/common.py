"""Constants, errors and time helpers the lab cloud's store and service share."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

DB_NAME = "cloud.sqlite3"
SCHEMA_VERSION = 1

ObjectKind = Literal["user", "group", "contact"]
KINDS: tuple[str, ...] = ("user", "group", "contact")

# Exchange's fictitious server names appear in its error messages; the lab uses one of its own.
EXCHANGE_SERVER_FQDN = "LAB01A001DC001.LABPR01A001.PROD.OUTLOOK.COM"
EXCHANGE_DN_SUFFIX = "OU=Microsoft Exchange Hosted Organizations,DC=LABPR01A001,DC=PROD,DC=OUTLOOK,DC=COM"
EXCHANGE_ADMIN_GROUP = "Exchange Administrative Group (FYDIBOHF23SPDLT)"

# The Exchange properties that link to other recipients: stored as recipient ids.
RECIPIENT_LINK_PROPERTIES: tuple[str, ...] = (
    "ManagedBy",
    "AcceptMessagesOnlyFromSendersOrMembers",
    "RejectMessagesFromSendersOrMembers",
    "ModeratedBy",
    "GrantSendOnBehalfTo",
    "BypassModerationFromSendersOrMembers",
)

GROUP_RECIPIENT_TYPES = frozenset(
    {"MailUniversalDistributionGroup", "MailUniversalSecurityGroup", "RoomList", "MailNonUniversalGroup"}
)
MAILBOX_RECIPIENT_TYPES = frozenset(
    {"UserMailbox", "SharedMailbox", "RoomMailbox", "EquipmentMailbox", "SchedulingMailbox"}
)
MAIL_USER_RECIPIENT_TYPES = frozenset({"MailUser", "GuestMailUser", "RemoteUserMailbox"})
CONTACT_RECIPIENT_TYPES = frozenset({"MailContact"})
# Recipients that Get-Recipient lists (a plain "User" is only a link target, as in Exchange Online).
MAIL_RECIPIENT_TYPES = (
    GROUP_RECIPIENT_TYPES | MAILBOX_RECIPIENT_TYPES | MAIL_USER_RECIPIENT_TYPES | CONTACT_RECIPIENT_TYPES
    | frozenset({"GroupMailbox", "DynamicDistributionGroup"})
)
_RECIPIENT_TYPE = {
    **{t: "UserMailbox" for t in MAILBOX_RECIPIENT_TYPES},
    **{t: "MailUser" for t in MAIL_USER_RECIPIENT_TYPES},
    "MailContact": "MailContact",
    "MailUniversalDistributionGroup": "MailUniversalDistributionGroup",
    "RoomList": "MailUniversalDistributionGroup",
    "MailUniversalSecurityGroup": "MailUniversalSecurityGroup",
    "MailNonUniversalGroup": "MailNonUniversalGroup",
    "GroupMailbox": "MailUniversalDistributionGroup",
    "DynamicDistributionGroup": "DynamicDistributionGroup",
    "User": "User",
}

AUTH_METHOD_TYPES: dict[str, str] = {
    "password": "#microsoft.graph.passwordAuthenticationMethod",
    "microsoftAuthenticator": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
    "phone": "#microsoft.graph.phoneAuthenticationMethod",
    "fido2": "#microsoft.graph.fido2AuthenticationMethod",
    "windowsHelloForBusiness": "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
    "email": "#microsoft.graph.emailAuthenticationMethod",
    "softwareOath": "#microsoft.graph.softwareOathAuthenticationMethod",
    "temporaryAccessPass": "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
    "platformCredential": "#microsoft.graph.platformCredentialAuthenticationMethod",
}

# A build that honours onPremisesSyncBehavior (2.5.76.0 is the first, "Configure Group Source of Authority").
DEFAULT_CONNECT_VERSION = "2.5.79.0"
# Where the lab keeps onPremisesSyncBehavior.isCloudManaged on an object's document (a key no Graph
# projection shows): True handed to the cloud, False handed back and not yet re-applied by a cycle.
CLOUD_MANAGED_KEY = "@isCloudManaged"

DEFAULT_SCHEDULER: dict[str, Any] = {
    "AllowedSyncCycleInterval": "00:30:00",
    "CurrentlyEffectiveSyncCycleInterval": "00:30:00",
    "CustomizedSyncCycleInterval": None,
    "NextSyncCyclePolicyType": "Delta",
    "PurgeRunHistoryInterval": "7.00:00:00",
    "SyncCycleEnabled": True,
    "MaintenanceEnabled": True,
    "StagingModeEnabled": False,
    "SchedulerSuspended": False,
}



# --------------------------------------------------------------------------------------------
# errors


class StoreError(RuntimeError):
    """Base class of this module's errors."""


class NotFoundError(StoreError):
    """The object, recipient or row does not exist."""


class ConflictError(StoreError):
    """A value that must be unique in the tenant is already held by another object.

    The sync engine turns this into Entra Connect's ``AttributeValueMustBeUnique`` export error.
    """

    def __init__(self, *, attribute: str, value: str, existing_id: str) -> None:
        super().__init__(f"{attribute} {value!r} is already used by object {existing_id}")
        self.attribute = attribute
        self.value = value
        self.existing_id = existing_id


class UnsupportedQueryError(StoreError):
    """A condition names a property this entity cannot be filtered or sorted on."""

    def __init__(self, *, property_name: str, resource: str) -> None:
        super().__init__(f"property {property_name!r} of {resource} cannot be queried")
        self.property_name = property_name
        self.resource = resource


# --------------------------------------------------------------------------------------------
# time


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """Graph's usual timestamp form: ``2024-05-01T10:11:12Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_precise(moment: datetime) -> str:
    """Seven fractional digits, as Graph writes audit timestamps (and sortable as text)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


_DATETIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?)?(Z|[+-]\d{2}:\d{2})?$"
)


def parse_datetime(text: str) -> datetime:
    """ISO 8601 as Graph and OData write it (up to 7 fractional digits; no zone means UTC)."""
    match = _DATETIME_RE.match(text.strip())
    if not match:
        raise ValueError(f"not a date-time: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    moment = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])) * sign
        return (moment - offset).replace(tzinfo=UTC)
    return moment.replace(tzinfo=UTC)



def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _new_id() -> str:
    return str(uuid.uuid4())


def _hash_secret(secret: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()


def _encode_token(prefix: str, number: int, key: str | None = None) -> str:
    return f"{prefix}{number}" if key is None else f"{prefix}{number}:{key}"


def _decode_token(token: str | None) -> tuple[str, int, str | None]:
    """(mode, number, key): "s" after a seq, "o" at an offset, "k" after a (sort key, seq) pair."""
    if not token:
        return "", 0, None
    match = re.fullmatch(r"([so])(\d+)|k(\d+):(.*)", token, re.DOTALL)
    if not match:
        raise ValueError("invalid page token")
    if match.group(1):
        return match.group(1), int(match.group(2)), None
    return "k", int(match.group(3)), match.group(4)


# --------------------------------------------------------------------------------------------
# helpers


def _fake_sid() -> str:
    parts = [secrets.randbelow(2**32) for _ in range(4)]
    return "S-1-12-1-" + "-".join(str(p) for p in parts)


def _default_writeback(doc: Mapping[str, Any]) -> dict[str, Any]:
    # Entra ID leaves isEnabled null (null counts as enabled for Microsoft 365 groups, disabled
    # for security groups); onPremisesGroupType stays null until someone sets it.
    return {"isEnabled": None, "onPremisesGroupType": None}


def _normalise_addresses(primary: str, addresses: Iterable[str]) -> list[str]:
    """One ``SMTP:`` (the primary), other SMTP addresses demoted to ``smtp:``, order kept."""
    result = [f"SMTP:{primary}"]
    seen = {f"smtp:{primary}".lower()}
    for address in addresses:
        if ":" not in address.split("@", 1)[0]:
            address = f"smtp:{address}"
        prefix, value = address.split(":", 1)
        if prefix.lower() == "smtp":
            address = f"smtp:{value}"
        key = address.lower()
        if key in seen:
            continue
        seen.add(key)
        result.append(address)
    return result


def _exchange_dn(name: str, org: str) -> str:
    escaped = re.sub(r'([,\\#+<>;"=])', r"\\\1", name)
    return f"CN={escaped},OU={org},{EXCHANGE_DN_SUFFIX}"


def _recipient_defaults(type_details: str) -> dict[str, Any]:
    base: dict[str, Any] = {prop: [] for prop in RECIPIENT_LINK_PROPERTIES}
    base.update({
        "HiddenFromAddressListsEnabled": False,
        "RequireSenderAuthenticationEnabled": False,
        "ModerationEnabled": False,
        "SendModerationNotifications": "Always",
        "EmailAddressPolicyEnabled": False,
        "MaxSendSize": "Unlimited",
        "MaxReceiveSize": "Unlimited",
        **{f"CustomAttribute{i}": "" for i in range(1, 16)},
        **{f"ExtensionCustomAttribute{i}": [] for i in range(1, 6)},
    })
    if type_details in GROUP_RECIPIENT_TYPES:
        base.update({
            "GroupType": "Universal, SecurityEnabled" if type_details == "MailUniversalSecurityGroup" else "Universal",
            "RequireSenderAuthenticationEnabled": True,
            "MemberJoinRestriction": "Closed",
            "MemberDepartRestriction": "Closed",
            "ReportToManagerEnabled": False,
            "ReportToOriginatorEnabled": True,
            "SendOofMessageToOriginatorEnabled": False,
            "BypassNestedModerationEnabled": False,
            "HiddenGroupMembershipEnabled": False,
            "Description": [],
            "MailTip": None,
        })
    if type_details in MAIL_USER_RECIPIENT_TYPES or type_details in CONTACT_RECIPIENT_TYPES:
        base["ExternalEmailAddress"] = None
    if type_details in MAILBOX_RECIPIENT_TYPES:
        base.update({"UserPrincipalName": None, "ExchangeGuid": _new_id(), "ForwardingSmtpAddress": None})
    return base


def _registration_defaults() -> dict[str, Any]:
    return {
        "id": None,
        "userPrincipalName": None,
        "userDisplayName": None,
        "userType": "member",
        "isAdmin": False,
        "isSsprRegistered": False,
        "isSsprEnabled": False,
        "isSsprCapable": False,
        "isMfaRegistered": False,
        "isMfaCapable": False,
        "isPasswordlessCapable": False,
        "isSystemPreferredAuthenticationMethodEnabled": True,
        "methodsRegistered": [],
        "systemPreferredAuthenticationMethods": [],
        "userPreferredMethodForSecondaryAuthentication": "none",
        "lastUpdatedDateTime": None,
    }
