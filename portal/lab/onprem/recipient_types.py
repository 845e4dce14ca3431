"""Exchange's recipient types: RecipientTypeDetails values, their RecipientType, what IncludedRecipients names."""

from __future__ import annotations

# msExchRecipientTypeDetails values (Exchange 2013+; the seed writes the same numbers).
RECIPIENT_TYPE_DETAILS: dict[str, int] = {
    "UserMailbox": 1, "LinkedMailbox": 2, "SharedMailbox": 4, "LegacyMailbox": 8, "RoomMailbox": 16,
    "EquipmentMailbox": 32, "MailContact": 64, "MailUser": 128, "MailUniversalDistributionGroup": 256,
    "MailNonUniversalGroup": 512, "MailUniversalSecurityGroup": 1024, "DynamicDistributionGroup": 2048,
    "PublicFolder": 4096, "SystemAttendantMailbox": 8192, "SystemMailbox": 16384, "MailForestContact": 32768,
    "User": 65536, "Contact": 131072, "UniversalDistributionGroup": 262144, "UniversalSecurityGroup": 524288,
    "NonUniversalGroup": 1048576, "DisabledUser": 2097152, "MicrosoftExchange": 4194304,
    "ArbitrationMailbox": 8388608, "MailboxPlan": 16777216, "LinkedUser": 33554432, "RoomList": 268435456,
    "DiscoveryMailbox": 536870912, "RoleGroup": 1073741824, "RemoteUserMailbox": 2147483648,
    "Computer": 4294967296, "RemoteRoomMailbox": 8589934592, "RemoteEquipmentMailbox": 17179869184,
    "RemoteSharedMailbox": 34359738368,
}
_DETAILS_BY_VALUE = {value: name for name, value in RECIPIENT_TYPE_DETAILS.items()}
# RecipientType -> the RecipientTypeDetails it covers (mail-enabled types only: Get-Recipient's world).
RECIPIENT_TYPES: dict[str, frozenset[str]] = {
    "UserMailbox": frozenset({"UserMailbox", "LinkedMailbox", "SharedMailbox", "LegacyMailbox", "RoomMailbox",
                              "EquipmentMailbox", "ArbitrationMailbox", "DiscoveryMailbox"}),
    "MailUser": frozenset({"MailUser", "RemoteUserMailbox", "RemoteRoomMailbox", "RemoteEquipmentMailbox",
                           "RemoteSharedMailbox"}),
    "MailContact": frozenset({"MailContact", "MailForestContact"}),
    "MailUniversalDistributionGroup": frozenset({"MailUniversalDistributionGroup", "RoomList"}),
    "MailUniversalSecurityGroup": frozenset({"MailUniversalSecurityGroup"}),
    "MailNonUniversalGroup": frozenset({"MailNonUniversalGroup"}),
    "DynamicDistributionGroup": frozenset({"DynamicDistributionGroup"}),
    "PublicFolder": frozenset({"PublicFolder"}),
}
_TYPE_OF_DETAILS = {details: rtype for rtype, members in RECIPIENT_TYPES.items() for details in members}
# msExchRecipientDisplayType Update-Recipient stamps per RecipientTypeDetails (values as the seed uses).
_DISPLAY_TYPES = {"MailContact": 6, "MailUser": 6, "MailUniversalDistributionGroup": 1,
                  "MailUniversalSecurityGroup": 1073741833, "DynamicDistributionGroup": 3}
# -IncludedRecipients values -> the RecipientTypeDetails each stands for.
INCLUDED_RECIPIENTS: dict[str, frozenset[str]] = {
    "MailboxUsers": RECIPIENT_TYPES["UserMailbox"] - {"RoomMailbox", "EquipmentMailbox"},
    "Resources": frozenset({"RoomMailbox", "EquipmentMailbox"}),
    "MailContacts": RECIPIENT_TYPES["MailContact"],
    "MailGroups": RECIPIENT_TYPES["MailUniversalDistributionGroup"] | RECIPIENT_TYPES["MailUniversalSecurityGroup"]
    | RECIPIENT_TYPES["MailNonUniversalGroup"] | RECIPIENT_TYPES["DynamicDistributionGroup"],
    "MailUsers": RECIPIENT_TYPES["MailUser"],
}
_CONDITIONALS = {"ConditionalDepartment": "Department", "ConditionalCompany": "Company",
                 "ConditionalStateOrProvince": "StateOrProvince",
                 **{f"ConditionalCustomAttribute{i}": f"CustomAttribute{i}" for i in range(1, 16)}}

GROUP_SECURITY_BIT = 0x80000000

# What a recipient read fetches (msExchQueryFilter is absent from the lab schema: see the docstring).
_RECIPIENT_ATTRIBUTES = (
    "objectClass", "objectGUID", "name", "cn", "displayName", "mailNickname", "mail", "proxyAddresses",
    "targetAddress", "legacyExchangeDN", "msExchRecipientTypeDetails", "msExchRecipientDisplayType",
    "msExchHideFromAddressLists", "msExchRequireAuthToSendTo", "groupType", "managedBy", "msExchDynamicDLFilter",
    "msExchDynamicDLBaseDN", "msDS-ExternalDirectoryObjectId", "whenCreated", "whenChanged", "sAMAccountName",
    "userPrincipalName", "description", *(f"extensionAttribute{i}" for i in range(1, 16)),
)
