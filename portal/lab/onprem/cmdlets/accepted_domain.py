"""Get-AcceptedDomain."""

from __future__ import annotations

import uuid
from typing import Any

from portal.lab import layout

from ..directory import _Session
from ..values import _identity_value


def _get_accepted_domain(session: _Session, bound: dict[str, Any]) -> list[dict[str, Any]]:
    """The on-premises organisation's accepted domains: the tenant's verified custom domains, the old
    legacy.local, and the coexistence (routing) domain the Hybrid Configuration Wizard adds."""
    names = [layout.PRIMARY_DOMAIN, layout.SECONDARY_DOMAIN, layout.NON_ACCEPTED_DOMAIN, layout.ROUTING_DOMAIN]
    config = f"CN=Configuration,{session.base_dn}"
    rows = []
    for name in names:
        rows.append({
            "Name": name, "Identity": name, "DomainName": name, "DomainType": "Authoritative",
            "Default": name == layout.PRIMARY_DOMAIN, "InitialDomain": False, "MatchSubDomains": False,
            "AddressBookEnabled": True, "IsCoexistenceDomain": name == layout.ROUTING_DOMAIN,
            "EmailOnly": False, "ExternallyManaged": False, "PendingRemoval": False, "IsValid": True,
            "Guid": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"accepted-domain.{name}")),
            "DistinguishedName": f"CN={name},CN=Accepted Domains,CN=Transport Settings,CN={layout.EXCHANGE_ORG},"
                                 f"CN=Microsoft Exchange,CN=Services,{config}",
        })
    if bound.get("Identity") is not None:
        wanted = _identity_value(bound["Identity"]).lower()
        rows = [r for r in rows if wanted in (r["Name"].lower(), r["Guid"], r["DistinguishedName"].lower())]
        if not rows:
            raise session.not_found(_identity_value(bound["Identity"]))
    return rows
