"""What the Exchange cmdlets return, as typed values (``from_dict`` reads the cmdlet's output object)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import AmbiguousIdentity, ObjectNotFound

_MAX_NAMED = 10


def only_match(found: list[dict[str, Any]], *, cmdlet: str, identity: object, what: str) -> dict[str, Any]:
    """The one object a look-up by identity found; none is ObjectNotFound, several AmbiguousIdentity."""
    if not found:
        raise ObjectNotFound(f"{cmdlet}: no {what} {identity}", cmdlet=cmdlet)
    if len(found) == 1:
        return found[0]
    matches = [_describe(doc) for doc in found]
    listed = "; ".join(matches[:_MAX_NAMED]) + (f"; and {len(matches) - _MAX_NAMED} more" if len(matches) > _MAX_NAMED
                                                else "")
    raise AmbiguousIdentity(
        f"{cmdlet}: {identity} matches {len(found)} {what}s, not one: {listed}. Use an identity that names one "
        "(its GUID or primary SMTP address).", cmdlet=cmdlet, matches=matches)


def _describe(doc: Mapping[str, Any]) -> str:
    name = _text(doc, "DisplayName") or _text(doc, "Name") or _text(doc, "Identity") or "?"
    address = _text(doc, "PrimarySmtpAddress")
    where = _text(doc, "DistinguishedName") or _text(doc, "Guid") or _text(doc, "ExternalDirectoryObjectId")
    return name + (f" <{address}>" if address else "") + (f" ({where})" if where else "")


def _text(doc: Mapping[str, Any], key: str) -> str | None:
    value = doc.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, dict):  # an object rendered with its name
        value = value.get("Name") or value.get("DisplayName") or value.get("ToString")
    return str(value)


def _texts(doc: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = doc.get(key)
    if value is None or value == "":
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value if v is not None and v != "")
    return (str(value),)


def _flag(doc: Mapping[str, Any], key: str) -> bool | None:
    value = doc.get(key)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return bool(value)


@dataclass(frozen=True)
class Recipient:
    """A mail recipient as Exchange shows it (Get-Recipient, group members, dependency searches)."""

    identity: str | None
    guid: str | None
    name: str | None
    display_name: str | None
    alias: str | None
    primary_smtp_address: str | None
    email_addresses: tuple[str, ...]
    recipient_type: str | None
    recipient_type_details: str | None
    external_directory_object_id: str | None
    distinguished_name: str | None
    is_dir_synced: bool | None
    hidden_from_address_lists_enabled: bool | None
    found_by: str | None = None  # the cmdlet that found it (dependency searches)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], *, found_by: str | None = None) -> Recipient:
        return cls(
            identity=_text(doc, "Identity"),
            guid=_text(doc, "Guid") or _text(doc, "ExchangeObjectId"),
            name=_text(doc, "Name"),
            display_name=_text(doc, "DisplayName"),
            alias=_text(doc, "Alias"),
            primary_smtp_address=_text(doc, "PrimarySmtpAddress"),
            email_addresses=_texts(doc, "EmailAddresses"),
            recipient_type=_text(doc, "RecipientType"),
            recipient_type_details=_text(doc, "RecipientTypeDetails"),
            external_directory_object_id=_text(doc, "ExternalDirectoryObjectId"),
            distinguished_name=_text(doc, "DistinguishedName"),
            is_dir_synced=_flag(doc, "IsDirSynced"),
            hidden_from_address_lists_enabled=_flag(doc, "HiddenFromAddressListsEnabled"),
            found_by=found_by,
            raw=dict(doc),
        )


@dataclass(frozen=True)
class DistributionGroup:
    """A distribution group with the properties a DL migration copies, checks and restores."""

    identity: str | None
    guid: str | None
    name: str | None
    display_name: str | None
    alias: str | None
    primary_smtp_address: str | None
    email_addresses: tuple[str, ...]
    recipient_type_details: str | None
    group_type: str | None
    external_directory_object_id: str | None
    distinguished_name: str | None
    legacy_exchange_dn: str | None
    managed_by: tuple[str, ...]
    accept_messages_only_from_senders_or_members: tuple[str, ...]
    reject_messages_from_senders_or_members: tuple[str, ...]
    moderated_by: tuple[str, ...]
    bypass_moderation_from_senders_or_members: tuple[str, ...]
    grant_send_on_behalf_to: tuple[str, ...]
    moderation_enabled: bool | None
    is_dir_synced: bool | None
    hidden_from_address_lists_enabled: bool | None
    require_sender_authentication_enabled: bool | None
    member_join_restriction: str | None
    member_depart_restriction: str | None
    custom_attributes: Mapping[int, str]
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> DistributionGroup:
        return cls(
            identity=_text(doc, "Identity"),
            guid=_text(doc, "Guid") or _text(doc, "ExchangeObjectId"),
            name=_text(doc, "Name"),
            display_name=_text(doc, "DisplayName"),
            alias=_text(doc, "Alias"),
            primary_smtp_address=_text(doc, "PrimarySmtpAddress"),
            email_addresses=_texts(doc, "EmailAddresses"),
            recipient_type_details=_text(doc, "RecipientTypeDetails"),
            group_type=_text(doc, "GroupType"),
            external_directory_object_id=_text(doc, "ExternalDirectoryObjectId"),
            distinguished_name=_text(doc, "DistinguishedName"),
            legacy_exchange_dn=_text(doc, "LegacyExchangeDN"),
            managed_by=_texts(doc, "ManagedBy"),
            accept_messages_only_from_senders_or_members=_texts(doc, "AcceptMessagesOnlyFromSendersOrMembers"),
            reject_messages_from_senders_or_members=_texts(doc, "RejectMessagesFromSendersOrMembers"),
            moderated_by=_texts(doc, "ModeratedBy"),
            bypass_moderation_from_senders_or_members=_texts(doc, "BypassModerationFromSendersOrMembers"),
            grant_send_on_behalf_to=_texts(doc, "GrantSendOnBehalfTo"),
            moderation_enabled=_flag(doc, "ModerationEnabled"),
            is_dir_synced=_flag(doc, "IsDirSynced"),
            hidden_from_address_lists_enabled=_flag(doc, "HiddenFromAddressListsEnabled"),
            require_sender_authentication_enabled=_flag(doc, "RequireSenderAuthenticationEnabled"),
            member_join_restriction=_text(doc, "MemberJoinRestriction"),
            member_depart_restriction=_text(doc, "MemberDepartRestriction"),
            custom_attributes={
                i: str(doc[f"CustomAttribute{i}"]) for i in range(1, 16) if doc.get(f"CustomAttribute{i}")},
            raw=dict(doc),
        )


@dataclass(frozen=True)
class DynamicDistributionGroup:
    identity: str | None
    guid: str | None
    name: str | None
    display_name: str | None
    alias: str | None
    primary_smtp_address: str | None
    email_addresses: tuple[str, ...]
    recipient_filter: str | None
    recipient_container: str | None
    distinguished_name: str | None
    managed_by: tuple[str, ...]
    hidden_from_address_lists_enabled: bool | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> DynamicDistributionGroup:
        return cls(
            identity=_text(doc, "Identity"),
            guid=_text(doc, "Guid"),
            name=_text(doc, "Name"),
            display_name=_text(doc, "DisplayName"),
            alias=_text(doc, "Alias"),
            primary_smtp_address=_text(doc, "PrimarySmtpAddress"),
            email_addresses=_texts(doc, "EmailAddresses"),
            recipient_filter=_text(doc, "RecipientFilter"),
            recipient_container=_text(doc, "RecipientContainer"),
            distinguished_name=_text(doc, "DistinguishedName"),
            managed_by=_texts(doc, "ManagedBy"),
            hidden_from_address_lists_enabled=_flag(doc, "HiddenFromAddressListsEnabled"),
            raw=dict(doc),
        )


@dataclass(frozen=True)
class AcceptedDomain:
    name: str | None
    domain_name: str | None
    domain_type: str | None  # Authoritative, InternalRelay, ExternalRelay
    default: bool | None
    initial: bool | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> AcceptedDomain:
        return cls(_text(doc, "Name"), _text(doc, "DomainName"), _text(doc, "DomainType"), _flag(doc, "Default"),
                   _flag(doc, "InitialDomain"), dict(doc))


@dataclass(frozen=True)
class OutboundConnector:
    name: str | None
    enabled: bool | None
    connector_type: str | None  # OnPremises, Partner
    smart_hosts: tuple[str, ...]
    recipient_domains: tuple[str, ...]
    use_mx_record: bool | None
    is_transport_rule_scoped: bool | None
    tls_settings: str | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> OutboundConnector:
        return cls(_text(doc, "Name"), _flag(doc, "Enabled"), _text(doc, "ConnectorType"), _texts(doc, "SmartHosts"),
                   _texts(doc, "RecipientDomains"), _flag(doc, "UseMXRecord"), _flag(doc, "IsTransportRuleScoped"),
                   _text(doc, "TlsSettings"), dict(doc))


@dataclass(frozen=True)
class RecipientPermission:
    identity: str | None
    trustee: str | None
    access_control_type: str | None
    access_rights: tuple[str, ...]
    is_inherited: bool | None

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> RecipientPermission:
        return cls(_text(doc, "Identity"), _text(doc, "Trustee"), _text(doc, "AccessControlType"),
                   _texts(doc, "AccessRights"), _flag(doc, "IsInherited"))
