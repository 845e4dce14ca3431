"""Security descriptors of AD objects (self-relative binary form): "protected from accidental deletion".

What ADUC's "Protect object from accidental deletion" (and Set-ADObject -ProtectedFromAccidentalDeletion)
writes, read and written through :class:`.client.ActiveDirectory`. The preflight of a DL migration reads it;
the lab's seeder writes it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from .client import ActiveDirectory
from .dn import parse_dn
from .errors import AdError


class SecurityDescriptorError(AdError):
    """The object's security descriptor could not be read."""

EVERYONE_SID = "S-1-1-0"
_EVERYONE_SID_BYTES = bytes([1, 1, 0, 0, 0, 0, 0, 1]) + struct.pack("<I", 0)
ACCESS_DENIED_ACE_TYPE = 0x01
RIGHT_DELETE = 0x00010000
RIGHT_DS_DELETE_TREE = 0x00000040
RIGHT_DS_DELETE_CHILD = 0x00000002
# What "Protect object from accidental deletion" writes (ADUC / Set-ADObject): on the object a
# deny of Delete and Delete Subtree for Everyone, on its parent a deny of Delete Child; AD grants a
# delete through either the object's DELETE or the parent's DELETE_CHILD, so both are needed.
PROTECT_OBJECT_MASK = RIGHT_DELETE | RIGHT_DS_DELETE_TREE
PROTECT_PARENT_MASK = RIGHT_DS_DELETE_CHILD
PROTECT_OBJECT_SDDL = "(D;;SDDT;;;WD)"
PROTECT_PARENT_SDDL = "(D;;DC;;;WD)"


def protect_from_deletion(directory: ActiveDirectory, dn: str) -> None:
    """Do what "Protect object from accidental deletion" does: deny Everyone Delete and Delete
    Subtree on the object, and Delete Child on its parent. Idempotent.

    The connector writes the whole descriptor (owner, group, SACL, DACL) read from the object,
    with one ACE added to the DACL; as Administrator that needs no SD-flags control.
    """
    _add_deny_ace(directory, dn, PROTECT_OBJECT_MASK)
    _add_deny_ace(directory, str(parse_dn(dn).parent), PROTECT_PARENT_MASK)


def unprotect_from_deletion(directory: ActiveDirectory, dn: str) -> None:
    """Remove the object's deny ACE (the parent's Delete Child deny stays: other objects of the
    container may still be protected)."""
    sd = _read_sd(directory, dn)
    changed = _without_deny_aces(sd, PROTECT_OBJECT_MASK)
    if changed != sd:
        directory.modify(dn, replace={"nTSecurityDescriptor": changed})


def is_protected_from_deletion(sd: bytes) -> bool:
    """True when the DACL denies Everyone both Delete and Delete Subtree."""
    return any(
        ace_type == ACCESS_DENIED_ACE_TYPE and sid == _EVERYONE_SID_BYTES and mask & PROTECT_OBJECT_MASK ==
        PROTECT_OBJECT_MASK
        for ace_type, _flags, mask, sid, _raw in _dacl_aces(sd)
    )


def denies_delete_child(sd: bytes) -> bool:
    return any(
        ace_type == ACCESS_DENIED_ACE_TYPE and sid == _EVERYONE_SID_BYTES and mask & RIGHT_DS_DELETE_CHILD
        for ace_type, _flags, mask, sid, _raw in _dacl_aces(sd)
    )


def _read_sd(directory: ActiveDirectory, dn: str) -> bytes:
    sd = directory.read(dn, attributes=["nTSecurityDescriptor"]).first("nTSecurityDescriptor")
    if not isinstance(sd, bytes) or len(sd) < 20:
        raise SecurityDescriptorError(f"cannot read the security descriptor of {dn}", dn=dn)
    return sd


def _add_deny_ace(directory: ActiveDirectory, dn: str, mask: int) -> None:
    sd = _read_sd(directory, dn)
    if any(t == ACCESS_DENIED_ACE_TYPE and s == _EVERYONE_SID_BYTES and m & mask == mask
           for t, _f, m, s, _r in _dacl_aces(sd)):
        return
    ace = struct.pack("<BBHI", ACCESS_DENIED_ACE_TYPE, 0, 8 + len(_EVERYONE_SID_BYTES), mask) + _EVERYONE_SID_BYTES
    # Explicit deny ACEs come first in canonical order.
    directory.modify(dn, replace={"nTSecurityDescriptor": _with_dacl(sd, [ace, *[a[4] for a in _dacl_aces(sd)]])})


