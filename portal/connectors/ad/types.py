"""What the AD connector returns and takes: directory objects (decoded attribute values), new entries,
check reports.
"""

from __future__ import annotations

import contextlib
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

# Returned as bytes; everything else is decoded as UTF-8 text (AD sends text as UTF-8).
BINARY_ATTRIBUTES = frozenset(
    a.lower()
    for a in (
        "objectGUID", "objectSid", "nTSecurityDescriptor", "msExchMailboxGuid", "msExchMailboxSecurityDescriptor",
        "mS-DS-ConsistencyGuid", "thumbnailPhoto", "jpegPhoto", "userCertificate", "userSMIMECertificate",
        "cACertificate", "tokenGroups", "sIDHistory", "msExchMasterAccountSid", "logonHours", "msDS-GenerationId",
        "unicodePwd", "dBCSPwd", "supplementalCredentials", "schemaIDGUID", "attributeSecurityGUID",
        "oMObjectClass", "msExchArchiveGUID", "msExchDisabledArchiveGUID", "replPropertyMetaData",
        "msDS-KeyCredentialLink-Raw", "securityIdentifier", "msDS-ManagedPasswordId",
    )
)

# Operational attributes a full read asks for explicitly (AD does not return them for '*').
OPERATIONAL_ATTRIBUTES = (
    "objectGUID", "objectSid", "whenCreated", "whenChanged", "uSNCreated", "uSNChanged", "memberOf",
    "distinguishedName", "objectCategory", "isDeleted", "canonicalName", "msDS-PrincipalName",
)


def sid_to_str(raw: bytes) -> str:
    """Binary SID (as in objectSid) to its S-1-5-21-... form."""
    if len(raw) < 8:
        raise ValueError("a SID is at least 8 bytes")
    revision, count = raw[0], raw[1]
    authority = int.from_bytes(raw[2:8], "big")
    subs = struct.unpack("<" + "I" * count, raw[8 : 8 + 4 * count])
    return "S-" + "-".join(str(x) for x in (revision, authority, *subs))


_SID_RE = re.compile(r"S-1-\d+(-\d+){1,15}\Z")


@dataclass(frozen=True)
class DirectoryObject:
    dn: str
    guid: UUID | None
    sid: str | None
    object_classes: tuple[str, ...]
    attributes: dict[str, list[Any]]

    def get(self, name: str) -> list[Any]:
        """All values of an attribute (case-insensitive name); [] when absent."""
        lower = name.lower()
        for key, values in self.attributes.items():
            if key.lower() == lower:
                return values
        return []

    def first(self, name: str, default: Any = None) -> Any:
        values = self.get(name)
        return values[0] if values else default

    def has_class(self, name: str) -> bool:
        return name.lower() in {c.lower() for c in self.object_classes}

    @property
    def kind(self) -> str:
        classes = {c.lower() for c in self.object_classes}
        for kind, cls in (
            ("computer", "computer"), ("user", "user"), ("group", "group"), ("contact", "contact"),
            ("dynamic-dl", "msexchdynamicdistributionlist"), ("ou", "organizationalunit"),
        ):
            if cls in classes:
                return kind
        return "other"

    @property
    def usn_changed(self) -> int | None:
        value = self.first("uSNChanged")
        return int(value) if value is not None else None


def _decode_values(name: str, values: Sequence[bytes] | None) -> list[Any]:
    if name.split(";", 1)[0].lower() in BINARY_ATTRIBUTES:
        return [bytes(v) for v in values or ()]
    return _decode_text(values or ())


def _decode_text(values: Sequence[bytes]) -> list[Any]:
    """UTF-8 text; a value that is not valid UTF-8 is kept as bytes (the rest still decoded)."""
    try:
        return [v.decode() for v in values]  # ldap3's raw values are bytes already
    except UnicodeDecodeError:
        out: list[Any] = []
        for v in values:
            try:
                out.append(v.decode())
            except UnicodeDecodeError:
                out.append(bytes(v))
        return out


def _to_object(dn: str, raw: Mapping[str, Sequence[bytes] | None]) -> DirectoryObject:
    """One pass over the raw attributes: each value is decoded once, and the GUID, SID and classes
    are taken from the values already converted (this runs for every object a scan yields)."""
    attributes: dict[str, list[Any]] = {}
    guid = sid = None
    classes: tuple[str, ...] = ()
    for name, values in raw.items():
        lower = name.lower()
        base = lower.split(";", 1)[0] if ";" in lower else lower
        if base in BINARY_ATTRIBUTES:
            decoded = [bytes(v) for v in values or ()]
            if lower == "objectguid" and decoded:
                guid = UUID(bytes_le=decoded[0])
            elif lower == "objectsid" and decoded:
                with contextlib.suppress(ValueError, struct.error):
                    sid = sid_to_str(decoded[0])
        else:
            decoded = _decode_text(values or ())
            if lower == "objectclass":
                classes = tuple(decoded)
        attributes[name] = decoded
    return DirectoryObject(dn=dn, guid=guid, sid=sid, object_classes=classes, attributes=attributes)


@dataclass(frozen=True)
class NewEntry:
    """One object for :meth:`ActiveDirectory.add_many`."""

    dn: str
    object_class: str | Sequence[str]
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckItem:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class CheckReport:
    ok: bool
    server: str
    naming_context: str | None
    items: tuple[CheckItem, ...]

    def failures(self) -> list[CheckItem]:
        return [item for item in self.items if not item.ok]
