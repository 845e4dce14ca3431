"""How to reach one tenant's Graph (built from Django settings by ``connectors/registry.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from kiota_http.middleware.options import RetryHandlerOption

from .auth import GRAPH_SCOPE, AppCredentials


@dataclass(frozen=True)
class GraphSettings:
    """How to reach Microsoft Graph for one tenant."""

    credentials: AppCredentials
    graph_url: str = "https://graph.microsoft.com/v1.0"
    beta_url: str | None = None  # default: graph_url with its last segment replaced by "beta"
    scope: str = GRAPH_SCOPE
    timeout: float = 60.0
    max_retries: int = 5  # the SDK's RetryHandler (at most 10)
    retry_delay: float = 1.0  # base delay the RetryHandler adds when the answer has no Retry-After
    batch_item_retries: int = 4  # 429/503 items inside a $batch, retried by this module
    max_retry_wait: float = 120.0  # a longer Retry-After inside a batch ends in Throttled
    batch_concurrency: int = 4  # $batch requests in flight at once
    page_size: int = 999

    def __post_init__(self) -> None:
        if not self.graph_url.startswith(("https://", "http://")):
            raise ValueError("graph_url must be an absolute URL")
        if not 0 <= self.max_retries <= RetryHandlerOption.MAX_MAX_RETRIES:
            raise ValueError(f"max_retries must be between 0 and {RetryHandlerOption.MAX_MAX_RETRIES}")
        if self.batch_concurrency < 1 or self.page_size < 1:
            raise ValueError("batch_concurrency and page_size must be positive")

    @property
    def base(self) -> str:
        return self.graph_url.rstrip("/")

    @property
    def beta(self) -> str:
        if self.beta_url:
            return self.beta_url.rstrip("/")
        head, _, _ = self.base.rpartition("/")
        return f"{head}/beta"
