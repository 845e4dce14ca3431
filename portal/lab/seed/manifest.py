"""What a seed holds, per scenario: the objects embodying it and the facts that make them that case."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

# --------------------------------------------------------------------------------------------
# manifest


@dataclass(frozen=True)
class ScenarioObject:
    """One object embodying a scenario.

    ``facts["attributes"]`` maps attribute names to the exact values the object carries for the
    case (``[]``: the attribute must be absent); DN values are compared as DNs. Other facts are
    context (the IdFix class, the previous mail address, the planned writeback CN, ...).
    """

    dn: str
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    description: str
    objects: list[ScenarioObject]
    total: int  # objects embodying the case in AD; ``objects`` is a sample when the case is bulk


@dataclass
class Manifest:
    version: int
    base_dn: str
    users: int
    seed: int
    ous: dict[str, str]
    domains: dict[str, Any]
    counts: dict[str, int]
    scenarios: dict[str, Scenario]
    # What this call did; not part of the seed's identity (two equal seeds compare equal).
    created: int = field(default=0, compare=False)
    seconds: float = field(default=0.0, compare=False)

    def to_json(self, *, indent: int | None = None) -> str:
        data = asdict(self)
        data.pop("created")
        data.pop("seconds")
        return json.dumps(data, sort_keys=True, indent=indent, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        scenarios = {
            name: Scenario(
                description=s["description"],
                objects=[ScenarioObject(dn=o["dn"], facts=o["facts"]) for o in s["objects"]],
                total=s["total"],
            )
            for name, s in data.pop("scenarios").items()
        }
        return cls(scenarios=scenarios, **data)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def scenario(self, name: str) -> Scenario:
        try:
            return self.scenarios[name]
        except KeyError:
            raise KeyError(f"no scenario {name!r}; the manifest has {sorted(self.scenarios)}") from None

    def dns(self, name: str) -> list[str]:
        return [o.dn for o in self.scenario(name).objects]

    def first(self, name: str) -> ScenarioObject:
        return self.scenario(name).objects[0]
