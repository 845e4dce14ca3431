"""Error answers as each service shapes them: Graph's error body, Exchange's cmdlet failures
(``ExchangeError`` and its usual kinds) and PowerShell error records."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from .api import ApiError, ApiRequest, ApiResponse
from .store.common import EXCHANGE_SERVER_FQDN, utc_now


def _request_ids(req: ApiRequest | None) -> tuple[str, str]:
    request_id = str(uuid.uuid4())
    client_id = (req.headers.get("client-request-id") if req else None) or request_id
    return request_id, client_id


def graph_error(status: int, code: str, message: str, req: ApiRequest | None = None,
                headers: Mapping[str, str] | None = None) -> ApiError:
    """Graph's error body: ``{"error": {"code", "message", "innerError": {date, request-id,
    client-request-id}}}`` (as in every Graph error quoted in microsoft-graph-docs issues)."""
    request_id, client_id = _request_ids(req)
    body = {"error": {"code": code, "message": message, "innerError": {
        "date": utc_now().strftime("%Y-%m-%dT%H:%M:%S"), "request-id": request_id, "client-request-id": client_id}}}
    return ApiError(ApiResponse(status, body, {"request-id": request_id, "client-request-id": client_id,
                                               **(headers or {})}))



# --------------------------------------------------------------------------------------------
# Exchange errors


class ExchangeError(Exception):
    """A cmdlet failure: ``exception`` is the .NET type Exchange names in ``details[].message``."""

    def __init__(self, exception: str, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.exception = exception
        self.message = message
        self.status = status


# The id Exchange prefixes to a ManagementObjectNotFoundException (seen in every such message
# quoted in the field notes and on Microsoft Q&A); other ids are the lab's own, stable per type.
_EXCHANGE_ERROR_IDS = {"Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException": "Ex6F9304"}


def _exchange_error_id(exception: str) -> str:
    return _EXCHANGE_ERROR_IDS.get(exception) or "Ex" + hashlib.sha1(exception.encode()).hexdigest()[:6].upper()


def not_found(identity: str) -> ExchangeError:
    return ExchangeError(
        "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
        f"The operation couldn't be performed because object '{identity}' couldn't be found on "
        f"'{EXCHANGE_SERVER_FQDN}'.",
        status=404,
    )


def member_not_found(identity: str) -> ExchangeError:
    return ExchangeError(
        "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
        f'Couldn\'t find object "{identity}". Please make sure that it was spelled correctly or specify a different '
        "object.",
        status=404,
    )


def ambiguous(identity: str) -> ExchangeError:
    return ExchangeError(
        "Microsoft.Exchange.Configuration.Tasks.ManagementObjectAmbiguousException",
        f"The operation couldn't be performed because '{identity}' matches multiple entries.",
    )


def synced_object(cmdlet: str, prop: str | None, name: str) -> ExchangeError:
    # Exchange Online's refusal to change a dir-synced object (quoted in Microsoft Q&A threads and
    # admin blogs: "The action 'Set-DistributionGroup', 'ManagedBy', can't be performed on the object
    # ... because the object is being synchronized from your on-premises organization.").
    action = f"'{cmdlet}', '{prop}'," if prop else f"'{cmdlet}',"
    return ExchangeError(
        "System.InvalidOperationException",
        f"The action {action} can't be performed on the object '{name}' because the object is being synchronized "
        "from your on-premises organization. This action should be performed on the object in your on-premises "
        "organization.",
    )


def parameter_not_found(name: str) -> ExchangeError:
    return ExchangeError("System.Management.Automation.ParameterBindingException",
                         f"A parameter cannot be found that matches parameter name '{name}'.")


def missing_parameter(names: Iterable[str]) -> ExchangeError:
    return ExchangeError("System.Management.Automation.ParameterBindingException",
                         "Cannot process command because of one or more missing mandatory parameters: "
                         f"{' '.join(names)}.")


def command_not_found(name: str) -> str:
    return (f"The term '{name}' is not recognized as a name of a cmdlet, function, script file, or executable "
            "program.\nCheck the spelling of the name, or if a path was included, verify that the path is correct "
            "and try again.")


def exchange_error_response(error: ExchangeError, req: ApiRequest) -> ApiResponse:
    """The admin API's error body: a generic ``message`` and the cmdlet's own error in
    ``details[0].message`` as ``<id>|<exception type>|<text>``, with ``innererror`` naming the
    service exception (shape of the bodies quoted by ExoHelper and Exchange proxy errors)."""
    request_id, client_id = _request_ids(req)
    code = "NotFound" if error.status == 404 else "BadRequest"
    body = {"error": {
        "code": code,
        "message": "Error executing cmdlet",
        "details": [{"code": "Client", "target": "",
                     "message": f"{_exchange_error_id(error.exception)}|{error.exception}|{error.message}"}],
        "innererror": {"message": "Error executing cmdlet",
                       "type": "Microsoft.Exchange.Admin.OData.Core.ODataServiceException",
                       "stacktrace": ""},
    }}
    return ApiResponse(error.status, body, {"request-id": request_id, "client-request-id": client_id})



def _ps_error(exception: str, message: str, category: str, activity: str, *, fq_error_id: str | None = None,
              target_name: str = "") -> dict[str, Any]:
    """One error record, named after pypsrp's ErrorRecord fields."""
    return {
        "exception_type": exception,
        "message": message,
        "fq_error_id": fq_error_id or f"{exception.rsplit('.', 1)[-1]},{activity}",
        "category": category,
        "reason": exception.rsplit(".", 1)[-1],
        "activity": activity,
        "target_name": target_name,
        "target_type": "String" if target_name else "",
    }


def _ps_result(output: list[Any], errors: list[dict[str, Any]], warnings: list[str] | None = None) -> dict[str, Any]:
    return {"output": output, "warnings": warnings or [], "errors": errors, "had_errors": bool(errors)}
