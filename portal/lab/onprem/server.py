"""The runner the lab cloud calls for /powershell/exchange-onprem: one cmdlet, one answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from portal.connectors.ad import ActiveDirectory, AdError

from .binding import _bind, _Spec
from .cmdlets import _CMDLETS
from .directory import _ensure_django, _server_names, _Session
from .errors import _INVALID_OPERATION, CmdletError, _from_ad_error, _record
from .names import domain_name
from .values import _bool_value


def _server_name(directory: ActiveDirectory, base_dn: str) -> str:
    """The DC's DNS name, as Exchange names it in its errors (dc1.lab.example in the lab)."""
    key = directory.settings.url
    if key not in _server_names:
        try:
            name = (directory.root_dse().get("dnsHostName") or [""])[0]
        except AdError:
            return f"dc1.{domain_name(base_dn)}"  # the DC is down: the call fails anyway, with this name
        _server_names[key] = name or f"dc1.{domain_name(base_dn)}"
    return _server_names[key]


def run(cmdlet: str, parameters: Mapping[str, Any], /) -> dict[str, Any]:
    """One cmdlet against the lab AD; ``{"output", "errors", "warnings"}`` as the lab cloud's hook wants.

    Never raises for a cmdlet's own failure: it becomes an error record. Secrets never appear in
    what is returned (messages pass the portal's redaction, which knows the AD password).
    """
    name = cmdlet.strip() if isinstance(cmdlet, str) else ""
    spec = _CMDLETS.get(name.lower())
    if spec is None:
        # Windows PowerShell's wording (Exchange's remote shell runs on Windows PowerShell 5.1).
        error = CmdletError("System.Management.Automation.CommandNotFoundException",
                            f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, or "
                            "operable program. Check the spelling of the name, or if a path was included, verify that "
                            "the path is correct and try again.", category="ObjectNotFound", target=name,
                            fq_error_id="CommandNotFoundException")
        record = _record(error, name)
        record["fq_error_id"] = "CommandNotFoundException"
        return {"output": [], "errors": [record], "warnings": []}
    if not isinstance(parameters, Mapping):
        parameters = {}
    try:
        bound = _bind(spec, parameters)
        if spec.confirm and ("Confirm" not in bound or _bool_value(
                bound["Confirm"] if bound["Confirm"] is not None else True, "Confirm")):
            # A remote session without a host cannot show the confirmation prompt.
            raise CmdletError("System.Management.Automation.Host.HostException", "A command that prompts the user "
                              "failed because the host program or the command type does not support user "
                              "interaction. Try a host program that supports user interaction, such as the Windows "
                              "PowerShell Console or Windows PowerShell ISE, and remove prompt-related commands from "
                              "command types that do not support user interaction, such as Windows PowerShell "
                              "workflows.", category="NotImplemented", fq_error_id="HostFunctionNotImplemented")
    except CmdletError as error:
        return {"output": [], "errors": [_record(error, spec.name)], "warnings": []}
    return _run_bound(spec, bound)


def _run_bound(spec: _Spec, bound: dict[str, Any]) -> dict[str, Any]:
    from portal.jobs.redaction import redact

    _ensure_django()
    from portal.connectors import registry

    server = "dc1"
    try:
        base_dn = registry.ad_layout().base_dn
        with registry.active_directory() as directory:
            server = _server_name(directory, base_dn)
            session = _Session(directory=directory, base_dn=base_dn, server=server)
            try:
                result = spec.handler(session, bound)
            except AdError as exc:
                raise _from_ad_error(exc, server) from exc
    except CmdletError as error:
        record = _record(error, spec.name)
        record["message"] = redact(record["message"])
        return {"output": [], "errors": [record], "warnings": []}
    except registry.NotConfigured as exc:
        error = CmdletError(_INVALID_OPERATION, str(exc), category="ResourceUnavailable")
        return {"output": [], "errors": [_record(error, spec.name)], "warnings": []}
    except AdError as exc:  # connecting or binding failed
        record = _record(_from_ad_error(exc, server), spec.name)
        record["message"] = redact(record["message"])
        return {"output": [], "errors": [record], "warnings": []}
    except Exception as exc:  # a lab defect: still an error record, still without secrets
        record = _record(CmdletError(type(exc).__name__, redact(f"{type(exc).__name__}: {exc}")), spec.name)
        return {"output": [], "errors": [record], "warnings": []}
    output, warnings = result if isinstance(result, tuple) else (result, [])
    return {"output": list(output), "errors": [], "warnings": list(warnings)}
