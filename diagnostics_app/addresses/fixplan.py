"""The before/after of a fix, per object and attribute: pure, so the plan page, the approval's pinned hash and
the apply job's "did AD change since the plan?" check all compute it the same way.

``fixes.do_plan_fix`` builds the plan from AD's values at planning time; the apply job calls :func:`drift`
with the values it reads just before writing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from portal.approvals import plan_hash

from .rules import Fix

__all__ = ["AttributeChange", "FixPlan", "build_plan", "drift", "verify_change"]


@dataclass(frozen=True)
class AttributeChange:
    dn: str
    attribute: str
    before: tuple[str, ...]
    after: tuple[str, ...]
    target: str = "ad"
    identity: str | None = None  # Exchange Online: the recipient's Entra object id

    def as_dict(self) -> dict:
        data = {"dn": self.dn, "attribute": self.attribute, "before": list(self.before), "after": list(self.after),
                "target": self.target}
        if self.target != "ad":
            data["identity"] = self.identity  # AD changes keep the shape (and hash) they had before this field
        return data


@dataclass(frozen=True)
class FixPlan:
    changes: tuple[AttributeChange, ...]
    refused: tuple[str, ...] = field(default=())  # why a fix could not be planned (said on the plan page)

    def as_dict(self) -> dict:
        return {"changes": [c.as_dict() for c in self.changes]}

    @property
    def hash(self) -> str:
        """What an approval pins (the same hashing as DL migration approvals)."""
        return plan_hash(self.as_dict())


def _key(value: str) -> str:
    return value.lower()


def build_plan(fixes: Iterable[tuple[str, Fix]], current: Mapping[str, Mapping[str, Iterable[str]]]) -> FixPlan:
    """Every (dn, fix) applied to the object's current values, fixes of one attribute combined in order.

    ``current``: dn -> attribute (any case) -> values as AD holds them now. An object missing from it has
    vanished: its fixes are refused, not planned.
    """
    lowered = {dn.lower(): {a.lower(): list(v) for a, v in attrs.items()} for dn, attrs in current.items()}
    state: dict[tuple[str, str], list[str]] = {}
    before: dict[tuple[str, str], tuple[str, ...]] = {}
    targets: dict[tuple[str, str], str] = {}
    names: dict[tuple[str, str], tuple[str, str]] = {}
    identities: dict[tuple[str, str], str | None] = {}
    refused: list[str] = []
    for dn, fix in fixes:
        attrs = lowered.get(dn.lower())
        if attrs is None:
            where = "AD" if fix.target == "ad" else "Exchange Online"
            refused.append(f"{dn}: the object is not in {where} any more; nothing is planned for it.")
            continue
        slot = (dn.lower(), fix.attribute.lower())
        if slot not in state:
            state[slot] = list(attrs.get(fix.attribute.lower(), []))
            before[slot] = tuple(state[slot])
            names[slot] = (dn, fix.attribute)
        if targets.setdefault(slot, fix.target) != fix.target:
            refused.append(f"{dn}: {fix.attribute} cannot be fixed in AD and in Exchange Online at once.")
            continue
        identities.setdefault(slot, fix.identity)
        values = state[slot]
        exchange = fix.target == "exchange_online"
        if fix.replace is not None or fix.clear:
            values[:] = [] if fix.clear else [fix.replace]
        missing = [v for v in fix.remove if _key(v) not in {_key(x) for x in values}]
        # A finding of a cloud-managed object reads AD's values, but the fix applies to Exchange Online's, which
        # need not hold what AD holds: a value to remove that Exchange does not have is already gone there.
        if missing and not exchange:
            refused.append(f"{dn}: {fix.attribute} no longer holds {', '.join(missing)}; the fix is left out.")
            continue
        removed = {_key(v) for v in fix.remove}
        values[:] = [v for v in values if _key(v) not in removed]
        for value in fix.add:
            if exchange and value.startswith("SMTP:"):
                # Exchange keeps one primary: a new SMTP: address demotes the current one, as Set-Mailbox does.
                values[:] = [f"smtp:{v[5:]}" if v.startswith("SMTP:") else v for v in values
                             if _key(v) != _key(value)]
            if _key(value) not in {_key(x) for x in values}:
                values.append(value)
    changes = tuple(AttributeChange(dn=names[s][0], attribute=names[s][1], before=before[s], after=tuple(v),
                                    target=targets[s], identity=identities[s] if targets[s] != "ad" else None)
                    for s, v in state.items() if tuple(v) != before[s])
    return FixPlan(changes=changes, refused=tuple(refused))


def drift(plan: FixPlan, current: Mapping[str, Mapping[str, Iterable[str]]]) -> list[AttributeChange]:
    """The planned changes whose object changed since the plan (the apply job skips and reports them)."""
    lowered = {dn.lower(): {a.lower(): list(v) for a, v in attrs.items()} for dn, attrs in current.items()}
    changed = []
    for change in plan.changes:
        attrs = lowered.get(change.dn.lower())
        now = None if attrs is None else attrs.get(change.attribute.lower(), [])
        if now is None or sorted(map(_key, now)) != sorted(map(_key, change.before)):
            changed.append(change)
    return changed


# AD attribute -> the cloud property Entra Connect writes it to, for the ones a verification can compare.
_CLOUD_PROPERTY = {"mail": "mail", "mailnickname": "mailNickname", "displayname": "displayName",
                   "givenname": "givenName", "userprincipalname": "userPrincipalName"}


def verify_change(change: AttributeChange, cloud: Mapping[str, Any] | None) -> tuple[bool | None, str]:
    """Does the cloud object now show what the change wrote on-premises? (True / False / None = cannot tell), and
    the sentence the fix page shows. proxyAddresses: the planned SMTP: value must be the cloud primary and each
    smtp: value one of its addresses; other types (X500) are not cloud addresses and are not compared."""
    where = f"{change.attribute} of {change.dn}"
    if cloud is None:
        return False, f"{where}: the object is not in the cloud (not synchronised yet, or out of sync scope)."
    if change.attribute.lower() == "proxyaddresses":
        have = [str(a) for a in cloud.get("proxyAddresses") or ()]
        primary = next((a[5:] for a in have if a.startswith("SMTP:")), None)
        held = {a[5:].lower() for a in have if a[:5].lower() == "smtp:"}
        missing: list[str] = []
        for value in change.after:
            if value.startswith("SMTP:") and (primary or "").lower() != value[5:].lower():
                missing.append(f"{value[5:]} as the primary address (the cloud's is {primary or 'none'})")
            elif value[:5].lower() == "smtp:" and value[5:].lower() not in held:
                missing.append(f"{value[5:]}")
        if missing:
            return False, f"{where}: the cloud does not show " + "; ".join(missing) + "."
        return True, f"{where}: the cloud shows the planned addresses (primary {primary or 'none'})."
    prop = _CLOUD_PROPERTY.get(change.attribute.lower())
    if prop is None:
        return None, f"{where}: not a property the cloud shows; not compared."
    want = change.after[0] if change.after else None
    have_value = cloud.get(prop)
    if (have_value or "").lower() == (want or "").lower():
        return True, f"{where}: the cloud's {prop} is {have_value or '(empty)'} as planned."
    return False, f"{where}: the cloud's {prop} is {have_value or '(empty)'}, the plan wrote {want or '(empty)'}."
