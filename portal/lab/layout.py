"""Where the lab organisation lives: its OUs (as functions of the base DN) and its mail domains.

The scenario seeder (``portal/lab/seed.py``), the lab sync engine and the tests all place and find
objects through these functions, so that the layout is written down once. No Django here.

::

    OU=Contoso,<base>                         the organisation; the seed marker sits on it
      OU=Synced                               in Entra Connect's scope (with everything below)
        OU=Users        OU=<department> ...   remote mailboxes, mail users, IdFix cases
        OU=Groups       OU=Bulk               distribution lists, mail-enabled security groups; Bulk: a
                                              benchmark's bulk groups (seed/bulk.py), not the seed's
        OU=Contacts     OU=Bulk               mail contacts; Bulk holds the big list's fillers
        OU=Rooms                              remote room mailboxes of the room list
      OU=NotSynced                            out of scope: migrated lists are moved here
      OU=GroupWriteback                       target of group writeback v2 (CN=Group_<objectId>)
"""

from __future__ import annotations

from portal.connectors.ad import child_dn

DEFAULT_REALM = "LAB.EXAMPLE"
DEFAULT_BASE_DN = "DC=lab,DC=example"

# --- mail domains -----------------------------------------------------------------------------

PRIMARY_DOMAIN = "contoso.com"
SECONDARY_DOMAIN = "fabrikam.com"
# The tenant's initial (MOERA) domain: ProxyCalc always adds an address in it.
TENANT_DOMAIN = "contoso.onmicrosoft.com"
# The hybrid coexistence domain that remote mailboxes' targetAddress points at.
ROUTING_DOMAIN = "contoso.mail.onmicrosoft.com"
# Accepted in Exchange Online (verified in the tenant); an address elsewhere is not deliverable.
ACCEPTED_DOMAINS: tuple[str, ...] = (PRIMARY_DOMAIN, SECONDARY_DOMAIN, TENANT_DOMAIN, ROUTING_DOMAIN)
# An old on-premises domain nobody verified in the tenant; also a non-routable UPN suffix.
NON_ACCEPTED_DOMAIN = "legacy.local"
# Domains of the outside world that mail contacts point at (RFC 2606 names, never real).
EXTERNAL_DOMAINS: tuple[str, ...] = ("partner.example", "supplier.example", "agency.example")

EXCHANGE_ORG = "Contoso"
# The administrative group every Exchange 2007+ organisation (and Exchange Online) uses.
ADMIN_GROUP = "Exchange Administrative Group (FYDIBOHF23SPDLT)"


def is_accepted_domain(domain: str) -> bool:
    return domain.lower() in ACCEPTED_DOMAINS


# --- OUs --------------------------------------------------------------------------------------

ORG_OU = "Contoso"
SYNCED_OU = "Synced"
NOT_SYNCED_OU = "NotSynced"
WRITEBACK_OU = "GroupWriteback"
USERS_OU = "Users"
GROUPS_OU = "Groups"
CONTACTS_OU = "Contacts"
BULK_CONTACTS_OU = "Bulk"
BULK_GROUPS_OU = "Bulk"
ROOMS_OU = "Rooms"


def org_ou(base_dn: str = DEFAULT_BASE_DN) -> str:
    """``OU=Contoso,<base>``: everything the seeder creates is below it (reset deletes it)."""
    return child_dn(base_dn, "OU", ORG_OU)


def synced_ou(base_dn: str = DEFAULT_BASE_DN) -> str:
    return child_dn(org_ou(base_dn), "OU", SYNCED_OU)


def users_ou(base_dn: str = DEFAULT_BASE_DN) -> str:
    return child_dn(synced_ou(base_dn), "OU", USERS_OU)


def department_ou(base_dn: str, department: str) -> str:
    return child_dn(users_ou(base_dn), "OU", department)


def groups_ou(base_dn: str = DEFAULT_BASE_DN) -> str:
    return child_dn(synced_ou(base_dn), "OU", GROUPS_OU)


def contacts_ou(base_dn: str = DEFAULT_BASE_DN) -> str:
    return child_dn(synced_ou(base_dn), "OU", CONTACTS_OU)


def bulk_contacts_ou(base_dn: str = DEFAULT_BASE_DN) -> str:
    return child_dn(contacts_ou(base_dn), "OU", BULK_CONTACTS_OU)


def bulk_groups_ou(base_dn: str = DEFAULT_BASE_DN) -> str:
    """Bulk groups a benchmark adds beside the seed (``portal/lab/seed/bulk.py``), not part of the seed itself."""
    return child_dn(groups_ou(base_dn), "OU", BULK_GROUPS_OU)


def rooms_ou(base_dn: str = DEFAULT_BASE_DN) -> str:
    return child_dn(synced_ou(base_dn), "OU", ROOMS_OU)


def non_sync_ou(base_dn: str = DEFAULT_BASE_DN) -> str:
    """Out of sync scope: a list moved here is deleted in the cloud at the next cycle."""
    return child_dn(org_ou(base_dn), "OU", NOT_SYNCED_OU)


def writeback_ou(base_dn: str = DEFAULT_BASE_DN) -> str:
    """Where group writeback v2 creates cloud groups in AD."""
    return child_dn(org_ou(base_dn), "OU", WRITEBACK_OU)


def sync_ous(base_dn: str = DEFAULT_BASE_DN) -> list[str]:
    """The containers Entra Connect's AD connector has in scope (each with its whole subtree).

    The writeback OU is in scope as Entra Connect requires: it must import the groups it
    exported there to join them to their cloud objects (and to notice they still exist). They are
    recognisable by ``msDS-ExternalDirectoryObjectId = Group_<objectId>``.
    """
    return [synced_ou(base_dn), writeback_ou(base_dn)]


def all_ous(base_dn: str = DEFAULT_BASE_DN) -> list[str]:
    """Every fixed OU, parents before children (department OUs come from the seed's size)."""
    return [
        org_ou(base_dn), synced_ou(base_dn), users_ou(base_dn), groups_ou(base_dn), contacts_ou(base_dn),
        bulk_contacts_ou(base_dn), rooms_ou(base_dn), non_sync_ou(base_dn), writeback_ou(base_dn),
    ]
