"""The lab's sync engine: what Microsoft Entra Connect Sync does between the lab AD and the lab tenant.

One call of :func:`run_cycle` is one sync cycle (``Start-ADSyncSyncCycle``): import from AD, project into
the lab cloud (:class:`portal.lab.cloud.store.CloudStore`), then the writebacks into AD. :func:`sync_runner`
is the adapter the lab cloud's Entra Connect endpoint calls; :func:`due` tells the demo's loop when the
scheduler would start the next cycle. No Django here.

Sources (Microsoft Learn unless said otherwise) and what each one decides here
-------------------------------------------------------------------------------
* "Microsoft Entra Connect Sync: Understanding the default configuration" -- which users, contacts and
  groups are synchronised (the out-of-box scoping filters, see :func:`scope_problem`): a distribution group
  must be mail-enabled, a contact must have ``mail`` and ``proxyAddresses``, system and service accounts
  are left out; Exchange attributes only flow when ``mailNickname`` is set; ``displayName`` falls back to
  ``cn``.
* "Microsoft Entra Connect: When you have an existing tenant" -- hard match on the source anchor, then
  soft match on ``userPrincipalName`` or the primary SMTP address (``SMTP:`` value) for users, on the
  primary SMTP address for mail-enabled groups and contacts; only a cloud-managed object (no immutable
  id) is taken over, and then it gets the source anchor. ``BlockSoftMatchEnabled`` is
  :attr:`SyncOptions.block_soft_match`. Cloud users holding an admin role are not protected here (the
  store keeps no roles).
* "Understanding errors during Microsoft Entra synchronization" and "Identity synchronization and
  duplicate attribute resiliency" -- with resiliency (the default of every tenant) a duplicated
  ``proxyAddresses`` value or UPN is quarantined on the newcomer and reported in
  ``onPremisesProvisioningErrors`` (the UPN becomes ``<prefix>+<4 digits>@<initial domain>``); without it
  (:attr:`SyncOptions.duplicate_attribute_resiliency` False) the export fails with
  ``AttributeValueMustBeUnique`` (an update) or ``InvalidSoftMatch`` (an add), and a soft-match candidate
  of another object type gives ``ObjectTypeMismatch``.
* ``DataValidationFailed`` (error 0x8023134a): the field notes' certificateUserIds case, worded as the
  field notes quote the sync server ("Unable to update this object in Azure Active Directory, because the
  attribute [None], is not valid. ..."), and an invalid UPN (the rules of "Prepare for directory
  synchronization to Microsoft 365" / the Graph ``userPrincipalName`` property: ``A-Z a-z 0-9 ' . - _ ! #
  ^ ~`` before the ``@``, at most 64 characters there and 113 in all, no trailing period). The values
  follow "Mapping to the certificateUserIds attribute in Microsoft Entra ID": ``X509:<PN>``,
  ``<RFC822>``, ``<I>..<S>``, ``<S>``, ``<SKI>``, ``<SHA1-PUKEY>``, ``<I>..<SR>``, the prefix
  case-sensitive, at most 10 values of 1024 characters. The export is one operation per object, so when
  it fails *nothing* of that object reaches the cloud (the field notes: description and
  extensionAttribute1 were pending with the bad value and did not arrive either); a new object is not
  created. The error is recorded with ``store.add_export_error`` (retried, so ``RetryCount`` grows, every
  cycle) and cleared when the object exports.
* "How the proxyAddresses attribute is populated in Microsoft Entra ID" -- :mod:`portal.lab.proxycalc`,
  always given the cloud object's current addresses as ``previous``. The UPN suffix rule (an unverified
  suffix becomes the initial domain) comes from ProxyCalc's ``cloud_upn``.
* "Microsoft Entra Connect Sync: Attributes synchronized to Microsoft Entra ID", section "Exchange hybrid
  writeback" -- ``proxyAddresses`` gets *only* the X500 of the Exchange Online ``LegacyExchangeDN``
  (added, never replacing), ``msDS-ExternalDirectoryObjectId`` gets the cloud anchor ``User_<objectId>``.
  Done for users with an Exchange Online recipient. The product also stamps contacts and groups; the
  seed's groups already carry their X500, and contacts are left out to spare some 5,000 AD writes in the
  first cycle.
  msExchArchiveStatus, the safe/blocked sender hashes, msExchUCVoiceMailSettings and
  msExchUserHoldPolicies are not written: the lab cloud has no such data. A mailbox comes from a remote
  mailbox on-premises (``msExchRecipientTypeDetails`` RemoteUserMailbox, RemoteRoomMailbox, ...) or, for a
  user without Exchange attributes, from a licence in the cloud (a non-empty ``assignedLicenses``); the
  field notes: "When a license is assigned to an object that had only a mail address set an X500 address
  is generated in Exchange Online", after which ``mail`` no longer decides the cloud address.
  ``mS-DS-ConsistencyGuid`` is written with the objectGUID when empty ("Design concepts: using
  ms-DS-ConsistencyGuid as sourceAnchor", the default source anchor of new installations).
* "Plan for / Enable Microsoft Entra Connect group writeback" -- cloud groups (Microsoft 365 groups, and
  security groups enabled for it; ``writebackConfiguration.isEnabled`` null counts as enabled for
  Microsoft 365 groups only, "groupWritebackConfiguration resource type") go to one OU as
  ``CN=Group_<objectId>``, or ``CN=<displayName>_<last 12 characters of objectId>`` with "Writeback Group
  Distinguished Name with cloud Display Name"; all with the Universal scope (so universalSecurityGroup is
  groupType -2147483640, not the global -2147483646); "Disabling group writeback causes any groups that
  this feature created previously to be deleted from your local Active Directory on the next sync cycle"
  (the field notes: not in staging mode, where nothing is exported and the deletions stay pending). A
  group disabled for writeback on its own stays in AD (the documented default; the other behaviour is
  :attr:`SyncOptions.delete_groups_disabled_for_writeback`). The display-name part of the CN is cut to
  51 characters so that ``<name>_<12 characters>`` fits the 64 characters of ``cn`` -- the limit is the
  schema's, the exact cut the product applies was not found in its documentation; the name is computed by
  :mod:`portal.directory.writeback_names`, the code the portal's rename plan predicts it with.
* The field notes ("Enabling the cloud display name feature without deleting already synchronized
  groups") -- changing the DN option renames the written-back groups (a modify of the DN, pending in
  staging mode as an update whose CN comes from EscapeDNComponent), it does not delete them.

Decisions of the lab (not the product's words)
----------------------------------------------
* Delta import: every cycle lists the GUIDs (and ``uSNChanged``) of all objects in the sync OUs -- that
  is how deletions and moves out of scope are found without the DirSync control -- and reads the full
  attributes only of objects changed since the previous cycle's high-water mark (``highestCommittedUSN``
  read before the import, so the engine's own writebacks are re-imported at the next cycle, as Entra
  Connect's confirming import does). The mark is kept only while the DC (its NTDS Settings GUID), the
  base DN, the tenant and the number of synced cloud objects are unchanged; otherwise a delta falls back
  to a full import. Objects with export errors, licensed users lacking their mailbox, and objects whose
  links (membership, managedBy, delivery restrictions) point at an object re-created in this cycle are
  read again too.
* An object leaving scope is deleted from the lab cloud (the store has no recycle bin), and the engine
  keeps it 30 days in its own recycle bin (the state file): when it returns within that time it is
  re-created with the same object id, as a restore from Entra ID's soft-deleted objects would give.
* Engine state (high-water mark, recycle bin, written-back groups, last cycle's counts) lives in
  ``entra-connect-state.json`` beside the store's database; a ``flock`` on ``entra-connect.lock`` there
  keeps one cycle at a time across processes.
* Exchange Online recipients: a remote mailbox is a mailbox of the same kind whether or not the cloud
  user holds a licence; an on-premises mailbox or mail user is a MailUser; a user without Exchange
  attributes has no recipient until it is licensed. A new recipient takes as LegacyExchangeDN the
  ``/o=ExchangeLabs`` X500 the AD object already carries (what an earlier writeback put there), so a
  rebuilt lab cloud matches the seed's AD. Link properties only name objects that have a recipient.
* Exports to the cloud of one cycle are one store transaction; AD writes follow it.
* The wizard's group writeback page (on/off, OU, display-name DN option), when the lab page or a rehearsal set
  it in the store (``group_writeback_wizard``), overrides the options a cycle is given; each cycle records
  what it ran with (``group_writeback_effective``), which the lab's Entra Connect endpoint reports.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

from portal.connectors import ad
from portal.connectors.ad import ActiveDirectory, DirectoryObject
from portal.directory import writeback_names
from portal.lab import layout, proxycalc
from portal.lab.cloud.store import CloudStore
from portal.lab.cloud.store.common import ConflictError, NotFoundError, iso, parse_datetime, utc_now
from portal.lab.seed import CERTIFICATE_USER_IDS_ATTRIBUTE

__all__ = [
    "SYNC_ALREADY_RUNNING",
    "CycleResult",
    "ExportErrorRecord",
    "KindCounts",
    "SyncAlreadyRunning",
    "SyncError",
    "SyncOptions",
    "certificate_user_id_problem",
    "configure_runner",
    "due",
    "next_policy",
    "run_cycle",
    "scope_problem",
    "source_anchor_of",
    "sync_runner",
    "upn_problem",
    "writeback_cn",
]

Policy = Literal["Delta", "Initial"]
Kind = Literal["user", "group", "contact"]

# The sync server's words when a cycle is asked for while one runs (quoted in Entra Connect threads).
SYNC_ALREADY_RUNNING = "Sync is already running. Cannot start a new run till this one completes."

STATE_FILE = "entra-connect-state.json"
LOCK_FILE = "entra-connect.lock"
OPTIONS_FILE = "entra-connect-options.json"
STATE_VERSION = 1
RECYCLE_BIN_DAYS = 30  # Entra ID keeps soft-deleted users and groups for 30 days

# --- Exchange values ---------------------------------------------------------------------------

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
WRITEBACK_NAME_MAX = writeback_names.NAME_MAX

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

# --- errors and results ------------------------------------------------------------------------


class SyncError(RuntimeError):
    """A cycle could not run."""


class SyncAlreadyRunning(SyncError):
    """Another cycle holds the sync server (this process or another one)."""

    def __init__(self, message: str = SYNC_ALREADY_RUNNING) -> None:
        super().__init__(message)


@dataclass(frozen=True, kw_only=True)
class SyncOptions:
    """The Entra Connect server's configuration (the wizard's choices) for the lab's cycles."""

    latency_seconds: float = 0.0  # how long a cycle takes at least (the demo shows a busy sync server)
    staging_mode: bool | None = None  # None: the scheduler's StagingModeEnabled in the store
    exchange_hybrid: bool = True  # Exchange hybrid writeback (optional features page)
    consistency_guid_writeback: bool = True  # ms-DS-ConsistencyGuid as source anchor (written back)
    group_writeback_enabled: bool = True  # Group writeback (optional features page)
    writeback_display_name: bool = False  # "Writeback Group Distinguished Name with cloud Display Name"
    delete_groups_disabled_for_writeback: bool = False  # "Modify group writeback" doc's changed default
    duplicate_attribute_resiliency: bool = True  # on for every tenant since 2016
    block_soft_match: bool = False  # BlockSoftMatchEnabled of the tenant's sync features

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SyncOptions:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown sync options: {', '.join(sorted(unknown))}")
        return cls(**dict(data))


