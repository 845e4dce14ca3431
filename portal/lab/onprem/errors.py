"""Cmdlet errors as Exchange reports them (.NET types and wording), and their error records."""

from __future__ import annotations

import uuid
from typing import Any

from portal.connectors import ad
from portal.connectors.ad import AdError


class CmdletError(Exception):
    """A cmdlet failure as Exchange reports it: the .NET exception type and its message."""

    def __init__(self, exception: str, message: str, *, category: str = "NotSpecified", target: str = "",
                 fq_error_id: str | None = None) -> None:
        super().__init__(message)
        self.exception = exception
        self.message = message
        self.category = category
        self.target = target
        self.fq_error_id = fq_error_id


_NOT_FOUND = "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"
_AMBIGUOUS = "Microsoft.Exchange.Configuration.Tasks.ManagementObjectAmbiguousException"
_BINDING = "System.Management.Automation.ParameterBindingException"
_TRANSFORMATION = "System.Management.Automation.ParameterBindingArgumentTransformationException"
_DATA_VALIDATION = "Microsoft.Exchange.Data.DataValidationException"
# The message is Exchange's ErrorProxyAddressAlreadyExists string; the namespace of the type was not
# confirmed (public scripts name Microsoft.Exchange.Data.* variants), the short name is certain.
_PROXY_EXISTS = "Microsoft.Exchange.Data.Directory.ProxyAddressExistsException"
_ALREADY_EXISTS = "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException"
_AD_OPERATION = "Microsoft.Exchange.Data.Directory.ADOperationException"
_AD_TRANSIENT = "Microsoft.Exchange.Data.Directory.ADTransientException"
_INVALID_OPERATION = "System.InvalidOperationException"

_ALIAS_RULE = (
    "Valid values are: Strings formed with characters from A to Z (uppercase or lowercase), digits from 0 to 9, !, "
    "#, $, %, &, ', *, +, -, /, =, ?, ^, _, `, {, |, } or ~. One or more periods may be embedded in an alias, but "
    "each period should be preceded and followed by at least one of the other characters."
)
_MORE_RESULTS = ("There are more results available than are currently displayed. To view them, increase the value "
                 "for the ResultSize parameter.")


def _parameter_not_found(name: str) -> CmdletError:
    return CmdletError(_BINDING, f"A parameter cannot be found that matches parameter name '{name}'.",
                       category="InvalidArgument", fq_error_id="NamedParameterNotFound")


def _conversion(parameter: str, value: Any, target_type: str, detail: str = "") -> CmdletError:
    extra = f' Error: "{detail}"' if detail else ""
    return CmdletError(_TRANSFORMATION, f"Cannot process argument transformation on parameter '{parameter}'. Cannot "
                       f'convert value "{value}" to type "{target_type}".{extra}', category="InvalidData",
                       fq_error_id="ParameterArgumentTransformationError")


def _bad_smtp(parameter: str, value: Any) -> CmdletError:
    return _conversion(parameter, value, "Microsoft.Exchange.Data.SmtpAddress",
                       f'The email address "{value}" isn\'t correct. Please use this format: user name, the @ sign, '
                       "followed by the domain name. For example, tonysmith@contoso.com or tony.smith@contoso.com.")


def _parameter_set() -> CmdletError:
    return CmdletError(_BINDING, "Parameter set cannot be resolved using the specified named parameters.",
                       category="InvalidArgument", fq_error_id="AmbiguousParameterSet")


def _filter_error(parameter: str, text: str, detail: str) -> CmdletError:
    # Exchange's wording around its OPATH parser (as quoted in Microsoft Q&A threads).
    return CmdletError(_BINDING, f"Cannot bind parameter '{parameter}' to the target. Exception setting "
                       f'"{parameter}": "{detail}"', category="InvalidArgument",
                       fq_error_id="ParameterBindingFailed", target=text)


def _not_implemented(cmdlet: str, what: str) -> CmdletError:
    # Lab wording: the real cmdlet has this parameter or form, the lab does not emulate it.
    return CmdletError("System.NotSupportedException",
                       f"{cmdlet}: the rehearsal lab's Exchange does not implement {what}.",
                       category="NotImplemented")


def _record(error: CmdletError, cmdlet: str) -> dict[str, Any]:
    """One error record, with the keys app.py's records have (named after pypsrp's ErrorRecord)."""
    short = error.exception.rsplit(".", 1)[-1]
    noun = cmdlet.replace("-", "")
    fq = f"{error.fq_error_id},{cmdlet}" if error.fq_error_id else \
        f"{uuid.uuid5(uuid.NAMESPACE_OID, short).hex[:8].upper()},Microsoft.Exchange.Management.RecipientTasks.{noun}"
    return {
        "exception_type": error.exception, "message": error.message, "fq_error_id": fq,
        "category": error.category, "reason": short, "activity": cmdlet, "target_name": error.target,
        "target_type": "String" if error.target else "",
    }


def _from_ad_error(exc: AdError, server: str) -> CmdletError:
    detail = exc.ldap_message or exc.description or exc.message
    if isinstance(exc, ad.NotFound):
        target = exc.dn or ""
        return CmdletError(_NOT_FOUND, f"The operation couldn't be performed because object '{target}' couldn't be "
                           f"found on '{server}'.", target=target)
    if isinstance(exc, ad.AlreadyExists):
        return CmdletError(_ALREADY_EXISTS, f"Active Directory operation failed on {server}. The object "
                           f"'{exc.dn}' already exists.", target=exc.dn or "")
    if isinstance(exc, ad.ServerDown):
        return CmdletError(_AD_TRANSIENT, f"Active Directory server {server} is not available. Error message: "
                           f"{exc.message}", category="ResourceUnavailable")
    if isinstance(exc, ad.AccessDenied):
        return CmdletError(_AD_OPERATION, f"Active Directory operation failed on {server}. This error is not "
                           f"retriable. Additional information: Access is denied. ({detail})",
                           category="PermissionDenied")
    return CmdletError(_AD_OPERATION, f"Active Directory operation failed on {server}. This error is not retriable. "
                       f"Additional information: {detail}", category="WriteError")
