"""The rehearsal lab's Exchange on-premises: the runner behind the lab cloud's ``/powershell/exchange-onprem``.

The lab cloud (``portal/lab/cloud/connect.py``) hands every call of that endpoint to ``run(cmdlet,
parameters)``, named to the service as ``portal.lab.onprem:run``, and returns what it gives back as
the pypsrp-shaped answer ``{"output": [...], "errors": [...], "warnings": [...]}``. Exchange
on-premises keeps its recipients in Active Directory, so every cmdlet here reads and writes the
lab's Samba AD DC through the portal's own AD connector (``portal/connectors/ad/``); nothing is
kept anywhere else. The AD address and password come from the Django settings via
``portal.connectors.registry``, configured on the first call (the runner lives in the lab cloud
process, which has no Django of its own).

Cmdlets (parameters as on learn.microsoft.com; the lab's subset is listed in ``_CMDLETS``):

- ``Get-AcceptedDomain [-Identity]``: the on-premises organisation's domains (``layout.py``).
- ``Get-Recipient [-Identity] [-Filter] [-OrganizationalUnit] [-ResultSize]``.
- ``Update-Recipient -Identity``: stamps what the Recipient Update Service would (legacyExchangeDN,
  a primary SMTP address from ``mail``, the recipient type values) where they are missing.
- ``Set-MailContact``, ``Set-DistributionGroup``, ``Set-DynamicDistributionGroup``: addresses,
  alias, names, hiding, custom attributes; the dynamic group's filter and container.
- ``New-``, ``Get-``, ``Remove-DynamicDistributionGroup``.

Errors are error records shaped as app.py's own (``exception_type``, ``message``, ``fq_error_id``,
``category``, ...), with the .NET types and wording Exchange uses where they are known; where the
wording could not be confirmed the comment says so. A parameter the real cmdlet has but the lab
does not implement is refused with a NotSupportedException naming it, never ignored.

Filters: ``-RecipientFilter``/``-Filter`` are OPATH, read by the lab's one parser (``portal/lab/opath.py``)
and translated to an LDAP filter with the connector's filter helpers (no filter text is assembled by
hand; ``filters.py``). The lab's
Exchange schema has no msExchQueryFilter, so the OPATH text is not stored: ``RecipientFilter`` is
rendered back from the stored LDAP filter (msExchDynamicDLFilter), in Exchange's normal form with
every statement in parentheses.
"""

from __future__ import annotations

from .errors import CmdletError
from .filters import ldap_to_opath, opath_to_ldap, parse_opath
from .names import canonical_name
from .recipient_types import INCLUDED_RECIPIENTS, RECIPIENT_TYPE_DETAILS, RECIPIENT_TYPES
from .render import render_recipient
from .server import run
from .values import Proxy, parse_proxy

__all__ = [
    "INCLUDED_RECIPIENTS", "RECIPIENT_TYPES", "RECIPIENT_TYPE_DETAILS", "CmdletError", "Proxy", "canonical_name",
    "ldap_to_opath", "opath_to_ldap", "parse_opath", "parse_proxy", "render_recipient", "run",
]
