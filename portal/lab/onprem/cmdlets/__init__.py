"""The cmdlets the lab answers, by noun, and the table of their specs."""

from __future__ import annotations

from ..binding import _CUSTOM, _UNSUPPORTED_GET, _UNSUPPORTED_NEW_DDL, _UNSUPPORTED_SET, _Spec
from ..recipient_types import _CONDITIONALS
from .accepted_domain import _get_accepted_domain
from .distribution_group import _set_distribution_group
from .dynamic_distribution_group import (
    _get_dynamic_distribution_group,
    _new_dynamic_distribution_group,
    _remove_dynamic_distribution_group,
    _set_dynamic_distribution_group,
)
from .mail_contact import _set_mail_contact
from .recipient import _get_recipient, _update_recipient

_SET_COMMON = ("Identity", "Alias", "DisplayName", "Name", "EmailAddresses", "PrimarySmtpAddress",
               "HiddenFromAddressListsEnabled", "RequireSenderAuthenticationEnabled", *_CUSTOM)
_GET_LIST = ("Identity", "Filter", "OrganizationalUnit", "ResultSize")

_CMDLETS: dict[str, _Spec] = {spec.name.lower(): spec for spec in (
    _Spec("Get-AcceptedDomain", _get_accepted_domain, frozenset({"Identity"})),
    _Spec("Get-Recipient", _get_recipient, frozenset(_GET_LIST), unsupported=_UNSUPPORTED_GET),
    _Spec("Update-Recipient", _update_recipient, frozenset({"Identity"}), ("Identity",),
          unsupported=frozenset({"Credential"})),
    _Spec("Set-MailContact", _set_mail_contact, frozenset({*_SET_COMMON, "ExternalEmailAddress"}), ("Identity",),
          unsupported=_UNSUPPORTED_SET),
    _Spec("Set-DistributionGroup", _set_distribution_group, frozenset(_SET_COMMON), ("Identity",),
          unsupported=_UNSUPPORTED_SET),
    _Spec("New-DynamicDistributionGroup", _new_dynamic_distribution_group, frozenset({
        "Name", "Alias", "DisplayName", "PrimarySmtpAddress", "OrganizationalUnit", "RecipientFilter",
        "IncludedRecipients", "RecipientContainer", *_CONDITIONALS}), ("Name",), unsupported=_UNSUPPORTED_NEW_DDL),
    _Spec("Set-DynamicDistributionGroup", _set_dynamic_distribution_group, frozenset({
        *_SET_COMMON, "RecipientFilter", "RecipientContainer"}), ("Identity",), unsupported=_UNSUPPORTED_SET),
    _Spec("Get-DynamicDistributionGroup", _get_dynamic_distribution_group, frozenset(_GET_LIST),
          unsupported=_UNSUPPORTED_GET),
    _Spec("Remove-DynamicDistributionGroup", _remove_dynamic_distribution_group, frozenset({"Identity"}),
          ("Identity",), confirm=True),
)}
