"""Exchange connectors: ExchangeOnline (admin REST "InvokeCommand" + msal, :mod:`.online`) and ExchangeOnPrem
(Exchange remote PowerShell, :mod:`.onprem`), plus the PowerShell transports that ExchangeOnPrem and
:mod:`..sync` (Entra Connect) share (:mod:`.powershell`). Errors in :mod:`.errors`, OPATH filters in
:mod:`.opath`, cmdlet parameter checks in :mod:`.params`, the values cmdlets return in :mod:`.types`.
Everything public is importable from this package, as it was from the single module it grew out of.

No Django here: settings dataclasses in, typed dataclasses out (``connectors/registry.py`` builds
the settings).

Safety rules the API enforces:

* Cmdlets run with their parameters as data, never as script text. InvokeCommand sends
  ``{"CmdletInput": {"CmdletName": ..., "Parameters": {...}}}`` as JSON; the PSRP transport adds
  the cmdlet with ``PowerShell.add_cmdlet`` and each parameter with ``add_parameter``; the lab
  transport posts the same pair as JSON. Cmdlet and parameter names are checked against a strict
  pattern and every value is type-checked (:func:`check_parameters`) before it leaves.
* OPATH ``-Filter`` / ``-RecipientFilter`` values are :class:`OpathFilter` objects built only by
  this module's helpers, which quote every value as Exchange's OPATH grammar wants (single quotes,
  an embedded single quote doubled). No public method takes a raw filter string.
* Typed methods validate what they can (SMTP addresses, aliases, enum values, the parameters a
  ``Set-*`` cmdlet accepts) so that a typo fails here with a clear message, not half-way in Exchange.
* Errors surface as :class:`ExchangeError` subclasses that keep the exception type Exchange named
  (``ManagementObjectNotFoundException``...), its message, the HTTP status and the request id.
  Secrets never appear in an exception message.
* Throttling (429, and 503 with ``Retry-After``) is retried a bounded number of times, honouring
  ``Retry-After``; a write whose outcome is unknown (connection lost after sending) is not repeated.
"""

from __future__ import annotations

from .errors import (
    AccessDenied,
    AddressInUse,
    AlreadyExists,
    AmbiguousIdentity,
    AmbiguousObject,
    DirSyncedObject,
    ExchangeError,
    InvalidFilter,
    InvalidParameter,
    MemberAlreadyExists,
    MemberNotFound,
    ObjectNotFound,
    OutcomeUnknown,
    ServiceUnavailable,
    Throttled,
    Unauthorized,
    UnknownCmdlet,
    Unreachable,
    classify_error,
    human_message,
    parse_exception_type,
)
from .online import DEPENDENCY_ATTRIBUTES, EXCHANGE_SCOPE, ExchangeOnline, ExchangeOnlineSettings
from .onprem import ExchangeOnPrem, exchange_error_from
from .opath import (
    OpathFilter,
    opath_all,
    opath_any,
    opath_eq,
    opath_like,
    opath_ne,
    opath_not,
    opath_present,
    opath_quote,
)
from .params import (
    SET_DISTRIBUTION_GROUP_PARAMETERS,
    SET_DYNAMIC_DISTRIBUTION_GROUP_PARAMETERS,
    SET_MAIL_CONTACT_PARAMETERS,
    SWITCH,
    MultiValuedUpdate,
    ParamValue,
    ScalarValue,
    alias_value,
    check_cmdlet,
    check_parameters,
    proxy_address,
    smtp_address,
)
from .powershell import (
    CmdletFailed,
    LabPowerShellTransport,
    PowerShellError,
    PowerShellTransport,
    PSErrorRecord,
    PsrpSettings,
    PsrpTransport,
    RemotingAuthFailed,
    RemotingOutcomeUnknown,
    RemotingUnreachable,
    ps_to_python,
)
from .types import (
    AcceptedDomain,
    DistributionGroup,
    DynamicDistributionGroup,
    OutboundConnector,
    Recipient,
    RecipientPermission,
)

__all__ = [
    "AcceptedDomain",
    "AccessDenied",
    "AddressInUse",
    "AlreadyExists",
    "AmbiguousIdentity",
    "AmbiguousObject",
    "CmdletFailed",
    "DEPENDENCY_ATTRIBUTES",
    "DirSyncedObject",
    "DistributionGroup",
    "DynamicDistributionGroup",
    "EXCHANGE_SCOPE",
    "ExchangeError",
    "ExchangeOnPrem",
    "ExchangeOnline",
    "ExchangeOnlineSettings",
    "InvalidFilter",
    "InvalidParameter",
    "LabPowerShellTransport",
    "MemberAlreadyExists",
    "MemberNotFound",
    "MultiValuedUpdate",
    "ObjectNotFound",
    "OpathFilter",
    "OutboundConnector",
    "OutcomeUnknown",
    "PSErrorRecord",
    "ParamValue",
    "PowerShellError",
    "PowerShellTransport",
    "PsrpSettings",
    "PsrpTransport",
    "Recipient",
    "RecipientPermission",
    "RemotingAuthFailed",
    "RemotingOutcomeUnknown",
    "RemotingUnreachable",
    "SET_DISTRIBUTION_GROUP_PARAMETERS",
    "SET_DYNAMIC_DISTRIBUTION_GROUP_PARAMETERS",
    "SET_MAIL_CONTACT_PARAMETERS",
    "SWITCH",
    "ScalarValue",
    "ServiceUnavailable",
    "Throttled",
    "Unauthorized",
    "UnknownCmdlet",
    "Unreachable",
    "alias_value",
    "check_cmdlet",
    "check_parameters",
    "classify_error",
    "exchange_error_from",
    "human_message",
    "opath_all",
    "opath_any",
    "opath_eq",
    "opath_like",
    "opath_ne",
    "opath_not",
    "opath_present",
    "opath_quote",
    "parse_exception_type",
    "proxy_address",
    "ps_to_python",
    "smtp_address",
]
