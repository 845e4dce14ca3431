"""One line per scenario of the manifest: what makes its objects that case."""

from __future__ import annotations

from .values import BIG_LIST_MEMBERS

_DESCRIPTIONS: dict[str, str] = {
    "remote_mailbox_users": "remote mailboxes (RemoteUserMailbox 2147483648, display -2147483642, remote type 4), "
                            "targetAddress @contoso.mail.onmicrosoft.com, SMTP primary, smtp secondaries, X500; "
                            "the sample is well-formed bulk users, the total counts every remote mailbox",
    "mail_only_users_without_proxy_addresses": "users with mail, mailNickname and targetAddress but no "
                                               "proxyAddresses: ProxyCalc derives the cloud addresses from mail",
    "mail_only_users_with_only_x500_proxy": "users whose proxyAddresses holds only the X500 Exchange hybrid "
                                            "wrote back: a change of mail never reaches the cloud",
    "upn_differs_from_primary_smtp": "remote mailboxes whose userPrincipalName is not their primary SMTP address "
                                     "and is not among their proxyAddresses",
    "idfix_character": "IdFix 'character': invalid characters in mailNickname, proxyAddresses, userPrincipalName",
    "idfix_format": "IdFix 'format': malformed mail / smtp proxy address, mailNickname beginning with a period",
    "idfix_topleveldomain": "IdFix 'topleveldomain': non-routable .local UPN suffix and proxy address",
    "idfix_domainpart": "IdFix 'domainpart': invalid domain (empty label, underscore)",
    "idfix_localpart": "IdFix 'localpart': local part beginning with or holding consecutive periods",
    "idfix_duplicate": "IdFix 'duplicate': the same proxy address, mail or mailNickname on two objects",
    "idfix_blank": "IdFix 'blank': required values missing (mailNickname, mail, a contact's targetAddress, a "
                   "mail-enabled group's displayName)",
    "idfix_length": "IdFix 'length': UPN local part over 64, proxy address over 256, sAMAccountName over 20 "
                    "without UPN",
    "idfix_whitespace": "leading/trailing/inner whitespace (IdFix reports it as 'character')",
    "certificate_user_ids_lowercase_x509": "certificate user ids with the lower-case 'x509:' prefix the field notes' "
                                           "sync rule produced (DataValidationFailed in the cloud)",
    "certificate_user_ids_uppercase_x509": "certificate user ids with the correct 'X509:<PN>' prefix",
    "forwarding_to_list": "a remote mailbox whose altRecipient (forwarding) points at a distribution list",
    "remote_room_mailboxes": "remote room mailboxes (RemoteRoomMailbox 8589934592, display -2147481850, "
                             "remote type 36), disabled accounts",
    "mail_contacts": "mail contacts (MailContact 64, display 6) with targetAddress SMTP:<external address>",
    "big_list_filler_contacts": "mail contacts created only to take the big list above 5,000 members",
    "distribution_lists_flat": "universal distribution groups (groupType 8, MailUniversalDistributionGroup 256), "
                               "owner in managedBy, members users and contacts",
    "nested_lists_depth_4": "A contains B contains C contains D (depth 4 through member links)",
    "nesting_cycle": "X contains Y and Y contains X",
    "large_list": f"one list with {BIG_LIST_MEMBERS} members (read it in ranges)",
    "mail_enabled_security_groups": "universal security groups (-2147483640) mail-enabled "
                                    "(MailUniversalSecurityGroup 1024, display 1073741833)",
    "delivery_restrictions": "lists restricted with authOrig/dLMemSubmitPerms (accept) or unauthOrig/"
                             "dLMemRejectPerms (reject), naming users, contacts and groups",
    "moderated_list": "moderation on (msExchEnableModeration), moderators and bypass senders linked",
    "co_managed_list": "managedBy plus co-managers in msExchCoManagedByLink",
    "managed_by_non_security_group": "managedBy names a distribution group that is not security-enabled "
                                     "(not a valid owner in Exchange Online)",
    "managed_by_security_group": "managedBy names a mail-enabled security group (a valid owner)",
    "send_on_behalf_list": "publicDelegates (GrantSendOnBehalfTo) on a list",
    "room_list": "a room list (RoomList 268435456) holding remote room mailboxes",
    "protected_from_deletion": "Deny Everyone Delete+Delete Subtree on the list and Deny Delete Child on its OU",
    "list_with_non_mail_enabled_child": "a list containing a security group that is not mail-enabled",
    "lists_with_contacts": "lists whose members or accepted senders include mail contacts",
    "non_accepted_domain_lists": "lists with a secondary or primary address in legacy.local (not accepted)",
    "long_name_list": "a list whose name (cn, displayName) is 64 characters, the limit",
    "hidden_list": "a list hidden from address lists (msExchHideFromAddressLists)",
    "dynamic_distribution_lists": "msExchDynamicDistributionList objects with an LDAP recipient filter",
    "written_back_groups": "group writeback v2: CN=Group_<objectId> in the writeback OU, "
                           "msDS-ExternalDirectoryObjectId Group_<objectId>, cloud displayName",
    "writeback_name_needs_dn_escaping": "a written-back group whose displayName needs DN escaping "
                                        "(leading #, comma, plus, quotes, <>, ;, backslash, =)",
    "writeback_names_collide_in_case": "two written-back groups whose <displayName>_<last 12 of objectId> differ "
                                       "only in case",
    "writeback_display_name_over_64": "a written-back group whose displayName alone is over 64 characters",
}
