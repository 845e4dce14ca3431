"""Which Active Directory attributes the Directory pages may read and show: the one list.

An allowlist, not a denylist. AD holds secrets next to ordinary attributes (LAPS passwords,
BitLocker recovery keys, password hashes, gMSA passwords, credentials in ``userParameters``), and a
schema extension can add new ones any day, so the pages ask the server for named attributes only and
show nothing else. ``SECRET_ATTRIBUTES`` and ``SECRET_CLASSES`` name what must never appear even if
someone later widens the allowlist: a unit test holds the two lists apart, and every read is checked
against both.
"""

from __future__ import annotations

import re

# Who the object is, and where it sits.
IDENTITY = (
    "cn", "name", "displayName", "givenName", "sn", "initials", "sAMAccountName", "userPrincipalName",
    "distinguishedName", "objectClass", "objectCategory", "objectGUID", "objectSid", "description",
)
# What a helpdesk asks about a person or a list.
ORGANISATION = ("department", "company", "title", "physicalDeliveryOfficeName", "telephoneNumber", "manager",
                "managedBy")
# Account state as helpdesk reads it (flags, dates); never a credential.
ACCOUNT = (
    "userAccountControl", "groupType", "whenCreated", "whenChanged", "uSNCreated", "uSNChanged", "pwdLastSet",
    "lockoutTime", "accountExpires", "lastLogonTimestamp",
    # The source anchor Entra Connect matches on, and the cloud object it was matched to.
    "mS-DS-ConsistencyGuid", "msDS-ExternalDirectoryObjectId",
)
# Addresses: what Entra ID's ProxyCalc and Exchange Online work from.
MAIL = ("mail", "mailNickname", "proxyAddresses", "targetAddress", "legacyExchangeDN", "showInAddressBook",
        "textEncodedORAddress")
EXCHANGE_RECIPIENT = (
    "msExchRecipientTypeDetails", "msExchRecipientDisplayType", "msExchRemoteRecipientType", "msExchVersion",
    "msExchArchiveStatus", "msExchMailboxGuid", "homeMDB", "msExchHideFromAddressLists",
    "msExchRequireAuthToSendTo", "msExchSenderHintTranslations",
    "msExchDynamicDLFilter", "msExchDynamicDLBaseDN", "msExchQueryFilter", "msExchQueryBaseDN",
)
# Delivery restrictions, moderation and delegation: what a DL migration must carry over.
EXCHANGE_DELIVERY = (
    "authOrig", "unauthOrig", "dLMemSubmitPerms", "dLMemRejectPerms", "altRecipient", "publicDelegates",
    "reportToOriginator", "reportToOwner", "oOFReplyToOriginator", "hideDLMembership",
    "msExchEnableModeration", "msExchModerationFlags", "msExchModeratedByLink", "msExchBypassModerationLink",
    "msExchBypassModerationFromDLMembersLink", "msExchCoManagedByLink", "msExchGroupJoinRestriction",
    "msExchGroupDepartRestriction",
)
CUSTOM = tuple(f"extensionAttribute{n}" for n in range(1, 16))
# Shown as their own panel; `member` itself is never read whole (the page reads it in ranges).
MEMBERSHIP = ("memberOf",)

SHOWN_ATTRIBUTES: tuple[str, ...] = (
    *IDENTITY, *ORGANISATION, *ACCOUNT, *MAIL, *EXCHANGE_RECIPIENT, *EXCHANGE_DELIVERY, *CUSTOM, *MEMBERSHIP,
)
# The search results table needs only these (a subset: the unit test checks it).
SEARCH_ATTRIBUTES = ("cn", "displayName", "mail", "mailNickname", "objectClass", "objectGUID", "userPrincipalName",
                     "groupType")
# Panels of their own on the object page, so left out of its attribute table.
PANEL_ATTRIBUTES = frozenset({"member", "memberof", "proxyaddresses", "objectguid", "objectsid"})

