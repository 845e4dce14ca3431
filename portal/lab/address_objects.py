"""Directory objects generated in memory for the address scan: ``bench/address_scan``'s ``generated`` source and the
tests that check a rule against the same shapes. No directory, no Django settings, nothing changed on import.

Users and groups as AD holds them, with bad values sprinkled in at fixed strides (the shares portal/lab/seed/bulk.py
gives the lab's bulk groups): the field notes' X500-only proxyAddresses, a character IdFix reports, and an address
another object already holds in another attribute; and cloud-only tenant objects, every 100th holding a synced user's
secondary address (a tenant duplicate).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

DOMAIN, INITIAL = "contoso.com", "contoso.onmicrosoft.com"
X500 = "X500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn={n:08x}-user"


def generated_entries(*, users: int, groups: int, limit: int | None = None) -> Iterator[Any]:
    """``users`` users then ``groups`` groups (at most ``limit`` objects in all), as scan entries."""
    from diagnostics_app.addresses.rules import entry

    total = users + groups
    for n in range(min(total, limit or total)):
        if n < users:
            alias = f"user{n:06d}"
            attrs = {"cn": alias, "displayName": f"User {n}", "givenName": "User", "sAMAccountName": alias,
                     "userPrincipalName": f"{alias}@{DOMAIN}", "mail": f"{alias}@{DOMAIN}", "mailNickname": alias,
                     "proxyAddresses": [f"SMTP:{alias}@{DOMAIN}", f"smtp:{alias}.alt@{DOMAIN}"],
                     "msExchRecipientTypeDetails": "2147483648"}
            if n % 50 == 1:  # the field notes' X500-only list, mail changed since
                attrs["proxyAddresses"] = [X500.format(n=n)]
            if n % 97 == 2:  # a character IdFix reports
                attrs["userPrincipalName"] = f"{alias}&x@{DOMAIN}"
            if n % 211 == 3:  # a duplicate of another object's address, in another attribute
                attrs["proxyAddresses"] = [f"SMTP:user{n - 1:06d}@{DOMAIN}"]
            yield entry(dn=f"CN={alias},OU=Users,OU=Sync,DC=contoso,DC=com", object_class=["user"],
                        attributes=attrs, anchor=f"anchor-{n}")
        else:
            g = n - users
            alias = f"group{g:05d}"
            yield entry(dn=f"CN={alias},OU=Groups,OU=Sync,DC=contoso,DC=com", object_class=["group"],
                        attributes={"cn": alias, "displayName": f"Group {g}", "sAMAccountName": alias,
                                    "mail": f"{alias}@{DOMAIN}", "mailNickname": alias,
                                    "proxyAddresses": [f"SMTP:{alias}@{DOMAIN}"], "groupType": "8"},
                        anchor=f"group-{g}")


def generated_tenant(*, count: int) -> Iterator[Any]:
    """``count`` cloud-only users; every 100th holds an address a generated synced user brings."""
    from diagnostics_app.addresses.rules import CloudObject

    for n in range(count):
        address = f"user{n:06d}.alt@{DOMAIN}" if n % 100 == 0 else f"cloud{n:05d}@{DOMAIN}"
        yield CloudObject(id=f"cloud-{n}", kind="user", display_name=f"Cloud {n}",
                          user_principal_name=f"cloud{n:05d}@{INITIAL}", mail=address, mail_nickname=f"cloud{n:05d}",
                          proxy_addresses=(f"SMTP:{address}",), synced=False)