def _without_deny_aces(sd: bytes, mask: int) -> bytes:
    kept = [raw for t, _f, m, s, raw in _dacl_aces(sd)
            if not (t == ACCESS_DENIED_ACE_TYPE and s == _EVERYONE_SID_BYTES and m & mask == mask)]
    return _with_dacl(sd, kept)


def _sd_header(sd: bytes) -> tuple[int, int, int, int, int, int, int]:
    return struct.unpack_from("<BBHIIII", sd, 0)


def _sid_at(sd: bytes, offset: int) -> bytes:
    return sd[offset : offset + 8 + 4 * sd[offset + 1]]


def _acl_at(sd: bytes, offset: int) -> bytes:
    return sd[offset : offset + struct.unpack_from("<H", sd, offset + 2)[0]]


def _dacl_aces(sd: bytes) -> list[tuple[int, int, int, bytes, bytes]]:
    """(type, flags, mask, trustee SID bytes, raw ACE) for every ACE of the DACL.

    Object ACEs (types 5-8) carry GUIDs before the SID; their SID is not needed here, so it is
    returned empty for them.
    """
    _rev, _sbz, _control, _owner, _group, _sacl, dacl_offset = _sd_header(sd)
    if not dacl_offset:
        return []
    acl = _acl_at(sd, dacl_offset)
    count = struct.unpack_from("<H", acl, 4)[0]
    aces = []
    pos = 8
    for _ in range(count):
        ace_type, flags, size = struct.unpack_from("<BBH", acl, pos)
        raw = acl[pos : pos + size]
        mask = struct.unpack_from("<I", raw, 4)[0]
        sid = raw[8:] if ace_type in (0, 1, 2, 3) else b""
        aces.append((ace_type, flags, mask, sid, raw))
        pos += size
    return aces


def _with_dacl(sd: bytes, aces: Sequence[bytes]) -> bytes:
    rev, sbz, control, owner_offset, group_offset, sacl_offset, dacl_offset = _sd_header(sd)
    acl_revision = _acl_at(sd, dacl_offset)[0] if dacl_offset else 4
    body = b"".join(aces)
    dacl = struct.pack("<BBHHH", acl_revision, 0, 8 + len(body), len(aces), 0) + body
    parts = [
        _sid_at(sd, owner_offset) if owner_offset else b"",
        _sid_at(sd, group_offset) if group_offset else b"",
        _acl_at(sd, sacl_offset) if sacl_offset else b"",
        dacl,
    ]
    offsets = []
    position = 20
    for part in parts:
        offsets.append(position if part else 0)
        position += len(part)
    return struct.pack("<BBHIIII", rev, sbz, control | 0x0004, *offsets) + b"".join(parts)  # SE_DACL_PRESENT



def dacl_trustees(sd: bytes) -> set[str]:
    """The SIDs (S-1-5-...) every ACE of the DACL names, object ACEs included: who holds or is denied a right
    on the object. A descriptor too short or malformed gives what could be read before the damage."""
    from .types import sid_to_str

    found: set[str] = set()
    try:
        _rev, _sbz, _control, _owner, _group, _sacl, dacl_offset = _sd_header(sd)
        if not dacl_offset:
            return found
        acl = _acl_at(sd, dacl_offset)
        count = struct.unpack_from("<H", acl, 4)[0]
        pos = 8
        for _ in range(count):
            ace_type, _flags, size = struct.unpack_from("<BBH", acl, pos)
            raw = acl[pos : pos + size]
            start = 8
            if ace_type in (5, 6, 7, 8):  # object ACEs: flags, then the GUIDs those flags announce
                object_flags = struct.unpack_from("<I", raw, 8)[0]
                start = 12 + 16 * bool(object_flags & 1) + 16 * bool(object_flags & 2)
            if len(raw) >= start + 8:
                found.add(sid_to_str(raw[start:]))
            pos += size
    except (struct.error, ValueError):
        pass
    return found