@dataclass
class KindCounts:
    adds: int = 0
    updates: int = 0
    deletes: int = 0


@dataclass(frozen=True)
class ExportErrorRecord:
    connector: str
    distinguished_name: str
    error_code: str
    attribute: str | None
    message: str


@dataclass
class CycleResult:
    """What one cycle did. ``as_dict()`` is what the run history keeps (``Get-ADSyncRunProfileResult``)."""

    policy: str
    effective_policy: str = ""
    run_id: int | None = None
    staging: bool = False
    started: datetime = field(default_factory=utc_now)
    finished: datetime | None = None
    duration_seconds: float = 0.0
    imported: int = 0  # objects read with all their attributes
    in_scope: int = 0  # objects listed in the sync OUs
    counts: dict[str, KindCounts] = field(
        default_factory=lambda: {k: KindCounts() for k in ("user", "group", "contact", "recipient")})
    membership_changes: int = 0
    export_errors: list[ExportErrorRecord] = field(default_factory=list)
    writebacks: dict[str, int] = field(default_factory=lambda: {
        "x500": 0, "external_directory_object_id": 0, "consistency_guid": 0, "group_adds": 0,
        "group_updates": 0, "group_renames": 0, "group_deletes": 0})
    pending_exports: int = 0
    cloud_writes: int = 0
    ad_writes: int = 0
    fallback_reason: str | None = None
    watermark: int | None = None
    orphaned_writeback_groups: int = 0
    soft_matches: int = 0
    touched: list[str] = field(default_factory=list)  # DNs whose cloud object changed (the first 100)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def result(self) -> str:
        """The run profile result as the sync server names it."""
        return "completed-export-errors" if self.export_errors else "success"

    @property
    def writes(self) -> int:
        return self.cloud_writes + self.ad_writes

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started"] = iso(self.started)
        data["finished"] = iso(self.finished) if self.finished else None
        data["Result"] = self.result
        data["export_errors"] = [asdict(e) for e in self.export_errors]
        return data


# --- validation (pure) ---------------------------------------------------------------------------

_UPN_LOCAL = re.compile(r"[A-Za-z0-9'.\-_!#^~]+")
_CERT_MAPPING = re.compile(r"<(PN|RFC822|SKI|SHA1-PUKEY|S|I)>(.+)", re.DOTALL)
MAX_CERTIFICATE_USER_IDS = 10
MAX_CERTIFICATE_USER_ID_LENGTH = 1024


def upn_problem(upn: str) -> str | None:
    """Why Entra ID refuses this userPrincipalName (after the suffix rule), or None."""
    local, sep, domain = upn.rpartition("@")
    if not sep or not local:
        return "it has no user name before the @"
    if len(upn) > 113 or len(local) > 64 or len(domain) > 48:
        return "it is longer than 113 characters, or than 64 before the @ or 48 after it"
    if not _UPN_LOCAL.fullmatch(local):
        return "the user name holds characters other than A-Z a-z 0-9 ' . - _ ! # ^ ~"
    if local.endswith("."):
        return "the user name ends with a period"
    return None


def certificate_user_id_problem(value: str) -> str | None:
    """Why a certificateUserIds value is refused, or None (prefixes are case-sensitive)."""
    if len(value) > MAX_CERTIFICATE_USER_ID_LENGTH:
        return f"it is longer than {MAX_CERTIFICATE_USER_ID_LENGTH} characters"
    if not value.startswith("X509:"):
        return "it does not start with X509: (upper-case X; the prefix is case-sensitive)"
    match = _CERT_MAPPING.fullmatch(value[5:])
    if match is None:
        return "X509: is not followed by <PN>, <RFC822>, <I>, <S>, <SKI> or <SHA1-PUKEY> and a value"
    if match.group(1) == "I" and not re.search(r"<(S|SR)>.", match.group(2)):
        return "an <I> (issuer) mapping needs <S> (subject) or <SR> (serial number) after it"
    return None


def writeback_cn(*, object_id: str, display_name: str | None, with_display_name: bool) -> str:
    """The cn group writeback gives a cloud group: ``Group_<id>`` or ``<name>_<last 12 of id>``.

    One computation with the portal's rename plan (:mod:`portal.directory.writeback_names`), so a
    rehearsal proves what the plan predicted. The value is unescaped; build the DN with ``ad.child_dn``.
    """
    return writeback_names.writeback_cn(object_id=object_id, display_name=display_name,
                                        with_display_name=with_display_name)


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


# --- engine state (the connector space's memory) ---------------------------------------------


@dataclass
class _State:
    tenant_id: str | None = None
    base_dn: str | None = None
    dc: str | None = None  # objectGUID of the DC's NTDS Settings object
    watermark: int | None = None
    synced_objects: int | None = None
    recycle_bin: dict[str, dict[str, Any]] = field(default_factory=dict)  # anchor -> id, kind, deleted, ...
    written_back: list[str] = field(default_factory=list)  # cloud group ids joined to an AD group

    @classmethod
    def load(cls, path: Path) -> _State:
        try:
            data = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return cls()
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            return cls()
        data.pop("version", None)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": STATE_VERSION, **asdict(self)}, indent=1, sort_keys=True))
        os.replace(tmp, path)


class _CycleLock:
    """One cycle at a time per lab cloud, across threads and processes (flock on a file beside the store)."""

    def __init__(self, store: CloudStore) -> None:
        self.path = store.path.parent / LOCK_FILE
        self.fd: int | None = None

    def __enter__(self) -> _CycleLock:
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SyncAlreadyRunning() from None
        self.fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


# --- the cycle -----------------------------------------------------------------------------------


@dataclass
class _Entry:
    """An object listed in the sync OUs (the import's skeleton)."""

    guid: UUID
    dn: str
    kind: str
    usn: int
    anchor: str | None
    writeback_id: str | None  # a written-back cloud group (msDS-ExternalDirectoryObjectId Group_<id>)


@dataclass
class _Plan:
    """What one in-scope AD object should be in the cloud."""

    attrs: _Attrs
    kind: Kind
    anchor: str
    dn: str
    guid: UUID
    oid: str | None  # the joined cloud object
    props: dict[str, Any]
    calc: proxycalc.ProxyCalcResult | None = None
    recipient_type: str | None = None
    recipient_props: dict[str, Any] = field(default_factory=dict)
    legacy_dn: str | None = None
    error: tuple[str, str | None, str] | None = None  # (code, attribute, message)
    quarantined: list[tuple[str, str]] = field(default_factory=list)  # (property, value)
    exported: bool = False
    added: bool = False
    restore_id: str | None = None  # the object id it had before it left the scope (recycle bin)
    soft_matched: bool = False


