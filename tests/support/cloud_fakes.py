"""Fakes for the cloud connectors' unit tests: a token source that never talks to an authority (msal's place) and
a PowerShell transport that answers each cmdlet from a script (the sync server's and Exchange on-premises' place)."""

from __future__ import annotations

import time
from typing import Any

from portal.connectors import graph

TENANT = "6f1d3c52-1b9e-4f2a-9c31-2a7f0e1b9d44"
SECRET = "s3cret~value-never-shown"
CREDS = graph.AppCredentials(tenant_id=TENANT, client_id="c0ffee00-0000-4000-8000-000000000001",
                             client_secret=SECRET)


class StaticTokens(graph.TokenSource):
    """A token source that never talks to an authority."""

    def __init__(self, roles: tuple[str, ...] = ("Exchange.ManageAsApp",)) -> None:
        super().__init__(CREDS)
        self.roles = roles
        self.issued = 0
        self.invalidated = 0

    def acquire(self, scope: str, *, claims: str | None = None) -> graph.AccessToken:
        self.issued += 1
        return graph.AccessToken(token=f"token-{self.issued}", expires_at=time.time() + 3600,
                                 claims={"tid": TENANT, "roles": list(self.roles)})

    def invalidate(self) -> None:
        self.invalidated += 1


class ScriptedTransport:
    endpoint = "fake://sync"

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def run(self, cmdlet: str, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        self.calls.append((cmdlet, dict(parameters)))
        answer = self.answers[cmdlet]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self) -> None:
        pass
