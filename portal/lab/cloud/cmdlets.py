"""PowerShell cmdlet plumbing shared by Exchange Online and the Entra Connect server: the cmdlet
table entry, parameter binding and PowerShell's boolean coercion."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import missing_parameter, parameter_not_found

_COMMON_PARAMETERS = frozenset({
    "ErrorAction", "WarningAction", "InformationAction", "ErrorVariable", "WarningVariable", "InformationVariable",
    "OutVariable", "OutBuffer", "PipelineVariable", "Verbose", "Debug", "ProgressAction", "Confirm", "WhatIf",
})


@dataclass(frozen=True)
class _Cmdlet:
    name: str
    handler: Callable[..., Any]
    parameters: frozenset[str]
    required: tuple[str, ...] = ()


def _cmdlet(name: str, handler: Callable[..., Any], parameters: Iterable[str], required: Iterable[str] = ()
            ) -> tuple[str, _Cmdlet]:
    return name.lower(), _Cmdlet(name, handler, frozenset(parameters) | _COMMON_PARAMETERS, tuple(required))


def _bind_parameters(spec: _Cmdlet, params: Mapping[str, Any]) -> dict[str, Any]:
    """PowerShell parameter binding, reduced: names are case-insensitive, unknown names fail as
    PowerShell fails them, mandatory ones must be present."""
    canonical = {p.lower(): p for p in spec.parameters}
    bound: dict[str, Any] = {}
    for key, value in params.items():
        if key.startswith("@"):
            continue
        name = canonical.get(key.lstrip("-").lower())
        if name is None:
            raise parameter_not_found(key.lstrip("-"))
        bound[name] = value
    missing = [p for p in spec.required if p not in bound or bound[p] in (None, "", [])]
    if missing:
        raise missing_parameter(missing)
    return bound



def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower().lstrip("$") in {"true", "1", "yes"}
    return bool(value)
