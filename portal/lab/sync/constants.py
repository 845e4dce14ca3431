"""The sync engine's fixed values: policies, files, Exchange values, what it reads and owns."""

from __future__ import annotations

from typing import Literal

from portal.connectors import ad
from portal.directory import writeback_names
from portal.lab.seed import CERTIFICATE_USER_IDS_ATTRIBUTE

Policy = Literal["Delta", "Initial"]
Kind = Literal["user", "group", "contact"]

# The sync server's words when a cycle is asked for while one runs (quoted in Entra Connect threads).
SYNC_ALREADY_RUNNING = "Sync is already running. Cannot start a new run till this one completes."

STATE_FILE = "entra-connect-state.json"
LOCK_FILE = "entra-connect.lock"
OPTIONS_FILE = "entra-connect-options.json"
STATE_VERSION = 1
RECYCLE_BIN_DAYS = 30  # Entra ID keeps soft-deleted users and groups for 30 days


# msExchRecipientTypeDetails of remote mailboxes -> the mailbox type they are in Exchange Online.
REMOTE_MAILBOX_TYPES: dict[int, str] = {
    2147483648: "UserMailbox",  # RemoteUserMailbox
    8589934592: "RoomMailbox",  # RemoteRoomMailbox
    17179869184: "EquipmentMailbox",  # RemoteEquipmentMailbox
    34359738368: "SharedMailbox",  # RemoteSharedMailbox
}
# On-premises mailboxes (UserMailbox 1, LinkedMailbox 2, SharedMailbox 4, RoomMailbox 16,
# EquipmentMailbox 32) and MailUser 128 are mail users in Exchange Online.
ONPREM_MAIL_USER_BITS = 1 | 2 | 4 | 16 | 32 | 128
RTD_ROOM_LIST = 268435456
RTD_ROLE_GROUP = 0x40000000
# The default configuration's "objects that would not work in Exchange Online" mask.
RTD_EXCLUDED_USERS = 0x21C07000
MAILBOX_TYPES = frozenset({"UserMailbox", "RoomMailbox", "EquipmentMailbox", "SharedMailbox"})
_RECIPIENT_TYPE = {
    **{t: "UserMailbox" for t in MAILBOX_TYPES},
    "MailUser": "MailUser",
    "MailContact": "MailContact",
    "MailUniversalDistributionGroup": "MailUniversalDistributionGroup",
    "RoomList": "MailUniversalDistributionGroup",
    "MailUniversalSecurityGroup": "MailUniversalSecurityGroup",
    "MailNonUniversalGroup": "MailNonUniversalGroup",
}

GROUP_TYPE_SECURITY = 0x80000000
GROUP_TYPE_UNIVERSAL = 0x8
UAC_ACCOUNTDISABLE = 0x2
MAX_GROUP_MEMBERS = 250_000

# groupWritebackConfiguration.onPremisesGroupType -> groupType; every written-back group is Universal.
WRITEBACK_GROUP_TYPES: dict[str, int] = {
    "universalDistributionGroup": GROUP_TYPE_UNIVERSAL,
    "universalSecurityGroup": -2147483640,
    "universalMailEnabledSecurityGroup": -2147483640,
}
WRITEBACK_MAIL_ENABLED = frozenset({"universalDistributionGroup", "universalMailEnabledSecurityGroup"})
CN_MAX = writeback_names.CN_MAX
WRITEBACK_TAIL = writeback_names.TAIL
WRITEBACK_NAME_MAX = writeback_names.NAME_MAX  # "<name>_<12 characters>" within cn's 64

# Recipient link properties and the on-premises attributes they come from.
LINKS: dict[str, tuple[str, ...]] = {
    "ManagedBy": ("managedBy", "msExchCoManagedByLink"),
    "ModeratedBy": ("msExchModeratedByLink",),
    "AcceptMessagesOnlyFromSendersOrMembers": ("authOrig", "dLMemSubmitPerms"),
    "RejectMessagesFromSendersOrMembers": ("unauthOrig", "dLMemRejectPerms"),
    "GrantSendOnBehalfTo": ("publicDelegates",),
    "BypassModerationFromSendersOrMembers": ("msExchBypassModerationLink",),
}
# Back-links: when the object they sit on is re-created, the objects they name must be re-read.
BACK_LINKS = (
    "memberOf", "managedObjects", "msExchCoManagedObjectsBL", "msExchModeratedObjectsBL", "authOrigBL",
    "unauthOrigBL", "dLMemSubmitPermsBL", "dLMemRejectPermsBL", "publicDelegatesBL", "msExchBypassModerationBL",
)

