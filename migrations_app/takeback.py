"""What a take-back of an in-place list will overwrite: per attribute, the cloud's value at the conversion (the
backup), the cloud's value now, and AD's value that the next sync cycle applies once the source of authority is
back in AD. Pure functions: the caller reads the three sides (connectors) and shows or logs the rows.

Values are compared in one normal form per attribute, because AD and Exchange Online spell them differently
(``msExchHideFromAddressLists`` absent vs ``HiddenFromAddressListsEnabled`` false, ``proxyAddresses`` vs
``EmailAddresses``). Addresses the cloud adds on its own -- the ``*.onmicrosoft.com`` ones ProxyCalc computes and
the X500 addresses Exchange Online keeps -- are left out: AD never holds them, so they would show on every list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

Value = str | bool | tuple[str, ...] | None


def _first(values: Any) -> Any:
    if isinstance(values, (list, tuple)):
        return values[0] if values else None
    return values


def _text(values: Any) -> str | None:
    value = _first(values)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _lower(values: Any) -> str | None:
    text = _text(values)
    return text.lower() if text else None


def _flag(values: Any, *, absent: bool = False) -> bool:
    value = _first(values)
    if value is None or value == "":
        return absent
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes")


def _addresses(values: Any) -> tuple[str, ...]:
    """The SMTP addresses of a proxyAddresses / EmailAddresses list, primary first (``SMTP:``), the rest sorted,
    without the cloud's own (onmicrosoft.com) addresses and X500s."""
    if values is None:
        return ()
    if isinstance(values, str):
        values = [values]
    primary: list[str] = []
    others: list[str] = []
    for raw in values:
        text = str(raw).strip()
        prefix, _, address = text.partition(":")
        if prefix.lower() != "smtp" or not address:
            continue
        if address.lower().rsplit("@", 1)[-1].endswith(".onmicrosoft.com"):
            continue
        (primary if prefix == "SMTP" else others).append(address.lower())
    return (*(f"SMTP:{a}" for a in primary), *sorted({f"smtp:{a}" for a in others} - {f"smtp:{a}" for a in primary}))


@dataclass(frozen=True)
class Attribute:
    label: str  # as the page and the log name it: the AD attribute, then the Exchange Online property
    ad: str
    cloud: str  # key in the cloud document (Exchange Online property, or graph.<property>)
    normalise: Callable[[Any], Value]
    ad_normalise: Callable[[Any], Value] | None = None


def _custom(n: int) -> Attribute:
    return Attribute(f"extensionAttribute{n} / CustomAttribute{n}", f"extensionAttribute{n}", f"CustomAttribute{n}",
                     _text)


# The attributes the sync writes on a synced list (what the in-place backup captures on both sides).
ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("displayName / DisplayName", "displayName", "DisplayName", _text),
    Attribute("description", "description", "graph.description", _text),
    Attribute("mail / PrimarySmtpAddress", "mail", "PrimarySmtpAddress", _lower),
    Attribute("proxyAddresses / EmailAddresses", "proxyAddresses", "EmailAddresses", _addresses),
    Attribute("mailNickname / Alias", "mailNickname", "Alias", _text),
    Attribute("msExchHideFromAddressLists / HiddenFromAddressListsEnabled", "msExchHideFromAddressLists",
              "HiddenFromAddressListsEnabled", _flag),
    Attribute("msExchRequireAuthToSendTo / RequireSenderAuthenticationEnabled", "msExchRequireAuthToSendTo",
              "RequireSenderAuthenticationEnabled", _flag),
    Attribute("msExchEnableModeration / ModerationEnabled", "msExchEnableModeration", "ModerationEnabled", _flag),
    # AD's reportToOriginator absent means "report to the originator" (the sync's default), Exchange shows true.
    Attribute("reportToOriginator / ReportToOriginatorEnabled", "reportToOriginator", "ReportToOriginatorEnabled",
              lambda v: _flag(v, absent=True)),
    *(_custom(n) for n in range(1, 16)),
)

# What to read on the on-premises copy to know AD's values (cn: the sync's fallback for displayName).
AD_ATTRIBUTES: tuple[str, ...] = ("cn", *(a.ad for a in ATTRIBUTES))


def cloud_document(*, exchange: Mapping[str, Any], graph: Mapping[str, Any] | None) -> dict[str, Any]:
    """One flat document of the cloud side, in the shape the backup keeps (Exchange Online properties plus the
    Graph group's properties under ``graph.``)."""
    doc = dict(exchange)
    for key, value in (graph or {}).items():
        doc[f"graph.{key}"] = value
    return doc


def _get(doc: Mapping[str, Any], key: str) -> Any:
    if key in doc:
        return doc[key]
    lowered = key.lower()
    return next((v for k, v in doc.items() if k.lower() == lowered), None)


@dataclass(frozen=True)
class AttributeChange:
    attribute: str
    at_conversion: Value
    cloud_now: Value
    ad_value: Value
    changed_in_cloud: bool  # the cloud's value now differs from the one backed up at the conversion
    overwritten: bool  # AD's value differs from the cloud's now: the next cycle replaces it

    def as_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    def describe(self) -> str:
        parts = []
        if self.changed_in_cloud:
            parts.append(f"changed in the cloud since the conversion ({show(self.at_conversion)} -> "
                         f"{show(self.cloud_now)})")
        if self.overwritten:
            parts.append(f"AD's value will overwrite it ({show(self.cloud_now)} -> {show(self.ad_value)})")
        return f"{self.attribute}: " + "; ".join(parts)


def show(value: Value) -> str:
    if value is None or value == ():
        return "(empty)"
    if isinstance(value, tuple):
        return ", ".join(value)
    return str(value)


def compare_for_take_back(*, at_conversion: Mapping[str, Any], cloud_now: Mapping[str, Any],
                          ad_attributes: Mapping[str, Iterable[Any]],
                          attributes: tuple[Attribute, ...] = ATTRIBUTES) -> list[AttributeChange]:
    """The attributes a take-back changes or that the cloud changed: ``at_conversion`` and ``cloud_now`` are
    cloud documents (:func:`cloud_document`), ``ad_attributes`` AD's values as they will be after the restore
    (name -> list of values). An attribute equal on all three sides is left out."""
    ad = {k.lower(): v for k, v in ad_attributes.items()}
    changes = []
    for attr in attributes:
        before = attr.normalise(_get(at_conversion, attr.cloud))
        now = attr.normalise(_get(cloud_now, attr.cloud))
        ad_value = (attr.ad_normalise or attr.normalise)(ad.get(attr.ad.lower()))
        if attr.ad == "displayName" and ad_value is None:
            ad_value = _text(ad.get("cn"))  # the sync falls back to the cn for a group without a displayName
        changed, overwritten = before != now, ad_value != now
        if changed or overwritten:
            changes.append(AttributeChange(attr.label, before, now, ad_value, changed, overwritten))
    return changes


__all__ = ["AD_ATTRIBUTES", "ATTRIBUTES", "AttributeChange", "cloud_document", "compare_for_take_back", "show"]
