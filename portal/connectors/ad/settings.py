"""How to reach one AD domain (built from Django settings by ``connectors/registry.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .dn import parse_dn


@dataclass(frozen=True)
class AdSettings:
    """How to reach one AD domain. The password never appears in repr() or logs."""

    host: str
    base_dn: str
    bind_dn: str | None = None
    password: str | None = field(default=None, repr=False)
    port: int | None = None  # default 636 with use_ssl, else 389
    use_ssl: bool = False
    start_tls: bool = False
    validate_cert: bool = True
    ca_file: str | None = None
    tls_server_name: str | None = None
    auth: Literal["simple", "gssapi"] = "simple"
    gssapi_host: str | None = None  # host part of the ldap/<host> SPN when it differs from host
    connect_timeout: float = 5.0
    operation_timeout: int = 60
    page_size: int = 500
    range_step: int = 1500  # Windows' MaxValRange; the server may return fewer per step
    retries: int = 3
    retry_backoff: float = 0.3

    def __post_init__(self) -> None:
        if self.use_ssl and self.start_tls:
            raise ValueError("use_ssl (LDAPS) and start_tls are exclusive")
        if self.auth not in ("simple", "gssapi"):
            raise ValueError(f"unknown auth mode {self.auth!r}")
        if self.page_size < 1 or self.range_step < 1:
            raise ValueError("page_size and range_step must be positive")
        parse_dn(self.base_dn)

    @property
    def effective_port(self) -> int:
        return self.port or (636 if self.use_ssl else 389)

    @property
    def url(self) -> str:
        return f"{'ldaps' if self.use_ssl else 'ldap'}://{self.host}:{self.effective_port}"