EXTENSION_ATTRIBUTES = tuple(f"extensionAttribute{n}" for n in range(1, 16))
SKELETON_ATTRIBUTES = ["objectGUID", "uSNChanged", "mS-DS-ConsistencyGuid", "msDS-ExternalDirectoryObjectId"]
READ_ATTRIBUTES = [
    "objectGUID", "objectSid", "objectClass", "uSNChanged", "cn", "displayName", "givenName", "sn",
    "userPrincipalName", "sAMAccountName", "mail", "mailNickname", "proxyAddresses", "targetAddress",
    "legacyExchangeDN", "department", "company", "title", "physicalDeliveryOfficeName", "description",
    "userAccountControl", "isCriticalSystemObject", "groupType", "member", "msExchEnableModeration",
    "msExchHideFromAddressLists", "msExchRequireAuthToSendTo", "reportToOriginator", "msExchRecipientTypeDetails",
    "mS-DS-ConsistencyGuid", "msDS-ExternalDirectoryObjectId", CERTIFICATE_USER_IDS_ATTRIBUTE,
    *{a for attrs in LINKS.values() for a in attrs}, *EXTENSION_ATTRIBUTES, *BACK_LINKS,
]
WRITEBACK_READ_ATTRIBUTES = ["cn", "displayName", "description", "groupType", "member", "mail", "mailNickname",
                             "proxyAddresses", "msDS-ExternalDirectoryObjectId"]

_SCOPE_FILTER = ad.kind_filter(["user", "group", "contact"])

# Properties the engine owns on each kind of cloud object (anything else -- licences, writeback
# configuration, cloud-only settings -- it never touches).
MANAGED_PROPERTIES: dict[str, tuple[str, ...]] = {
    "user": (
        "displayName", "givenName", "surname", "userPrincipalName", "mail", "mailNickname", "proxyAddresses",
        "onPremisesSyncEnabled", "onPremisesDistinguishedName", "onPremisesSamAccountName",
        "onPremisesSecurityIdentifier", "onPremisesImmutableId", "onPremisesUserPrincipalName",
        "onPremisesDomainName", "department", "companyName", "jobTitle", "officeLocation", "accountEnabled",
        "onPremisesExtensionAttributes", "authorizationInfo", "showInAddressList", "onPremisesProvisioningErrors",
    ),
    "group": (
        "displayName", "description", "mail", "mailEnabled", "mailNickname", "securityEnabled", "groupTypes",
        "proxyAddresses", "onPremisesSyncEnabled", "onPremisesSamAccountName", "onPremisesSecurityIdentifier",
        "onPremisesDomainName", "onPremisesDistinguishedName", "onPremisesProvisioningErrors",
    ),
    "contact": (
        "displayName", "givenName", "surname", "mail", "mailNickname", "proxyAddresses", "onPremisesSyncEnabled",
        "companyName", "department", "jobTitle", "onPremisesDistinguishedName", "onPremisesProvisioningErrors",
    ),
}
MANAGED_RECIPIENT_PROPERTIES = (
    "Name", "DisplayName", "Alias", "PrimarySmtpAddress", "EmailAddresses", "RecipientTypeDetails", "RecipientType",
    "IsDirSynced", "HiddenFromAddressListsEnabled", "RequireSenderAuthenticationEnabled", "ExternalEmailAddress",
    "UserPrincipalName", "ModerationEnabled", "ReportToOriginatorEnabled",
    *(f"CustomAttribute{n}" for n in range(1, 16)),
)

# What a mailbox whose Exchange attributes are cloud-managed (``IsExchangeCloudManaged``, "Cloud-managed remote
# mailboxes", 2025) no longer takes from AD: the addresses and the Exchange properties on the recipient, and the
# addresses on its Entra user. Identity attributes (names, UPN, department ...) still flow.
EXCHANGE_CLOUD_MANAGED_RECIPIENT = frozenset({
    "Alias", "PrimarySmtpAddress", "EmailAddresses", "HiddenFromAddressListsEnabled",
    "RequireSenderAuthenticationEnabled", "ModerationEnabled", *(f"CustomAttribute{n}" for n in range(1, 16))})
EXCHANGE_CLOUD_MANAGED_USER = frozenset({"mail", "mailNickname", "proxyAddresses", "showInAddressList"})