class _Cycle:
    def __init__(self, *, directory: ActiveDirectory, store: CloudStore, base_dn: str, policy: Policy,
                 options: SyncOptions, run_id: int | None) -> None:
        self.directory = directory
        self.store = store
        self.base_dn = str(ad.parse_dn(base_dn))
        self.policy = policy
        self.options = options
        scheduler = store.scheduler()
        self.staging = options.staging_mode if options.staging_mode is not None else bool(
            scheduler.get("StagingModeEnabled"))
        self.initial_domain = (store.initial_domain or layout.TENANT_DOMAIN).lower()
        self.verified = {d["DomainName"].lower() for d in store.list_accepted_domains()} | {self.initial_domain}
        connectors = store.sync_connectors()
        self.ad_connector = next((c["Name"] for c in connectors if c.get("Type") == "AD"), "lab.example")
        self.aad_connector = next((c["Name"] for c in connectors if c.get("Type") != "AD"),
                                  f"{self.initial_domain} - AAD")
        self.domain_fqdn = ".".join(v for t, v in (r[0] for r in ad.parse_dn(self.base_dn).rdns) if t.lower() == "dc")
        self.sync_ous = [str(ad.parse_dn(ou)) for ou in layout.sync_ous(self.base_dn)]
        self.writeback_ou = str(ad.parse_dn(layout.writeback_ou(self.base_dn)))
        # The lab wizard's group writeback page (a rehearsal flips it) overrides the options given to the cycle.
        wizard = store.group_writeback_wizard()
        if wizard:
            self.options = options = replace(
                options, group_writeback_enabled=bool(wizard.get("Enabled", options.group_writeback_enabled)),
                writeback_display_name=bool(wizard.get("WritebackGroupDnWithDisplayName",
                                                       options.writeback_display_name)))
            if wizard.get("TargetOU"):
                self.writeback_ou = str(ad.parse_dn(wizard["TargetOU"]))
        store.record_group_writeback_effective(Enabled=options.group_writeback_enabled, TargetOU=self.writeback_ou,
                                               WritebackGroupDnWithDisplayName=options.writeback_display_name)
        self.state_path = store.path.parent / STATE_FILE
        self.state = _State.load(self.state_path)
        self.result = CycleResult(policy=policy, run_id=run_id, staging=self.staging)
        self.now = utc_now()
        self._dn_keys: dict[str, str] = {}

    # ---- helpers

    def key(self, dn: str) -> str:
        """A DN's comparison form (cached: member lists repeat the same DNs)."""
        cached = self._dn_keys.get(dn)
        if cached is None:
            try:
                cached = ad.parse_dn(dn).normalized()
            except ad.InvalidDn:
                cached = dn.lower()
            self._dn_keys[dn] = cached
        return cached

    def touch(self, dn: str) -> None:
        if len(self.result.touched) < 100 and dn not in self.result.touched:
            self.result.touched.append(dn)

    def tick(self, name: str, started: float) -> float:
        now = time.monotonic()
        self.result.timings[name] = round(now - started, 3)
        return now

    # ---- the run

    def run(self) -> CycleResult:
        started = time.monotonic()
        if self.options.latency_seconds > 0:
            time.sleep(self.options.latency_seconds)
        t = time.monotonic()
        self.load_cloud()
        t = self.tick("load_cloud", t)
        self.import_directory()
        t = self.tick("import", t)
        # Pending exports are what this cycle holds back (staging) -- nothing is left pending after a real one.
        self.store.clear_pending_exports()
        with self.store.transaction():
            self.export_to_cloud()
        t = self.tick("export_cloud", t)
        self.exchange_hybrid_writeback()
        self.group_writeback()
        t = self.tick("export_ad", t)
        self.record_errors()
        self.save_state()
        self.tick("finish", t)
        self.result.finished = utc_now()
        self.result.duration_seconds = round(time.monotonic() - started, 3)
        return self.result

    # ---- cloud side

    def load_cloud(self) -> None:
        store = self.store
        self.docs: dict[str, dict[str, Any]] = {}
        self.joined: dict[str, str] = {}  # anchor -> object id
        self.anchor_of: dict[str, str] = {}
        self.addresses: dict[str, str] = {}  # lower-case proxy address -> object id
        self.upns: dict[str, str] = {}
        for kind in ("user", "group", "contact"):
            for doc in store.iter_objects(kind=kind, batch=5000):
                oid = doc["id"]
                self.docs[oid] = doc
                self.index(oid, doc)
                if doc.get("onPremisesSyncEnabled"):
                    anchor = store.source_anchor_of(object_id=oid)
                    if anchor:
                        self.joined[anchor] = oid
                        self.anchor_of[oid] = anchor
        self.recipients = store.recipients_by_object_ids(self.docs)
        self.prior_errors = store.list_export_errors(connector=self.aad_connector)
        self.prior_ad_errors = store.list_export_errors(connector=self.ad_connector)

    def index(self, oid: str, doc: Mapping[str, Any]) -> None:
        for address in doc.get("proxyAddresses") or []:
            self.addresses[address.lower()] = oid
        upn = doc.get("userPrincipalName")
        if upn and doc.get("@kind", "user") == "user":
            self.upns[upn.lower()] = oid

    def unindex(self, oid: str, doc: Mapping[str, Any]) -> None:
        for address in doc.get("proxyAddresses") or []:
            if self.addresses.get(address.lower()) == oid:
                del self.addresses[address.lower()]
        upn = (doc.get("userPrincipalName") or "").lower()
        if upn and self.upns.get(upn) == oid:
            del self.upns[upn]

    # ---- import

    def import_directory(self) -> None:
        directory = self.directory
        dse = directory.root_dse()
        watermark = int((dse.get("highestCommittedUSN") or ["0"])[0])
        service = (dse.get("dsServiceName") or [""])[0]
        dc = ""
        if service:
            with contextlib.suppress(ad.AdError):
                guid = directory.read(service, attributes=["objectGUID"]).guid
                dc = str(guid) if guid else ""
        self.dc = dc
        self.result.watermark = watermark
        self.new_watermark = watermark

        self.entries: dict[UUID, _Entry] = {}
        self.by_dn: dict[str, UUID] = {}
        self.by_anchor: dict[str, UUID] = {}
        self.fetched: dict[UUID, DirectoryObject] = {}
        reason = self.delta_problem() if self.policy == "Delta" else None
        self.full = full = self.policy == "Initial" or reason is not None
        self.result.fallback_reason = reason
        self.result.effective_policy = "Initial" if full else "Delta"
        if full:
            for obj in self.search(_SCOPE_FILTER, READ_ATTRIBUTES):
                if self.add_entry(obj):
                    self.fetched[obj.guid] = obj  # type: ignore[index]
        else:
            # the skeleton (every object of the sync OUs, cheaply), then the changed ones in full
            for obj in self.search(_SCOPE_FILTER, SKELETON_ATTRIBUTES):
                self.add_entry(obj)
            changed = ad.all_of(_SCOPE_FILTER, ad.ge("uSNChanged", (self.state.watermark or 0) + 1))
            for obj in self.search(changed, READ_ATTRIBUTES):
                if obj.guid in self.entries:
                    self.fetched[obj.guid] = obj
            self.fetch(self.cloud_side_dirty())
        self.result.in_scope = len(self.entries)
        self.result.imported = len(self.fetched)

    def search(self, flt: ad.Filter, attributes: list[str]) -> Iterator[DirectoryObject]:
        for ou in self.sync_ous:
            try:
                yield from self.directory.search(filter=flt, base=ou, attributes=attributes, page_size=1000)
            except ad.NotFound:
                continue  # an OU of the scope that does not exist (yet)

    def add_entry(self, obj: DirectoryObject) -> bool:
        if obj.guid is None or obj.guid in self.entries:
            return False
        external = obj.first("msDS-ExternalDirectoryObjectId")
        wb = external[6:].lower() if obj.kind == "group" and isinstance(external, str) and \
            external.startswith("Group_") else None
        entry = _Entry(obj.guid, obj.dn, obj.kind, obj.usn_changed or 0, source_anchor_of(obj), wb)
        self.entries[obj.guid] = entry
        self.by_dn[self.key(obj.dn)] = obj.guid
        if entry.anchor:
            self.by_anchor[entry.anchor] = obj.guid
        return True

    def delta_problem(self) -> str | None:
        """Why this delta cannot trust the previous cycle's high-water mark (then it imports in full)."""
        s = self.state
        if s.watermark is None:
            return "no previous cycle"
        if s.tenant_id != self.store.tenant_id or s.base_dn != self.base_dn:
            return "another tenant or domain than at the previous cycle"
        if s.dc != self.dc:
            return "another domain controller (or a re-provisioned one) than at the previous cycle"
        if s.watermark > self.result.watermark:
            return "the domain controller's USN is below the previous high-water mark"
        if s.synced_objects is not None and s.synced_objects != len(self.joined):
            return "the tenant's synchronised objects changed outside the sync engine"
        return None

    def fetch(self, guids: Iterable[UUID]) -> list[UUID]:
        """Read full attributes of objects the delta did not bring (dirty ones); returns those read."""
        read = []
        for guid in guids:
            if guid in self.fetched or guid not in self.entries:
                continue
            try:
                self.fetched[guid] = self.directory.read_by_guid(guid, attributes=READ_ATTRIBUTES)
            except ad.NotFound:
                continue
            read.append(guid)
        return read

    def cloud_side_dirty(self) -> set[UUID]:
        """Unchanged AD objects a delta must still process, because of something on the cloud side."""
        dirty: set[UUID] = set()
        # licensed users whose mailbox (and X500) does not exist yet
        for oid, anchor in self.anchor_of.items():
            doc = self.docs[oid]
            if doc.get("@kind") == "user" and doc.get("assignedLicenses"):
                recipient = self.recipients.get(oid)
                if recipient is None or recipient.get("RecipientTypeDetails") not in MAILBOX_TYPES:
                    guid = self.by_anchor.get(anchor)
                    if guid:
                        dirty.add(guid)
        # objects in export error are retried at every cycle
        for error in self.prior_errors:
            guid = self.by_anchor.get(error.get("SourceAnchor") or "") or self.by_dn.get(
                self.key(error.get("DistinguishedName") or ""))
            if guid:
                dirty.add(guid)
        return dirty

    # ---- export to the cloud

    def export_to_cloud(self) -> None:
        self.plans: dict[UUID, _Plan] = {}
        self.deprovision()
        pending = [g for g in self.fetched if g not in self.plans]
        rounds = 0
        while pending and rounds < 4:
            rounds += 1
            added = self.project(pending)
            # objects naming a re-created object must name it again (links are by object id)
            linking: set[UUID] = set()
            for guid in added:
                attrs = self.plans[guid].attrs
                for name in BACK_LINKS:
                    for dn in attrs.all(name):
                        other = self.by_dn.get(self.key(dn))
                        if other is not None and other not in self.plans:
                            linking.add(other)
            pending = self.fetch(linking) if not self.full else []
            self.result.imported = len(self.fetched)
        self.export_memberships()
        self.export_recipient_links()

    def deprovision(self) -> None:
        """Delete the cloud objects whose AD object left the scope (moved, deleted or filtered out)."""
        for anchor, oid in list(self.joined.items()):
            guid = self.by_anchor.get(anchor)
            if guid is None:
                gone = True  # deleted, or moved out of every synchronised OU
            elif guid in self.fetched:
                gone = scope_problem(self.fetched[guid]) is not None or self.entries[guid].writeback_id is not None
            else:
                gone = False  # unchanged since the last cycle, so still in scope
            if gone:
                self.delete_cloud_object(anchor, oid)

    def delete_cloud_object(self, anchor: str, oid: str) -> None:
        doc = self.docs.pop(oid)
        kind = doc.get("@kind", "user")
        recipient = self.recipients.pop(oid, None)
        dn = doc.get("onPremisesDistinguishedName") or ""
        if self.staging:
            self.pend(self.aad_connector, dn, "Delete", {}, oid)
        else:
            self.store.delete_object(object_id=oid, with_recipient=True)
            self.result.cloud_writes += 1
            self.state.recycle_bin[anchor] = {
                "id": oid, "kind": kind, "deleted": iso(self.now),
                "legacy_dn": (recipient or {}).get("LegacyExchangeDN"),
            }
        self.unindex(oid, doc)
        del self.joined[anchor]
        del self.anchor_of[oid]
        self.touch(dn)
        self.result.counts[kind].deletes += 1
        if recipient is not None:
            self.result.counts["recipient"].deletes += 1
        self.clear_errors_of(anchor, dn)

    def project(self, guids: Sequence[UUID]) -> list[UUID]:
        """Plan and export the given objects (users and contacts first, groups after); returns the added."""
        order = {"user": 0, "contact": 1, "group": 2}
        added = []
        candidates = sorted((g for g in guids if g in self.fetched), key=lambda g: order.get(self.fetched[g].kind, 3))
        for guid in candidates:
            obj = self.fetched[guid]
            entry = self.entries[guid]
            if entry.writeback_id or scope_problem(obj) is not None or entry.anchor is None:
                continue
            plan = self.plan(obj, entry)
            self.plans[guid] = plan
            self.export_object(plan)
            if plan.exported:
                self.export_recipient(plan)
            if plan.added:
                added.append(guid)
        return added

    # ---- planning

    def plan(self, obj: DirectoryObject, entry: _Entry) -> _Plan:
        a = _Attrs(obj)
        kind: Kind = obj.kind  # type: ignore[assignment]
        anchor = entry.anchor or ""
        plan = _Plan(attrs=a, kind=kind, anchor=anchor, dn=obj.dn, guid=entry.guid, oid=self.joined.get(anchor),
                     props={})
        nickname = a.text("mailNickname")
        exchange = nickname is not None  # Exchange attributes only flow with a mailNickname
        mail_enabled_group = kind == "group" and exchange and _mail_enabled(a)
        on_prem_upn = a.text("userPrincipalName")
        if kind == "user" and not on_prem_upn:
            on_prem_upn = f"{a.text('sAMAccountName') or ''}@{self.domain_fqdn}"  # the default rule's fallback
        if plan.oid is None:
            self.match(plan, cloud_upn=self.cloud_upn(on_prem_upn) if kind == "user" else None,
                       mail_enabled=kind != "group" or mail_enabled_group)
        oid = plan.oid
        doc = self.docs.get(oid) if oid else None
        recipient_kind, plan.recipient_type = self.recipient_type(a, kind, exchange, doc)
        existing = self.recipients.get(oid) if oid else None
        legacy = existing.get("LegacyExchangeDN") if existing else None
        if legacy is None and plan.recipient_type:
            legacy = self.adoptable_legacy_dn(a, anchor)
        plan.legacy_dn = legacy
        if kind != "group" or mail_enabled_group:
            source = proxycalc.ProxyCalcInput(
                kind=proxycalc.ObjectKind(kind), recipient=recipient_kind,
                user_principal_name=on_prem_upn if kind == "user" else None,
                mail=a.text("mail"), mail_nickname=nickname,
                proxy_addresses=tuple(p for p in a.all("proxyAddresses") if isinstance(p, str)),
                target_address=a.text("targetAddress") if kind == "contact" else None,
                cloud_legacy_exchange_dn=f"X500:{legacy}" if legacy else None, source_anchor=anchor,
            )
            previous = proxycalc.CloudAddresses(
                mail=doc.get("mail"), mail_nickname=doc.get("mailNickname"),
                proxy_addresses=tuple(doc.get("proxyAddresses") or ())) if doc else None
            plan.calc = proxycalc.calculate(
                source=source, verified_domains=self.verified, initial_domain=self.initial_domain,
                in_use_by_others=lambda address: self.addresses.get(f"smtp:{address}") not in (None, oid),
                previous=previous,
            )
            offered = {p.lower() for p in source.proxy_addresses}
            if source.mail:
                offered.add(f"smtp:{source.mail}".lower())
            for removed in plan.calc.removed:
                if removed.reason is proxycalc.RemovalReason.IN_USE_BY_ANOTHER_OBJECT and \
                        removed.address.lower() in offered:
                    plan.quarantined.append(("ProxyAddresses", removed.address))
        display = a.text("displayName") or a.text("cn") or ""
        common = {"displayName": display, "onPremisesSyncEnabled": True}
        calc = plan.calc
        ext = {n: a.text(n) for n in EXTENSION_ATTRIBUTES}
        if kind == "user":
            assert calc is not None
            upn = calc.user_principal_name or on_prem_upn
            problem = upn_problem(upn or "")
            if problem:
                plan.error = ("DataValidationFailed", "userPrincipalName", _invalid_attribute("UserPrincipalName"))
            certificate_ids = [v for v in a.all(CERTIFICATE_USER_IDS_ATTRIBUTE) if isinstance(v, str)]
            bad = [v for v in certificate_ids if certificate_user_id_problem(v)]
            if bad or len(certificate_ids) > MAX_CERTIFICATE_USER_IDS:
                # The sync server names no attribute for this one (the field notes: "[None]").
                plan.error = ("DataValidationFailed", "certificateUserIds", _invalid_attribute("None"))
            uac = a.number("userAccountControl") or 0
            plan.props = {
                **common, "givenName": a.text("givenName"), "surname": a.text("sn"), "userPrincipalName": upn,
                "mail": calc.mail, "mailNickname": calc.mail_nickname, "proxyAddresses": list(calc.proxy_addresses),
                "onPremisesDistinguishedName": obj.dn, "onPremisesSamAccountName": a.text("sAMAccountName"),
                "onPremisesSecurityIdentifier": obj.sid, "onPremisesImmutableId": anchor,
                "onPremisesUserPrincipalName": a.text("userPrincipalName"), "onPremisesDomainName": self.domain_fqdn,
                "department": a.text("department"), "companyName": a.text("company"), "jobTitle": a.text("title"),
                "officeLocation": a.text("physicalDeliveryOfficeName"), "accountEnabled": not uac & UAC_ACCOUNTDISABLE,
                "onPremisesExtensionAttributes": ext if any(ext.values()) else None,
                "authorizationInfo": {"certificateUserIds": certificate_ids} if certificate_ids else None,
                "showInAddressList": False if a.flag("msExchHideFromAddressLists") else None,
            }
        elif kind == "contact":
            assert calc is not None
            plan.props = {
                **common, "givenName": a.text("givenName"), "surname": a.text("sn"), "mail": calc.mail,
                "mailNickname": calc.mail_nickname, "proxyAddresses": list(calc.proxy_addresses),
                "companyName": a.text("company"), "department": a.text("department"), "jobTitle": a.text("title"),
                "onPremisesDistinguishedName": obj.dn,
            }
        else:
            group_type = a.number("groupType") or 0
            plan.props = {
                **common, "description": a.text("description"),
                "mail": calc.mail if calc else None, "mailEnabled": bool(mail_enabled_group),
                "mailNickname": (calc.mail_nickname if calc else None) or nickname or a.text("sAMAccountName"),
                "securityEnabled": bool(group_type & GROUP_TYPE_SECURITY), "groupTypes": [],
                "proxyAddresses": list(calc.proxy_addresses) if calc else [],
                "onPremisesSamAccountName": a.text("sAMAccountName"), "onPremisesSecurityIdentifier": obj.sid,
                "onPremisesDomainName": self.domain_fqdn, "onPremisesDistinguishedName": obj.dn,
            }
        if plan.recipient_type and calc is not None and calc.primary_smtp:
            plan.recipient_props = self.recipient_properties(plan, a, upn=plan.props.get("userPrincipalName"))
        elif plan.recipient_type:
            plan.recipient_type = None  # Exchange Online cannot hold a recipient without an address
        return plan

    def recipient_type(self, a: _Attrs, kind: str, exchange: bool, doc: Mapping[str, Any] | None
                       ) -> tuple[proxycalc.Recipient, str | None]:
        """What the object is in Exchange Online: ProxyCalc's category and RecipientTypeDetails."""
        R = proxycalc.Recipient
        if kind == "contact":
            return R.MAIL_ENABLED, "MailContact"
        if kind == "group":
            if not (exchange and _mail_enabled(a)):
                return R.NOT_MAIL_ENABLED, None
            group_type = a.number("groupType") or 0
            if (a.number("msExchRecipientTypeDetails") or 0) == RTD_ROOM_LIST:
                return R.MAIL_ENABLED, "RoomList"
            if not group_type & GROUP_TYPE_UNIVERSAL:
                return R.MAIL_ENABLED, "MailNonUniversalGroup"
            if group_type & GROUP_TYPE_SECURITY:
                return R.MAIL_ENABLED, "MailUniversalSecurityGroup"
            return R.MAIL_ENABLED, "MailUniversalDistributionGroup"
        rtd = a.number("msExchRecipientTypeDetails") if exchange else None
        if rtd in REMOTE_MAILBOX_TYPES:
            return R.MAILBOX, REMOTE_MAILBOX_TYPES[rtd]
        if rtd is not None and rtd & ONPREM_MAIL_USER_BITS:
            return R.MAIL_ENABLED, "MailUser"
        if doc is not None and doc.get("assignedLicenses"):
            return R.MAILBOX, "UserMailbox"
        return R.NOT_MAIL_ENABLED, None

    def adoptable_legacy_dn(self, a: _Attrs, anchor: str) -> str | None:
        """The LegacyExchangeDN a new recipient takes: the one it had before it was deleted (recycle bin), or
        the Exchange Online X500 already on-premises (written back in an earlier life of the lab)."""
        kept = self.state.recycle_bin.get(anchor, {}).get("legacy_dn")
        if kept:
            return kept
        for value in a.all("proxyAddresses"):
            if isinstance(value, str) and value.lower().startswith("x500:/o=exchangelabs/"):
                return value[5:]
        return None

    def recipient_properties(self, plan: _Plan, a: _Attrs, *, upn: str | None) -> dict[str, Any]:
        calc = plan.calc
        assert calc is not None and plan.recipient_type is not None
        addresses = list(calc.proxy_addresses)
        on_prem_legacy = a.text("legacyExchangeDN")
        if on_prem_legacy and not any(x.lower() == f"x500:{on_prem_legacy}".lower() for x in addresses):
            # Exchange Online keeps the on-premises legacyExchangeDN as an X500 address (replies to old mail).
            addresses.append(f"X500:{on_prem_legacy}")
        rtype = plan.recipient_type
        props: dict[str, Any] = {
            "Name": (a.text("cn") or plan.props.get("displayName") or calc.mail_nickname or "")[:CN_MAX],
            "DisplayName": plan.props.get("displayName") or a.text("cn"),
            "Alias": calc.mail_nickname,
            "PrimarySmtpAddress": calc.primary_smtp,
            "EmailAddresses": _normalise_addresses(calc.primary_smtp or "", addresses),
            "RecipientTypeDetails": rtype,
            "RecipientType": _RECIPIENT_TYPE[rtype],
            "IsDirSynced": True,
            "HiddenFromAddressListsEnabled": bool(a.flag("msExchHideFromAddressLists")),
            "RequireSenderAuthenticationEnabled": bool(a.flag("msExchRequireAuthToSendTo")),
            "ModerationEnabled": bool(a.flag("msExchEnableModeration")),
            **{f"CustomAttribute{n}": a.text(f"extensionAttribute{n}") or "" for n in range(1, 16)},
        }
        if rtype in ("MailUser", "MailContact"):
            target = a.text("targetAddress")
            props["ExternalEmailAddress"] = target if target else f"SMTP:{calc.primary_smtp}"
        if rtype in MAILBOX_TYPES:
            props["UserPrincipalName"] = upn
        if plan.kind == "group":
            props["ReportToOriginatorEnabled"] = a.flag("reportToOriginator") is not False
        return props

    # ---- exporting one object

    def export_object(self, plan: _Plan) -> None:
        if plan.error is not None:
            return  # the whole export of this object fails: nothing of it reaches the cloud
        if plan.quarantined and not self.options.duplicate_attribute_resiliency:
            values = "".join(f"{prop} {value};" for prop, value in plan.quarantined)
            code = "AttributeValueMustBeUnique" if plan.oid else "InvalidSoftMatch"
            plan.error = (code, plan.quarantined[0][0], _duplicate_message(values))
            return
        if plan.oid is None:
            self.create(plan, object_id=plan.restore_id)
        else:
            self.update(plan, plan.oid)

    def provisioning_errors(self, plan: _Plan, doc: Mapping[str, Any] | None) -> list[dict[str, Any]] | None:
        if not plan.quarantined:
            return None
        before = {(e.get("propertyCausingError"), e.get("value")): e for e in (doc or {}).get(
            "onPremisesProvisioningErrors") or []}
        errors = []
        for prop, value in plan.quarantined:
            kept = before.get((prop, value))
            errors.append({"category": "PropertyConflict", "propertyCausingError": prop, "value": value,
                           "occurredDateTime": kept["occurredDateTime"] if kept else iso(self.now)})
        return errors

    def create(self, plan: _Plan, *, object_id: str | None = None) -> None:
        props = {k: v for k, v in plan.props.items() if v is not None}
        for _ in range(10):
            if plan.kind == "user":
                self.quarantine_upn(plan, props, None)
            props["onPremisesProvisioningErrors"] = self.provisioning_errors(plan, None)
            props = {k: v for k, v in props.items() if v is not None}
            if self.staging:
                self.pend(self.aad_connector, plan.dn, "Add", props, None)
                plan.exported = plan.added = True
                self.result.counts[plan.kind].adds += 1
                return
            try:
                doc = self.store.create_object(kind=plan.kind, properties={
                    **props, "onPremisesLastSyncDateTime": iso(self.now)}, object_id=object_id,
                    source_anchor=plan.anchor)
            except ConflictError as conflict:
                if conflict.attribute == "id":
                    object_id = None
                    continue
                if not self.quarantine(plan, props, conflict):
                    return
                continue
            break
        else:
            return
        self.result.cloud_writes += 1
        doc["@kind"] = plan.kind
        oid = doc["id"]
        plan.oid = oid
        self.docs[oid] = doc
        self.joined[plan.anchor] = oid
        self.anchor_of[oid] = plan.anchor
        self.index(oid, doc)
        self.state.recycle_bin.pop(plan.anchor, None)
        plan.exported = plan.added = True
        self.touch(plan.dn)
        self.result.counts[plan.kind].adds += 1

    def update(self, plan: _Plan, oid: str) -> None:
        doc = self.docs[oid]
        desired = dict(plan.props)
        for _ in range(10):
            if plan.kind == "user":
                self.quarantine_upn(plan, desired, oid)
            desired["onPremisesProvisioningErrors"] = self.provisioning_errors(plan, doc)
            changes = {k: desired.get(k) for k in MANAGED_PROPERTIES[plan.kind] if desired.get(k) != doc.get(k)}
            source_anchor = plan.anchor if self.store_anchor_missing(oid) else None
            if not changes and source_anchor is None:
                plan.exported = True
                return
            if self.staging:
                self.pend(self.aad_connector, plan.dn, "Update", changes, oid)
                plan.exported = True
                self.joined[plan.anchor] = oid
                self.anchor_of[oid] = plan.anchor
                self.result.counts[plan.kind].updates += 1
                return
            try:
                updated = self.store.update_object(object_id=oid, properties={
                    **changes, "onPremisesLastSyncDateTime": iso(self.now)}, source_anchor=source_anchor)
            except ConflictError as conflict:
                if not self.quarantine(plan, desired, conflict):
                    return
                continue
            except NotFoundError:
                return
            break
        else:
            return
        self.result.cloud_writes += 1
        updated["@kind"] = plan.kind
        self.unindex(oid, doc)
        self.docs[oid] = updated
        self.index(oid, updated)
        self.joined[plan.anchor] = oid
        self.anchor_of[oid] = plan.anchor
        plan.exported = True
        self.touch(plan.dn)
        self.result.counts[plan.kind].updates += 1
        self.result.soft_matches += plan.soft_matched

    def store_anchor_missing(self, oid: str) -> bool:
        # A soft-matched cloud object gets the source anchor with its first update.
        return oid not in self.anchor_of or not self.docs[oid].get("onPremisesSyncEnabled")

    def quarantine_upn(self, plan: _Plan, props: dict[str, Any], oid: str | None) -> None:
        """Duplicate attribute resiliency for the UPN: the newcomer gets <prefix>+<4 digits>@<initial domain>."""
        upn = plan.props.get("userPrincipalName")
        if not upn:
            return
        holder = self.upns.get(upn.lower())
        if holder is None or holder == oid:
            return
        local = upn.rpartition("@")[0]
        digits = int(hashlib.sha256(plan.anchor.encode()).hexdigest(), 16) % 10_000
        props["userPrincipalName"] = f"{local}+{digits:04d}@{self.initial_domain}"
        if ("UserPrincipalName", upn) not in plan.quarantined:
            plan.quarantined.append(("UserPrincipalName", upn))

    def quarantine(self, plan: _Plan, props: dict[str, Any], conflict: ConflictError) -> bool:
        """A value the store refuses as duplicate: resiliency takes it off this object (False: give up)."""
        if not self.options.duplicate_attribute_resiliency:
            code = "AttributeValueMustBeUnique" if plan.oid else "InvalidSoftMatch"
            plan.error = (code, conflict.attribute, _duplicate_message(f"{conflict.attribute} {conflict.value};"))
            return False
        if conflict.attribute == "proxyAddresses":
            kept = [p for p in props.get("proxyAddresses") or [] if p.lower() != conflict.value.lower()]
            if len(kept) == len(props.get("proxyAddresses") or []):
                return False
            props["proxyAddresses"] = kept
            plan.props["proxyAddresses"] = kept
            plan.quarantined.append(("ProxyAddresses", conflict.value))
            return True
        if conflict.attribute == "userPrincipalName":
            self.upns[conflict.value.lower()] = conflict.existing_id
            return True
        return False

    def cloud_upn(self, upn: str | None) -> str | None:
        """The UPN Entra ID gives: a suffix that is not a verified domain becomes the initial domain."""
        if not upn:
            return None
        local, _, domain = upn.rpartition("@")
        return upn if domain.lower() in self.verified else f"{local}@{self.initial_domain}"

    def match(self, plan: _Plan, *, cloud_upn: str | None, mail_enabled: bool) -> None:
        """Join a new AD object to a cloud object: restore from the recycle bin (the hard match of a
        soft-deleted object), else soft match a cloud-managed object of the same kind."""
        restored = self.state.recycle_bin.get(plan.anchor)
        if restored and restored.get("kind") == plan.kind and restored.get("id") not in self.docs:
            plan.restore_id = restored["id"]
            return
        if self.options.block_soft_match or (not mail_enabled and plan.kind != "user"):
            return  # groups that are not mail-enabled have no soft match
        a = plan.attrs
        primary = next((p[5:] for p in a.all("proxyAddresses") if isinstance(p, str) and p.startswith("SMTP:")),
                       None) or a.text("mail")
        wanted: list[tuple[str, str]] = []
        if cloud_upn:
            wanted.append(("upn", cloud_upn))
        if primary:
            wanted.append(("smtp", primary))
        for how, value in wanted:
            for candidate in self.store.find_objects_by_address(address=value):
                cid = candidate["id"]
                if cid in self.anchor_of or candidate.get("onPremisesSyncEnabled") or \
                        self.store.source_anchor_of(object_id=cid):
                    continue  # synced with another AD object: resiliency's business, not a match
                if "Unified" in (candidate.get("groupTypes") or []):
                    continue  # a Microsoft 365 group lives in the cloud only; an AD group never takes it over
                if how == "upn":
                    hit = (candidate.get("userPrincipalName") or "").lower() == value.lower()
                else:
                    hit = any(p.startswith("SMTP:") and p[5:].lower() == value.lower()
                              for p in candidate.get("proxyAddresses") or []) or \
                        (candidate.get("mail") or "").lower() == value.lower()
                if not hit:
                    continue
                if candidate.get("@kind") != plan.kind:
                    prop = "UserPrincipalName" if how == "upn" else "ProxyAddresses"
                    plan.error = ("ObjectTypeMismatch", prop, _duplicate_message(f"{prop} {value};"))
                    return
                self.docs.setdefault(cid, candidate)
                plan.oid = cid
                plan.soft_matched = True
                return

    # ---- recipients

    def export_recipient(self, plan: _Plan) -> None:
        oid = plan.oid
        if oid is None:
            return
        existing = self.recipients.get(oid)
        if plan.recipient_type is None:
            if existing is not None and existing.get("IsDirSynced"):
                if self.staging:
                    return
                self.store.delete_recipient(recipient_id=existing["@id"])
                self.recipients.pop(oid, None)
                self.result.cloud_writes += 1
                self.result.counts["recipient"].deletes += 1
            return
        props = dict(plan.recipient_props)
        if "UserPrincipalName" in props:
            props["UserPrincipalName"] = self.docs[oid].get("userPrincipalName")  # after any quarantine
        if self.staging:
            if existing is None:
                self.result.counts["recipient"].adds += 1
            return
        if existing is None:
            extra = {k: v for k, v in props.items() if k not in ("Name", "Alias", "PrimarySmtpAddress",
                                                                 "EmailAddresses", "DisplayName")}
            if plan.legacy_dn:
                extra["LegacyExchangeDN"] = plan.legacy_dn
            addresses = list(props["EmailAddresses"])
            for _ in range(10):
                try:
                    created = self.store.create_recipient(
                        recipient_type_details=plan.recipient_type, name=props["Name"] or props["Alias"],
                        alias=props["Alias"] or "", primary_smtp_address=props["PrimarySmtpAddress"],
                        email_addresses=addresses, object_id=oid, display_name=props["DisplayName"],
                        is_dir_synced=True, properties=extra)
                except ConflictError as conflict:
                    # another recipient holds the address: Exchange Online would not show it twice
                    kept = [x for x in addresses if x.lower() != conflict.value.lower()]
                    primary = f"smtp:{props['PrimarySmtpAddress']}".lower()
                    if len(kept) == len(addresses) or conflict.value.lower() == primary:
                        return
                    addresses = kept
                    continue
                break
            else:
                return
            self.recipients[oid] = created
            self.result.cloud_writes += 1
            self.result.counts["recipient"].adds += 1
            return
        changes = {k: props.get(k) for k in MANAGED_RECIPIENT_PROPERTIES
                   if k in props and props.get(k) != existing.get(k)}
        if not existing.get("IsDirSynced"):
            changes["IsDirSynced"] = True
        if not changes:
            return
        try:
            updated = self.store.update_recipient(recipient_id=existing["@id"], properties=changes)
        except (ConflictError, NotFoundError):
            return
        self.recipients[oid] = updated
        self.result.cloud_writes += 1
        self.result.counts["recipient"].updates += 1

    def export_recipient_links(self) -> None:
        """Second pass: ManagedBy, ModeratedBy, delivery restrictions and send-on-behalf, as recipient ids."""
        if self.staging:
            return
        for plan in self.plans.values():
            if not plan.exported or plan.oid is None or plan.recipient_type is None:
                continue
            recipient = self.recipients.get(plan.oid)
            if recipient is None:
                continue
            changes: dict[str, Any] = {}
            for prop, sources in LINKS.items():
                ids: list[str] = []
                for name in sources:
                    for dn in plan.attrs.all(name):
                        target = self.recipient_id_for_dn(dn)
                        if target and target not in ids:
                            ids.append(target)
                if ids != (recipient.get(prop) or []):
                    changes[prop] = ids
            if changes:
                self.recipients[plan.oid] = self.store.update_recipient(recipient_id=recipient["@id"],
                                                                        properties=changes)
                self.result.cloud_writes += 1
                if not plan.added:
                    self.result.counts["recipient"].updates += 1

    def object_id_for_dn(self, dn: str) -> str | None:
        guid = self.by_dn.get(self.key(dn))
        if guid is None:
            return None
        entry = self.entries[guid]
        if entry.writeback_id:
            return entry.writeback_id if entry.writeback_id in self.docs else None
        return self.joined.get(entry.anchor or "")

    def recipient_id_for_dn(self, dn: str) -> str | None:
        oid = self.object_id_for_dn(dn)
        recipient = self.recipients.get(oid) if oid else None
        return recipient["@id"] if recipient else None

    # ---- memberships

    def export_memberships(self) -> None:
        for plan in self.plans.values():
            if plan.kind != "group" or not plan.exported or plan.oid is None:
                continue
            wanted: list[str] = []
            seen: set[str] = set()
            for dn in plan.attrs.all("member"):
                member = self.object_id_for_dn(dn)
                if member and member != plan.oid and member not in seen:
                    seen.add(member)
                    wanted.append(member)
            current = set(self.store.member_ids(group_id=plan.oid)) if not plan.added else set()
            if set(wanted) == current:
                continue
            if self.staging:
                self.pend(self.aad_connector, plan.dn, "Update", {"member": len(wanted)}, plan.oid)
            else:
                self.store.set_members(group_id=plan.oid, member_ids=wanted)
                self.result.cloud_writes += 1
            self.result.membership_changes += len(set(wanted) ^ current)
            self.touch(plan.dn)
            if not plan.added and not self.updated_already(plan):
                self.result.counts["group"].updates += 1

    def updated_already(self, plan: _Plan) -> bool:
        return bool(self.docs.get(plan.oid or "", {}).get("onPremisesLastSyncDateTime") == iso(self.now))

    # ---- Exchange hybrid writeback (to AD)

    def exchange_hybrid_writeback(self) -> None:
        for plan in self.plans.values():
            if plan.kind != "user" or not plan.exported or plan.oid is None:
                continue
            a = plan.attrs
            add: dict[str, Any] = {}
            replace: dict[str, Any] = {}
            recipient = self.recipients.get(plan.oid)
            done: list[str] = []
            if self.options.exchange_hybrid and recipient is not None:
                legacy = recipient.get("LegacyExchangeDN")
                if legacy and not any(isinstance(p, str) and p.lower() == f"x500:{legacy}".lower()
                                      for p in a.all("proxyAddresses")):
                    add["proxyAddresses"] = [f"x500:{legacy}"]
                    done.append("x500")
                anchor = f"User_{plan.oid}"
                if a.text("msDS-ExternalDirectoryObjectId") != anchor:
                    replace["msDS-ExternalDirectoryObjectId"] = anchor
                    done.append("external_directory_object_id")
            if self.options.consistency_guid_writeback and not a.one("mS-DS-ConsistencyGuid"):
                replace["mS-DS-ConsistencyGuid"] = plan.guid.bytes_le
                done.append("consistency_guid")
            if not done:
                continue
            if self.staging:
                shown = {**{k: v for k, v in replace.items() if k != "mS-DS-ConsistencyGuid"}, **add}
                if "mS-DS-ConsistencyGuid" in replace:
                    shown["mS-DS-ConsistencyGuid"] = str(plan.guid)
                self.pend(self.ad_connector, plan.dn, "Update", shown, plan.oid)
            elif not self.ad_write(plan.dn, lambda dn=plan.dn, add=add, replace=replace: self.directory.modify(
                    dn, add=add or None, replace=replace or None)):
                continue
            for name in done:
                self.result.writebacks[name] += 1

    def ad_write(self, dn: str, write: Callable[[], Any]) -> bool:
        try:
            write()
        except ad.ValueExists:
            return True
        except ad.AccessDenied as exc:
            self.ad_error(dn, "permission-issue", str(exc))
            return False
        except ad.AdError as exc:
            self.ad_error(dn, "cd-error", str(exc))
            return False
        self.result.ad_writes += 1
        return True

    def ad_error(self, dn: str, code: str, message: str) -> None:
        self.result.export_errors.append(ExportErrorRecord(self.ad_connector, dn, code, None, message))

    # ---- group writeback v2 (to AD)

    def group_writeback(self) -> None:
        existing = self.read_written_back()
        wanted = self.groups_to_write_back() if self.options.group_writeback_enabled else {}
        joined_before = set(self.state.written_back)
        # DNs first: members of written-back groups may be other written-back groups
        target_dn = {oid: ad.child_dn(self.writeback_ou, "CN", cn) for oid, (cn, _) in wanted.items()}
        for oid, obj in list(existing.items()):
            if oid not in target_dn:
                continue
            new_cn = wanted[oid][0]
            if ad.parse_dn(obj.dn).rdn_value == new_cn:
                target_dn[oid] = obj.dn
                continue
            # A changed DN option renames the group (modify DN); it is never deleted and re-created.
            if self.staging:
                self.pend(self.ad_connector, obj.dn, "Update", {"cn": new_cn, "distinguishedName": target_dn[oid]},
                          oid)
            elif self.ad_write(obj.dn, lambda obj=obj, new_cn=new_cn: self.directory.rename(obj.dn, new_cn)):
                self.result.writebacks["group_renames"] += 1
                existing[oid] = DirectoryObject(target_dn[oid], obj.guid, obj.sid, obj.object_classes,
                                                obj.attributes)
                continue
            target_dn[oid] = obj.dn  # not renamed (yet): members still find it where it is
        for oid, (_cn, config) in wanted.items():
            desired = self.writeback_attributes(oid, config, target_dn)
            obj = existing.get(oid)
            if obj is None:
                dn = target_dn[oid]
                attrs = {"sAMAccountName": f"Group_{oid}", **{k: v for k, v in desired.items() if v}}
                if self.staging:
                    self.pend(self.ad_connector, dn, "Add", _json_safe(attrs), oid)
                elif self.ad_write(dn, lambda dn=dn, attrs=attrs: self.directory.add(
                        dn, object_class=["top", "group"], attributes=attrs)):
                    self.result.writebacks["group_adds"] += 1
                continue
            replace, add, delete = self.writeback_changes(obj, desired)
            if not (replace or add or delete):
                continue
            if self.staging:
                self.pend(self.ad_connector, obj.dn, "Update", _json_safe({**replace, **add}), oid)
            elif self.ad_write(obj.dn, lambda obj=obj, r=replace, ad_=add, d=delete: self.directory.modify(
                    obj.dn, replace=r or None, add=ad_ or None, delete=d or None)):
                self.result.writebacks["group_updates"] += 1
        # groups no longer to be written back
        orphans = 0
        for oid, obj in existing.items():
            if oid in wanted:
                continue
            doc = self.docs.get(oid)
            known = oid in joined_before or (doc is not None and oid not in self.anchor_of)
            if not known:
                orphans += 1  # never joined to a cloud group of this tenant: a disconnector, left alone
                continue
            if doc is not None and self.options.group_writeback_enabled and \
                    not self.options.delete_groups_disabled_for_writeback:
                continue  # disabled for writeback on its own: stays in AD (the documented default)
            if self.staging:
                self.pend(self.ad_connector, obj.dn, "Delete", {}, oid)
            elif self.ad_write(obj.dn, lambda obj=obj: self.directory.delete(obj.dn)):
                self.result.writebacks["group_deletes"] += 1
                joined_before.discard(oid)
        self.result.orphaned_writeback_groups = orphans
        if not self.staging:
            self.written_back = sorted((joined_before | set(wanted)) & (set(existing) | set(wanted)))
        else:
            self.written_back = sorted(joined_before)

    def read_written_back(self) -> dict[str, DirectoryObject]:
        found: dict[str, DirectoryObject] = {}
        flt = ad.all_of(ad.object_class("group"), ad.starts_with("msDS-ExternalDirectoryObjectId", "Group_"))
        try:
            for obj in self.directory.search(filter=flt, base=self.writeback_ou, attributes=WRITEBACK_READ_ATTRIBUTES):
                external = obj.first("msDS-ExternalDirectoryObjectId")
                if isinstance(external, str):
                    found[external[6:].lower()] = obj
        except ad.NotFound:
            pass
        return found

    def groups_to_write_back(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """Cloud groups to be in the writeback OU: object id -> (cn, writeback configuration)."""
        wanted: dict[str, tuple[str, dict[str, Any]]] = {}
        for oid, doc in self.docs.items():
            if doc.get("@kind") != "group" or oid in self.anchor_of or doc.get("onPremisesSyncEnabled"):
                continue
            unified = "Unified" in (doc.get("groupTypes") or [])
            if not unified and not (doc.get("securityEnabled") and not doc.get("mailEnabled")):
                continue  # distribution lists and mail-enabled security groups made in Exchange Online
            config = dict(doc.get("writebackConfiguration") or {})
            enabled = config.get("isEnabled")
            if not (enabled is True or (enabled is None and unified)):
                continue
            target = config.get("onPremisesGroupType")
            if target not in WRITEBACK_GROUP_TYPES or (not unified and target != "universalSecurityGroup"):
                target = "universalDistributionGroup" if unified else "universalSecurityGroup"
            config["onPremisesGroupType"] = target
            cn = writeback_cn(object_id=oid, display_name=doc.get("displayName"),
                              with_display_name=self.options.writeback_display_name)
            wanted[oid] = (cn, config)
        return wanted

    def writeback_attributes(self, oid: str, config: Mapping[str, Any], target_dn: Mapping[str, str]
                             ) -> dict[str, Any]:
        doc = self.docs[oid]
        target = config["onPremisesGroupType"]
        members: list[str] = []
        for member in self.store.member_ids(group_id=oid):
            anchor = self.anchor_of.get(member)
            if anchor is not None:
                guid = self.by_anchor.get(anchor)
                if guid is not None:
                    members.append(self.entries[guid].dn)
            elif member in target_dn:
                members.append(target_dn[member])
        attrs: dict[str, Any] = {
            "groupType": WRITEBACK_GROUP_TYPES[target],
            "displayName": doc.get("displayName"),
            "description": doc.get("description"),
            "msDS-ExternalDirectoryObjectId": f"Group_{oid}",
            "member": members,
            "mail": None, "mailNickname": None, "proxyAddresses": [],
        }
        if target in WRITEBACK_MAIL_ENABLED and doc.get("mail"):
            attrs.update({"mail": doc.get("mail"), "mailNickname": doc.get("mailNickname"),
                          "proxyAddresses": list(doc.get("proxyAddresses") or [])})
        return attrs

    def writeback_changes(self, obj: DirectoryObject, desired: Mapping[str, Any]
                          ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        a = _Attrs(obj)
        replace: dict[str, Any] = {}
        add: dict[str, Any] = {}
        delete: dict[str, Any] = {}
        for name in ("displayName", "description", "mail", "mailNickname", "msDS-ExternalDirectoryObjectId"):
            if (desired.get(name) or None) != a.text(name):
                replace[name] = desired.get(name) or None
        if desired["groupType"] != a.number("groupType"):
            replace["groupType"] = desired["groupType"]
        current_proxies = sorted(p for p in a.all("proxyAddresses") if isinstance(p, str))
        if sorted(desired["proxyAddresses"]) != current_proxies:
            replace["proxyAddresses"] = desired["proxyAddresses"] or None
        current = {self.key(dn): dn for dn in a.all("member")}
        wanted = {self.key(dn): dn for dn in desired["member"]}
        if set(wanted) - set(current):
            add["member"] = [wanted[k] for k in wanted if k not in current]
        if set(current) - set(wanted):
            delete["member"] = [current[k] for k in current if k not in wanted]
        return replace, add, delete

    # ---- bookkeeping

    def pend(self, connector: str, dn: str, operation: Literal["Add", "Update", "Delete", "Replace"],
             attributes: Mapping[str, Any], object_id: str | None) -> None:
        self.store.add_pending_export(connector=connector, distinguished_name=dn, operation=operation,
                                      attributes=_json_safe(dict(attributes)), object_id=object_id)
        self.result.pending_exports += 1

    def clear_errors_of(self, anchor: str, dn: str) -> None:
        if self.staging:
            return
        dns = {e.get("DistinguishedName") for e in self.prior_errors if e.get("SourceAnchor") == anchor}
        dns.add(dn)
        for name in dns:
            if name:
                self.store.clear_export_errors(connector=self.aad_connector, distinguished_name=name)

    def record_errors(self) -> None:
        if self.staging:
            return  # nothing was exported, so nothing failed
        for plan in self.plans.values():
            if plan.error is None:
                if plan.exported:
                    self.clear_errors_of(plan.anchor, plan.dn)
                continue
            code, attribute, message = plan.error
            for error in self.prior_errors:
                if error.get("SourceAnchor") == plan.anchor and error.get("DistinguishedName") != plan.dn:
                    self.store.clear_export_errors(connector=self.aad_connector,
                                                   distinguished_name=error["DistinguishedName"])
            self.store.add_export_error(connector=self.aad_connector, distinguished_name=plan.dn, error_code=code,
                                        message=message, attribute=attribute, object_id=plan.oid,
                                        source_anchor=plan.anchor)
            self.result.export_errors.append(ExportErrorRecord(self.aad_connector, plan.dn, code, attribute, message))
        # AD connector errors are those of this cycle's writebacks only
        failed = {self.key(e.distinguished_name) for e in self.result.export_errors if e.connector == self.ad_connector}
        for error in self.prior_ad_errors:
            dn = error.get("DistinguishedName") or ""
            if self.key(dn) not in failed:
                self.store.clear_export_errors(connector=self.ad_connector, distinguished_name=dn)
        for error in self.result.export_errors:
            if error.connector == self.ad_connector:
                self.store.add_export_error(connector=self.ad_connector, distinguished_name=error.distinguished_name,
                                            error_code=error.error_code, message=error.message)

    def save_state(self) -> None:
        s = self.state
        cutoff = self.now - timedelta(days=RECYCLE_BIN_DAYS)
        s.recycle_bin = {k: v for k, v in s.recycle_bin.items() if parse_datetime(v["deleted"]) >= cutoff}
        s.written_back = getattr(self, "written_back", s.written_back)
        s.tenant_id = self.store.tenant_id
        s.base_dn = self.base_dn
        if not self.staging:
            # staging exports nothing: the next real cycle must import these changes again
            s.dc = self.dc
            s.watermark = self.new_watermark
            s.synced_objects = len(self.joined)
        s.save(self.state_path)


def _invalid_attribute(name: str) -> str:
    # The sync server's wording (field notes; blog posts quoting 0x8023134a DataValidationFailed).
    return (f"Unable to update this object in Azure Active Directory, because the attribute [{name}], is not valid. "
            "Update the value in your local directory services.")


def _duplicate_message(values: str) -> str:
    # The wording Entra ID returns for duplicate values (KB 2647098 is the article it points at).
    return ("Unable to update this object because the following attributes associated with this object have values "
            f"that may already be associated with another object in your local directory services: [{values}]. "
            "Correct or remove the duplicate values in your local directory. Please refer to "
            "http://support.microsoft.com/kb/2647098 for more information on identifying objects with duplicate "
            "attribute values.")


def _normalise_addresses(primary: str, addresses: Iterable[str]) -> list[str]:
    """EmailAddresses as the store keeps them (SMTP: primary first, other SMTP demoted, order kept)."""
    result = [f"SMTP:{primary}"]
    seen = {f"smtp:{primary}".lower()}
    for address in addresses:
        prefix, sep, value = address.partition(":")
        if not sep:
            prefix, value = "smtp", address
        if prefix.lower() == "smtp":
            address = f"smtp:{value}"
        if address.lower() in seen:
            continue
        seen.add(address.lower())
        result.append(address)
    return result


def _json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_json_safe(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, UUID):
        return str(value)
    return value


# --- entry points --------------------------------------------------------------------------------


def _policy(value: str) -> Policy:
    lowered = str(value).strip().lower()
    if lowered == "delta":
        return "Delta"
    if lowered == "initial":
        return "Initial"
    raise ValueError(f"PolicyType must be Delta or Initial, not {value!r}")


def run_cycle(
    *,
    directory: ActiveDirectory,
    store: CloudStore,
    base_dn: str,
    policy: Policy = "Delta",
    options: SyncOptions | None = None,
) -> CycleResult:
    """Run one sync cycle and record it in the run history; raises :class:`SyncAlreadyRunning` when a
    cycle already runs (in this process or another one on the same lab cloud)."""
    with _CycleLock(store):
        return _run_recorded(directory=directory, store=store, base_dn=base_dn, policy=_policy(policy),
                             options=options or SyncOptions(), run_id=None)


def _publish_connector_scope(*, store: CloudStore, base_dn: str) -> None:
    """What Get-ADSyncConnector shows of the AD connector: its partition and the OUs it includes,
    as the real server reports its ContainerInclusionList (the portal asks it where the scope ends)."""
    connectors = [dict(c) for c in store.sync_connectors()]
    for connector in connectors:
        if connector.get("Type") == "AD":
            connector["Partitions"] = [{
                "Name": base_dn, "DN": base_dn,
                "ConnectorPartitionScope": {"ContainerInclusionList": list(layout.sync_ous(base_dn)),
                                            "ContainerExclusionList": []},
            }]
    store.set_sync_connectors(connectors=connectors)


def _run_recorded(*, directory: ActiveDirectory, store: CloudStore, base_dn: str, policy: Policy,
                  options: SyncOptions, run_id: int | None) -> CycleResult:
    """The cycle under the lock; ``run_id`` given means the caller recorded the run and finishes it."""
    own = run_id is None
    _publish_connector_scope(store=store, base_dn=base_dn)
    if own:
        run_id = store.start_sync_run(policy=policy)
        if run_id is None:
            raise SyncAlreadyRunning()
    try:
        result = _Cycle(directory=directory, store=store, base_dn=base_dn, policy=policy, options=options,
                        run_id=run_id).run()
    except Exception as exc:
        if own:
            store.finish_sync_run(run_id=run_id, result=None, error=f"{type(exc).__name__}: {exc}")
        raise
    if policy == "Initial" and store.scheduler().get("NextSyncCyclePolicyType") == "Initial":
        store.update_scheduler(NextSyncCyclePolicyType="Delta")
    if own:
        store.finish_sync_run(run_id=run_id, result=result.as_dict())
    return result


@dataclass(frozen=True)
class _RunnerConfig:
    directory: Callable[[], ActiveDirectory]
    store: Callable[[], CloudStore]
    base_dn: str
    options: Callable[[], SyncOptions]


_runner: _RunnerConfig | None = None


def configure_runner(
    *,
    directory_factory: Callable[[], ActiveDirectory],
    store_factory: Callable[[], CloudStore],
    base_dn: str,
    options: SyncOptions | Callable[[], SyncOptions] | None = None,
) -> None:
    """Tell :func:`sync_runner` where the lab is (instead of the environment)."""
    global _runner
    fixed = options or SyncOptions()
    _runner = _RunnerConfig(directory=directory_factory, store=store_factory, base_dn=base_dn,
                            options=fixed if callable(fixed) else (lambda: fixed))


def _runner_from_environment() -> _RunnerConfig:
    """The lab as the portal's settings place it (same variable names), for the lab cloud process."""
    from portal.lab import samba

    repo = Path(__file__).resolve().parents[2]
    var_dir = Path(os.environ.get("DIROPS_VAR_DIR", repo / "var"))
    lab_dir = Path(os.environ.get("LAB_DIR", var_dir / "lab"))
    cloud_dir = Path(os.environ.get("LAB_CLOUD_DIR", lab_dir / "cloud"))
    realm = os.environ.get("LAB_AD_REALM", layout.DEFAULT_REALM)
    host = os.environ.get("LAB_AD_HOST", "127.0.0.2")
    base_dn = samba.base_dn_for_realm(realm)

    def directory() -> ActiveDirectory:
        password = (lab_dir / "ad-admin-password").read_text().strip()
        return ActiveDirectory(ad.AdSettings(host=host, base_dn=base_dn, bind_dn=samba.admin_dn_for_realm(realm),
                                             password=password))

    def options() -> SyncOptions:
        path = cloud_dir / OPTIONS_FILE
        if not path.exists():
            return SyncOptions()
        return SyncOptions.from_mapping(json.loads(path.read_text()))

    return _RunnerConfig(directory=directory, store=lambda: CloudStore.open(data_dir=cloud_dir), base_dn=base_dn,
                         options=options)


def sync_runner(policy: str) -> dict[str, Any]:
    """``Start-ADSyncSyncCycle`` for the lab cloud service (``--sync-runner portal.lab.sync:sync_runner``).

    The service records the run before calling; a run found "running" while this process holds the cycle
    lock is that one, and the service finishes it with the returned dict. Called on its own, the runner
    records its own run. Refuses with :class:`SyncAlreadyRunning` while another cycle holds the lock.
    The lab comes from :func:`configure_runner`, else from the environment (LAB_DIR, LAB_AD_HOST,
    LAB_AD_REALM, LAB_CLOUD_DIR; options from ``entra-connect-options.json`` in the cloud directory).
    """
    config = _runner or _runner_from_environment()
    store = config.store()
    try:
        with _CycleLock(store):
            runs = store.sync_runs(limit=1)
            adopted = runs[0]["id"] if runs and runs[0]["state"] == "running" else None
            with config.directory() as directory:
                result = _run_recorded(directory=directory, store=store, base_dn=config.base_dn,
                                       policy=_policy(policy), options=config.options(), run_id=adopted)
    finally:
        store.close()  # this thread's connection; the service calls the runner from a new thread each time
    return result.as_dict()


def _timespan(text: str) -> timedelta:
    """``[d.]hh:mm:ss`` as the scheduler writes its intervals."""
    days = 0
    if "." in text.split(":")[0]:
        day_part, text = text.split(".", 1)
        days = int(day_part)
    hours, minutes, seconds = (float(x) for x in text.split(":"))
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def due(store: CloudStore, *, now: datetime | None = None) -> bool:
    """Whether the scheduler would start a cycle now (the demo's loop calls this, then :func:`sync_runner`).

    The scheduler runs every CurrentlyEffectiveSyncCycleInterval (the larger of the allowed and the
    customised interval) after the start of the last cycle, unless the sync cycle is disabled, the
    scheduler suspended, or a cycle running ("Microsoft Entra Connect Sync: Scheduler").
    """
    settings = store.scheduler()
    if not settings.get("SyncCycleEnabled", True) or settings.get("SchedulerSuspended"):
        return False
    runs = store.sync_runs(limit=1)
    if not runs:
        return True
    if runs[0]["state"] == "running":
        return False
    allowed = _timespan(settings.get("AllowedSyncCycleInterval") or "00:30:00")
    custom = settings.get("CustomizedSyncCycleInterval")
    interval = max(allowed, _timespan(custom)) if custom else allowed
    return (now or utc_now()) >= parse_datetime(runs[0]["started"]) + interval


def next_policy(store: CloudStore) -> Policy:
    """The policy the scheduler's next cycle runs (NextSyncCyclePolicyType)."""
    return _policy(store.scheduler().get("NextSyncCyclePolicyType") or "Delta")
