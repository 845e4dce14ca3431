"""What the Graph connector returns: plain frozen dataclasses, never SDK models."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..ad.types import CheckItem
from .errors import GraphError


@dataclass(frozen=True)
class ProvisioningError:
    category: str | None
    property_causing_error: str | None
    value: str | None
    occurred: datetime | None


@dataclass(frozen=True)
class EntraUser:
    id: str
    user_principal_name: str | None = None
    display_name: str | None = None
    mail: str | None = None
    mail_nickname: str | None = None
    proxy_addresses: tuple[str, ...] = ()
    account_enabled: bool | None = None
    user_type: str | None = None
    on_premises_sync_enabled: bool | None = None
    on_premises_immutable_id: str | None = None
    on_premises_distinguished_name: str | None = None
    on_premises_sam_account_name: str | None = None
    on_premises_domain_name: str | None = None
    on_premises_last_sync: datetime | None = None
    certificate_user_ids: tuple[str, ...] = ()
    provisioning_errors: tuple[ProvisioningError, ...] = ()
    created: datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # properties outside the model, e.g. extensions


@dataclass(frozen=True)
class EntraGroup:
    id: str
    display_name: str | None = None
    mail: str | None = None
    mail_nickname: str | None = None
    mail_enabled: bool | None = None
    security_enabled: bool | None = None
    group_types: tuple[str, ...] = ()
    proxy_addresses: tuple[str, ...] = ()
    description: str | None = None
    on_premises_sync_enabled: bool | None = None
    on_premises_security_identifier: str | None = None
    on_premises_sam_account_name: str | None = None
    on_premises_domain_name: str | None = None
    on_premises_last_sync: datetime | None = None
    provisioning_errors: tuple[ProvisioningError, ...] = ()
    created: datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_microsoft_365_group(self) -> bool:
        return "Unified" in self.group_types


@dataclass(frozen=True)
class GroupMember:
    id: str
    kind: str  # user, group, orgContact, device, servicePrincipal, ...
    display_name: str | None = None
    user_principal_name: str | None = None
    mail: str | None = None
    # set when selected (MEMBER_KIND_SELECT): whether a user or group is synchronized from AD, what a group is
    on_premises_sync_enabled: bool | None = None
    security_enabled: bool | None = None
    mail_enabled: bool | None = None
    group_types: tuple[str, ...] = ()
    proxy_addresses: tuple[str, ...] = ()  # set when selected (MEMBER_ADDRESS_SELECT)


@dataclass(frozen=True)
class RegistrationDetails:
    """One row of ``reports/authenticationMethods/userRegistrationDetails``."""

    id: str
    user_principal_name: str | None
    user_display_name: str | None
    user_type: str | None
    is_admin: bool | None
    is_mfa_capable: bool | None
    is_mfa_registered: bool | None
    is_passwordless_capable: bool | None
    is_sspr_capable: bool | None
    is_sspr_enabled: bool | None
    is_sspr_registered: bool | None
    is_system_preferred_method_enabled: bool | None
    system_preferred_methods: tuple[str, ...]
    methods_registered: tuple[str, ...]
    user_preferred_method_for_secondary_authentication: str | None
    last_updated: datetime | None


@dataclass(frozen=True)
class AuthMethod:
    """One registered authentication method of a user."""

    id: str
    method: str  # short type: phone, microsoftAuthenticator, fido2, password, ...
    odata_type: str | None
    display_name: str | None
    created: datetime | None
    details: Mapping[str, Any] = field(default_factory=dict)  # the remaining properties, as Graph names them


@dataclass(frozen=True)
class UserAuthMethods:
    """The methods of one user from a batched read; ``error`` set instead when that item failed."""

    user_id: str
    methods: tuple[AuthMethod, ...] = ()
    error: GraphError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class AuditTarget:
    id: str | None
    display_name: str | None
    type: str | None
    user_principal_name: str | None
    modified_properties: tuple[tuple[str | None, str | None, str | None], ...] = ()  # (name, old, new)


@dataclass(frozen=True)
class DirectoryAudit:
    id: str
    activity: str | None
    activity_time: datetime | None
    category: str | None
    result: str | None
    result_reason: str | None
    operation_type: str | None
    logged_by_service: str | None
    correlation_id: str | None
    initiated_by_user_id: str | None
    initiated_by_upn: str | None
    initiated_by_app: str | None
    targets: tuple[AuditTarget, ...]
    additional_details: Mapping[str, str | None]


@dataclass(frozen=True)
class SyncBehavior:
    """``onPremisesSyncBehavior`` of one object: True when its source of authority is the cloud."""

    object_id: str
    is_cloud_managed: bool


@dataclass(frozen=True)
class GroupWriteback:
    """Group writeback settings of one cloud group (beta ``writebackConfiguration``)."""

    group_id: str
    display_name: str | None
    group_types: tuple[str, ...]
    is_enabled: bool | None  # as Graph returns it; null means "not set"
    on_premises_group_type: str | None

    @property
    def writeback_enabled(self) -> bool:
        """Whether Entra Connect writes the group back: an unset value counts as enabled."""
        return self.is_enabled is not False


@dataclass(frozen=True)
class CloudCheckReport:
    """Connectivity check of a cloud connector (Graph, Exchange, Entra Connect)."""

    ok: bool
    service: str
    endpoint: str
    items: tuple[CheckItem, ...]
    details: Mapping[str, Any] = field(default_factory=dict)

    def failures(self) -> list[CheckItem]:
        return [item for item in self.items if not item.ok]
