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
* "How the proxyAddresses attribute is populated in Microsoft Entra ID" -- :mod:`portal.addressing.proxycalc`,
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
  schema's, the exact cut the product applies was not found in its documentation.
* "Configure Group Source of Authority (SOA)" -- :mod:`.authority`: Connect Sync 2.5.76.0+ stops applying AD
  changes to an object whose ``onPremisesSyncBehavior.isCloudManaged`` is true and clears its
  ``onPremisesSyncEnabled``; false hands it back at the next cycle; an older build (the lab store's
  ``connect_version``) overwrites the cloud and so undoes the conversion.
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
"""

from __future__ import annotations

from portal.addressing.validation import certificate_user_id_problem, upn_problem

from .constants import OPTIONS_FILE, SYNC_ALREADY_RUNNING, WRITEBACK_GROUP_TYPES, Policy
from .model import CycleResult, ExportErrorRecord, KindCounts, SyncAlreadyRunning, SyncError, SyncOptions
from .runner import configure_runner, due, next_policy, run_cycle, sync_runner
from .scoping import scope_problem, source_anchor_of
from .writeback import writeback_cn

__all__ = [
    "OPTIONS_FILE",
    "SYNC_ALREADY_RUNNING",
    "WRITEBACK_GROUP_TYPES",
    "CycleResult",
    "ExportErrorRecord",
    "KindCounts",
    "Policy",
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
