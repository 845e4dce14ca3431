"""Recipient queries on Active Directory that the DL migration needs, built on :class:`.client.ActiveDirectory`.

The LDAP filters live here (connectors build filters; services do not). Dependencies are read from
the list's own back-links rather than searched for: one read answers "who names this list in their
delivery restrictions, moderation, delegates, forwarding or membership", and the OR-Name syntax of
the Exchange restriction links is not reliably searchable by DN.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from .client import ActiveDirectory
from .filters import all_of, any_of, eq, object_class, present
from .types import DirectoryObject

# The links on a list that name other recipients, and the Exchange property each becomes in the cloud.
LIST_LINKS: dict[str, str] = {
    "member": "Members",
    "managedBy": "ManagedBy",
    "msExchCoManagedByLink": "ManagedBy",
    "authOrig": "AcceptMessagesOnlyFrom",
    "dLMemSubmitPerms": "AcceptMessagesOnlyFromDLMembers",
    "unauthOrig": "RejectMessagesFrom",
    "dLMemRejectPerms": "RejectMessagesFromDLMembers",
    "msExchModeratedByLink": "ModeratedBy",
    "msExchBypassModerationLink": "BypassModerationFromSendersOrMembers",
    "publicDelegates": "GrantSendOnBehalfTo",
}

# Back-link on the list → the forward link other objects hold (an on-premises dependency).
DEPENDENCY_BACKLINKS: dict[str, str] = {
    "memberOf": "member",
    "managedObjects": "managedBy",
    "msExchCoManagedObjectsBL": "msExchCoManagedByLink",
    "authOrigBL": "authOrig",
    "dLMemSubmitPermsBL": "dLMemSubmitPerms",
    "unauthOrigBL": "unauthOrig",
    "dLMemRejectPermsBL": "dLMemRejectPerms",
    "msExchModeratedObjectsBL": "msExchModeratedByLink",
    "msExchBypassModerationBL": "msExchBypassModerationLink",
    "publicDelegatesBL": "publicDelegates",
    "altRecipientBL": "altRecipient",
}

# What a migrated original loses so that it no longer looks like a recipient to Exchange or the sync.
EXCHANGE_ATTRIBUTES: tuple[str, ...] = (
    "mail", "mailNickname", "proxyAddresses", "legacyExchangeDN", "targetAddress", "displayNamePrintable",
    "msExchRecipientTypeDetails", "msExchRecipientDisplayType", "msExchRemoteRecipientType",
    "msExchHideFromAddressLists", "msExchRequireAuthToSendTo", "msExchEnableModeration",
    "msExchModerationFlags", "msExchGroupDepartRestriction", "msExchGroupJoinRestriction",
    "reportToOriginator", "reportToOwner", "oOFReplyToOriginator",
    "authOrig", "unauthOrig", "dLMemSubmitPerms", "dLMemRejectPerms", "msExchCoManagedByLink",
    "msExchModeratedByLink", "msExchBypassModerationLink", "publicDelegates",
)

GROUP_ATTRIBUTES: tuple[str, ...] = (
    "cn", "name", "displayName", "mail", "mailNickname", "proxyAddresses", "groupType", "legacyExchangeDN",
    "msExchRecipientTypeDetails", "msExchRecipientDisplayType", "msExchHideFromAddressLists",
    "msExchRequireAuthToSendTo", "msExchEnableModeration", "nTSecurityDescriptor", "whenChanged",
    *LIST_LINKS, *DEPENDENCY_BACKLINKS,
)

MEMBER_ATTRIBUTES: tuple[str, ...] = (
    "cn", "displayName", "mail", "mailNickname", "proxyAddresses", "userPrincipalName", "groupType",
    "msExchRecipientTypeDetails", "targetAddress",
)


def mail_enabled_groups(directory: ActiveDirectory, *, base: str,
                        attributes: Sequence[str] = GROUP_ATTRIBUTES) -> Iterator[DirectoryObject]:
    """Every mail-enabled group under ``base`` (paged)."""
    flt = all_of(object_class("group"), present("mail"))
    return directory.search(filter=flt, base=base, attributes=list(attributes))


def direct_members(directory: ActiveDirectory, group_dn: str, *,
                   attributes: Sequence[str] = MEMBER_ATTRIBUTES) -> Iterator[DirectoryObject]:
    """The group's direct members with their attributes, in one paged search (memberOf back-link)
    instead of one read per member."""
    return directory.search(filter=eq("memberOf", group_dn), attributes=list(attributes))


def find_by_address(directory: ActiveDirectory, address: str, *,
                    attributes: Sequence[str] = GROUP_ATTRIBUTES, limit: int = 5) -> list[DirectoryObject]:
    """Objects whose mail or any smtp proxy address is ``address`` (matched literally)."""
    flt = any_of(eq("mail", address), eq("proxyAddresses", f"smtp:{address}"))
    return list(directory.search(filter=flt, attributes=list(attributes), limit=limit))


def _one_of_class_by_address(directory: ActiveDirectory, object_class_name: str,
                             address: str) -> DirectoryObject | None:
    flt = all_of(object_class(object_class_name), any_of(eq("mail", address), eq("proxyAddresses", f"smtp:{address}")))
    found = list(directory.search(filter=flt, attributes=["*"], limit=1))
    return found[0] if found else None


def find_contact_by_address(directory: ActiveDirectory, address: str) -> DirectoryObject | None:
    return _one_of_class_by_address(directory, "contact", address)


def find_dynamic_list_by_address(directory: ActiveDirectory, address: str) -> DirectoryObject | None:
    return _one_of_class_by_address(directory, "msExchDynamicDistributionList", address)

