"""Exchange on-premises through a remote PowerShell transport."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..ad.types import CheckItem
from ..graph.types import CloudCheckReport
from .errors import ExchangeError, OutcomeUnknown, Unauthorized, Unreachable, classify_error
from .opath import OpathFilter, _checked_opath
from .params import (
    SET_DYNAMIC_DISTRIBUTION_GROUP_PARAMETERS,
    SET_MAIL_CONTACT_PARAMETERS,
    _dn,
    _identity,
    _name,
    _typed_changes,
    alias_value,
    smtp_address,
)
from .powershell import (
    PowerShellError,
    PowerShellTransport,
    PSErrorRecord,
    RemotingAuthFailed,
    RemotingOutcomeUnknown,
    RemotingUnreachable,
)
from .types import AcceptedDomain, DynamicDistributionGroup, only_match


def exchange_error_from(exc: PowerShellError) -> ExchangeError:
    """A PowerShell failure as the ExchangeError subclass its exception type or message calls for."""
    if isinstance(exc, RemotingAuthFailed):
        return Unauthorized(exc.message, cmdlet=exc.cmdlet)
    if isinstance(exc, RemotingOutcomeUnknown):
        return OutcomeUnknown(exc.message, cmdlet=exc.cmdlet)
    if isinstance(exc, RemotingUnreachable):
        return Unreachable(exc.message, cmdlet=exc.cmdlet)
    record = exc.records[0] if exc.records else PSErrorRecord(message=exc.message)
    cls = classify_error(record.exception_type, record.message)
    return cls(exc.message, cmdlet=exc.cmdlet, exception_type=record.exception_type, server_message=record.message)


class ExchangeOnPrem:
    """Exchange on-premises through a :class:`PowerShellTransport` (PSRP in production, the lab's
    endpoint in the lab). Only the cmdlets the portal needs, each with typed, checked parameters.
    """

    def __init__(self, transport: PowerShellTransport) -> None:
        self.transport = transport

    def __enter__(self) -> ExchangeOnPrem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    def _run(self, cmdlet: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        try:
            return self.transport.run(cmdlet, params)
        except PowerShellError as exc:
            raise exchange_error_from(exc) from None

    def update_recipient(self, identity: str) -> None:
        """Update-Recipient: let the Recipient Update Service stamp addresses (e.g. after attribute writes)."""
        self._run("Update-Recipient", {"Identity": _identity(identity), "Confirm": False})

    def set_mail_contact(self, identity: str, *, changes: Mapping[str, Any]) -> None:
        params = _typed_changes("Set-MailContact", SET_MAIL_CONTACT_PARAMETERS, changes, allow_null=False)
        if params:
            self._run("Set-MailContact", {"Identity": _identity(identity), **params})

    def get_dynamic_distribution_group(self, identity: str) -> DynamicDistributionGroup:
        found = self._run("Get-DynamicDistributionGroup", {"Identity": _identity(identity)})
        return DynamicDistributionGroup.from_dict(
            only_match(found, cmdlet="Get-DynamicDistributionGroup", identity=identity, what="group"))

    def new_dynamic_distribution_group(
        self,
        *,
        name: str,
        alias: str,
        recipient_filter: OpathFilter,
        organizational_unit: str | None = None,
        recipient_container: str | None = None,
        primary_smtp_address: str | None = None,
        display_name: str | None = None,
    ) -> DynamicDistributionGroup:
        """A dynamic DL whose members are ``recipient_filter`` (an OPATH filter) under ``recipient_container``."""
        params: dict[str, Any] = {
            "Name": _name(name, "Name", 64),
            "Alias": alias_value(alias),
            "RecipientFilter": _checked_opath(recipient_filter),
            "DisplayName": _name(display_name or name, "DisplayName", 256),
        }
        if organizational_unit:
            params["OrganizationalUnit"] = _dn(organizational_unit, "OrganizationalUnit")
        if recipient_container:
            params["RecipientContainer"] = _dn(recipient_container, "RecipientContainer")
        if primary_smtp_address:
            params["PrimarySmtpAddress"] = smtp_address(primary_smtp_address)
        created = self._run("New-DynamicDistributionGroup", params)
        if created:
            return DynamicDistributionGroup.from_dict(created[0])
        return self.get_dynamic_distribution_group(params["Alias"])

    def set_dynamic_distribution_group(self, identity: str, *, changes: Mapping[str, Any]) -> None:
        params = _typed_changes("Set-DynamicDistributionGroup", SET_DYNAMIC_DISTRIBUTION_GROUP_PARAMETERS, changes,
                                allow_null=False)
        if params:
            self._run("Set-DynamicDistributionGroup", {"Identity": _identity(identity), **params})

    def remove_dynamic_distribution_group(self, identity: str) -> None:
        self._run("Remove-DynamicDistributionGroup", {"Identity": _identity(identity), "Confirm": False})

    def check(self) -> CloudCheckReport:
        """The endpoint answers and runs one cheap cmdlet (Get-AcceptedDomain); never raises."""
        items: list[CheckItem] = []
        details: dict[str, Any] = {}
        try:
            domains = [AcceptedDomain.from_dict(d) for d in self.transport.run("Get-AcceptedDomain", {})]
            default = next((d.domain_name for d in domains if d.default), None)
            details["default_domain"] = default
            items.append(CheckItem("Get-AcceptedDomain", True,
                                   f"{len(domains)} accepted domain(s)" + (f", default {default}" if default else "")))
        except PowerShellError as exc:
            items.append(CheckItem("Get-AcceptedDomain", False, str(exchange_error_from(exc))))
        except ExchangeError as exc:
            items.append(CheckItem("Get-AcceptedDomain", False, str(exc)))
        return CloudCheckReport(all(i.ok for i in items), "Exchange on-premises", self.transport.endpoint,
                                tuple(items), details)