# Secrets AD may hold. Never in the allowlist, never shown, whatever a server returns.
SECRET_ATTRIBUTES = frozenset(a.lower() for a in (
    # passwords and their hashes
    "unicodePwd", "userPassword", "unixUserPassword", "clearTextPassword", "msSFU30Password", "dBCSPwd",
    "lmPwdHistory", "ntPwdHistory", "supplementalCredentials", "msDS-ManagedPassword",
    # userParameters is free-form and has carried credentials (RAS, Citrix, scripts)
    "userParameters",
    # LAPS (legacy and Windows LAPS)
    "ms-Mcs-AdmPwd", "msLAPS-Password", "msLAPS-EncryptedPassword", "msLAPS-EncryptedPasswordHistory",
    "msLAPS-EncryptedDSRMPassword", "msLAPS-EncryptedDSRMPasswordHistory",
    # BitLocker and TPM recovery material
    "msFVE-RecoveryPassword", "msFVE-KeyPackage", "msTPM-OwnerInformation", "msTPM-OwnerInformationTemp",
    "msTPM-SrkPubThumbprint",
    # trust, LSA secret and KDS root key material; key credentials (shadow credentials) and roaming keys
    "trustAuthIncoming", "trustAuthOutgoing", "initialAuthIncoming", "initialAuthOutgoing", "currentValue",
    "priorValue", "msKds-RootKeyData", "msDS-KeyCredentialLink", "msPKIAccountCredentials",
    "msPKI-CredentialRoamingTokens", "msPKIDPAPIMasterKeys", "msPKIRoamingTimeStamp",
))
# Names that look like a secret family but are not one (a date, not a password).
NOT_SECRET = frozenset({"pwdlastset"})
# Families a future schema may extend: anything matching is treated as secret.
SECRET_NAME = re.compile(r"pwd|password|credential|^mslaps-|^msfve-|^mstpm-|^mskds-|secret", re.IGNORECASE)

# Objects that exist to hold a secret: the pages refuse to show them at all.
SECRET_CLASSES = frozenset(c.lower() for c in (
    "msFVE-RecoveryInformation",  # BitLocker recovery password and key package
    "msTPM-InformationObject",  # TPM owner authorisation
    "msKds-ProvRootKey",  # root of every gMSA password
    "secret",  # LSA secrets in CN=System
    "trustedDomain",  # trust passwords
))


def is_secret(name: str) -> bool:
    base = name.split(";", 1)[0].lower()
    return base in SECRET_ATTRIBUTES or (base not in NOT_SECRET and bool(SECRET_NAME.search(base)))


_SHOWN = frozenset(a.lower() for a in SHOWN_ATTRIBUTES)


def is_shown(name: str) -> bool:
    """An attribute the pages may display (options such as ``;range=`` or ``;binary`` ignored)."""
    base = name.split(";", 1)[0].lower()
    return base in _SHOWN and not is_secret(base)


def secret_class(object_classes: tuple[str, ...] | list[str]) -> str | None:
    """The objectClass that makes the object a secret holder, if any."""
    return next((c for c in object_classes if c.lower() in SECRET_CLASSES), None)


# userAccountControl and groupType are bit fields: named, a helpdesk can read them.
UAC_FLAGS = (
    (0x0002, "ACCOUNTDISABLE"), (0x0010, "LOCKOUT"), (0x0020, "PASSWD_NOTREQD"), (0x0200, "NORMAL_ACCOUNT"),
    (0x0800, "INTERDOMAIN_TRUST_ACCOUNT"), (0x1000, "WORKSTATION_TRUST_ACCOUNT"), (0x2000, "SERVER_TRUST_ACCOUNT"),
    (0x10000, "DONT_EXPIRE_PASSWORD"), (0x40000, "SMARTCARD_REQUIRED"), (0x80000, "TRUSTED_FOR_DELEGATION"),
    (0x100000, "NOT_DELEGATED"), (0x400000, "DONT_REQ_PREAUTH"), (0x800000, "PASSWORD_EXPIRED"),
    (0x1000000, "TRUSTED_TO_AUTH_FOR_DELEGATION"),
)
GROUP_TYPE_FLAGS = ((0x1, "system"), (0x2, "global"), (0x4, "domain local"), (0x8, "universal"),
                    (0x80000000, "security"))


def flag_names(name: str, value: object) -> str:
    """Named bits of userAccountControl or groupType; '' for every other attribute."""
    lower = name.lower()
    if lower not in ("useraccountcontrol", "grouptype"):
        return ""
    try:
        number = int(str(value)) & 0xFFFFFFFF  # groupType is stored signed
    except ValueError:
        return ""
    if lower == "grouptype":
        names = [label for bit, label in GROUP_TYPE_FLAGS if number & bit]
        return ", ".join(names if number & 0x80000000 else [*names, "distribution"])
    return ", ".join(label for bit, label in UAC_FLAGS if number & bit)
