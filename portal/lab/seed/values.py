"""Values the seed writes as Exchange on-premises and AD would, its parameters' bounds, and its error."""

from __future__ import annotations

from collections.abc import Callable

SEED_VERSION = 1
MARKER_TAG = "dirops-lab-seed"
# Above 5,000 whatever ``users`` is, and not a multiple of 1,500 (Windows' range size), so that
# ranged reads end on a partial range.
BIG_LIST_MEMBERS = 5_200
MIN_USERS = 80
MAX_USERS = 1_000_000
SAMPLE_SIZE = 25  # objects listed per bulk scenario; Scenario.total gives the full count

Progress = Callable[[str, int, int], None]

# --- Exchange values (as Exchange 2013+ on-premises writes them) ------------------------------

RTD_MAIL_CONTACT = 64
RTD_MAIL_UNIVERSAL_DISTRIBUTION_GROUP = 256
RTD_MAIL_UNIVERSAL_SECURITY_GROUP = 1024  # its display type is 1073741833 (SecurityDistributionGroup)
RTD_ROOM_LIST = 268435456
RTD_REMOTE_USER_MAILBOX = 2147483648
RTD_REMOTE_ROOM_MAILBOX = 8589934592

RDT_DISTRIBUTION_GROUP = 1
RDT_REMOTE_MAIL_USER = 6  # mail users and mail contacts
RDT_SECURITY_DISTRIBUTION_GROUP = 1073741833
RDT_SYNCED_MAILBOX_USER = -2147483642
RDT_SYNCED_CONFERENCE_ROOM = -2147481850

REMOTE_MIGRATED = 4  # msExchRemoteRecipientType: mailbox moved to Exchange Online
REMOTE_ROOM_MIGRATED = 36  # Migrated (4) | RoomMailbox (32)

GROUP_UNIVERSAL_DISTRIBUTION = 8
GROUP_UNIVERSAL_SECURITY = -2147483640
GROUP_GLOBAL_SECURITY = -2147483646

UAC_ENABLED_NO_PASSWORD = 544  # NORMAL_ACCOUNT | PASSWD_NOTREQD: enabled without a password
UAC_DISABLED = 546  # ... | ACCOUNTDISABLE: resource (room) accounts are disabled

USER_CLASSES = ("top", "person", "organizationalPerson", "user")
CONTACT_CLASSES = ("top", "person", "organizationalPerson", "contact")
GROUP_CLASSES = ("top", "group")

# Where the certificate-user-id cases keep their values: AD has no certificateUserIds attribute;
# the Entra Connect rule of the field notes computes it, so the lab stores the rule's output here.
CERTIFICATE_USER_IDS_ATTRIBUTE = "altSecurityIdentities"




class SeedError(RuntimeError):
    """The lab cannot be seeded as asked (another seed is there, bad parameters, ...)."""
