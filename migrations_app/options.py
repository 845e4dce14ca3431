"""The options of one DL migration, as the form, the command line and a batch give them."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from typing import Any

GROUP_TYPES = ("", "Distribution", "Security")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")
_AFFIX = re.compile(r"^[A-Za-z0-9 ._\-]*$")
EXCHANGE_NAME_LIMIT = 64
METHODS = ("recreate", "in_place")  # MigrationMethod's values (no Django import here)


class InvalidOptions(ValueError):
    """An option the migration cannot work with; the message says which and why."""


@dataclass(frozen=True)
class MigrationOptions:
    skip_nested_group_check: bool = False
    hybrid_mail_flow: bool = False
    keep_original: bool = True
    group_type: str = ""  # "" keeps the on-premises type
    routing_domain: str = ""  # "" = the tenant's <tenant>.mail.onmicrosoft.com domain
    name_prefix: str = ""
    name_suffix: str = ""
    remove_twin_via_graph: bool = False
    allow_centralized_mail_flow: bool = False  # proceed although an outbound connector routes all mail on-premises
    non_sync_ou: str = ""  # "" = the configured non-sync OU
    method: str = "recreate"  # or "in_place": a MigrationMethod value; pinned with the plan an approval signs

    def __post_init__(self) -> None:
        if self.group_type not in GROUP_TYPES:
            raise InvalidOptions(f"group type must be Distribution or Security, not {self.group_type!r}")
        if self.routing_domain and not _DOMAIN.match(self.routing_domain):
            raise InvalidOptions(f"{self.routing_domain!r} is not a domain name")
        for label, value in (("prefix", self.name_prefix), ("suffix", self.name_suffix)):
            if not _AFFIX.match(value) or len(value) > EXCHANGE_NAME_LIMIT:
                raise InvalidOptions(f"the name {label} may hold letters, digits, spaces and . _ - only")
        if self.method not in METHODS:
            raise InvalidOptions(f"method must be recreate or in_place, not {self.method!r}")
        if self.non_sync_ou and "=" not in self.non_sync_ou:
            raise InvalidOptions(f"{self.non_sync_ou!r} is not a distinguished name")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> MigrationOptions:
        known = {f.name for f in fields(cls)}
        unknown = set(data or {}) - known
        if unknown:
            raise InvalidOptions(f"unknown option(s): {', '.join(sorted(unknown))}")
        return cls(**(data or {}))

    def cloud_name(self, name: str) -> str:
        return f"{self.name_prefix}{name}{self.name_suffix}"
