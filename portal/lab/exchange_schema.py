"""Exchange attributes and classes for the lab's Samba AD, added over LDAP with ldap3.

Samba provisions the Windows Server 2012 R2 schema and ships no Exchange extension, so the portal's
mail attributes (mailNickname, targetAddress, msExch*, extensionAttribute1..15, the delivery
restriction and moderation links) do not exist until :func:`apply_schema` adds them. They are added
with their real identifiers (attributeID / governsID, linkID where Microsoft assigned one), so that
code written against the lab reads and writes the same things as against an Exchange forest.

Where each identifier comes from (``source`` on every definition):

``ms-sdk``   Microsoft's Exchange Server 2003/2007 SDK attribute pages (learn.microsoft.com,
             "ms-Exch-... Attribute"), or [MS-ADA2] for msDS-ExternalDirectoryObjectId.
``doc``      the team's notes ``docs/exchange-schema.md`` (public schema files and attribute lists
             of live Exchange forests); not re-verified against a Microsoft page.
``ldf-ref``  an Exchange schema extension published for Samba (OpenChange / Zentyal) that agrees
             with ``doc``.

Linked attributes introduced by Exchange 2007 SP2 and later (moderation, co-management) have no
fixed linkID: Exchange's own LDF asks the directory to allocate one (``linkID:
1.2.840.113556.1.2.50`` on the forward link, the forward link's name on the back link), so every
forest has different numbers. The lab does the same, and Samba allocates them.

The four delivery-restriction forward links (authOrig, unauthOrig, dLMemSubmitPerms,
dLMemRejectPerms) have syntax Object(OR-Name) (2.5.5.7 / oMObjectClass 2.6.6.1.2.5.11.29) in
Exchange, not Object(DS-DN); values are written and read as plain DNs and Samba maintains their
back links as for any DN link. The back links themselves are Object(DS-DN).

Idempotent: applying twice writes nothing the second time. Schema objects can never be deleted
(AD and Samba alike), so a wrong definition is fixed by resetting the lab, never in place.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal
from uuid import UUID

import ldap3
from ldap3 import BASE, MODIFY_ADD, MODIFY_REPLACE, SUBTREE

Syntax = Literal["unicode", "boolean", "integer", "large", "octet", "dn", "or-name"]

# attributeSyntax, oMSyntax, oMObjectClass (BER of the OM class OID) per syntax.
_SYNTAXES: dict[str, tuple[str, int, bytes | None]] = {
    "unicode": ("2.5.5.12", 64, None),
    "boolean": ("2.5.5.8", 1, None),
    "integer": ("2.5.5.9", 2, None),
    "large": ("2.5.5.16", 65, None),
    "octet": ("2.5.5.10", 4, None),
    # 1.3.12.2.1011.28.0.714 (Object(DS-DN))
    "dn": ("2.5.5.1", 127, bytes.fromhex("2b0c0287731c00854a")),
    # 2.6.6.1.2.5.11.29 (Object(OR-Name))
    "or-name": ("2.5.5.7", 127, bytes.fromhex("56060102050b1d")),
}

# linkID value that asks the directory to allocate a forward linkID (MS-ADTS 3.1.1.2.3.1).
AUTO_LINK_ID = "1.2.840.113556.1.2.50"

Source = Literal["ms-sdk", "doc", "ldf-ref"]


@dataclass(frozen=True)
class AttributeDef:
    ldap_name: str
    cn: str
    attribute_id: str
    syntax: Syntax
    single_valued: bool
    source: Source
    link_id: int | None = None  # numeric linkID where Microsoft assigned one
    auto_link: bool = False  # forward link whose linkID the directory allocates
    back_link_of: str | None = None  # for an allocated back link: the forward link's ldap_name
    range_lower: int | None = None
    range_upper: int | None = None
    search_flags: int = 0
    schema_id_guid: str | None = None  # only where a Microsoft source gives it

    @property
    def is_linked(self) -> bool:
        return self.link_id is not None or self.auto_link or self.back_link_of is not None


@dataclass(frozen=True)
class ClassDef:
    ldap_name: str
    cn: str
    governs_id: str
    category: Literal[1, 3]  # 1 structural, 3 auxiliary
    source: Source
    may_contain: tuple[str, ...] = ()
    auxiliary_classes: tuple[str, ...] = ()
    poss_superiors: tuple[str, ...] = ()
    schema_id_guid: str | None = None


@dataclass(frozen=True)
class ClassChange:
    """Values Exchange adds to an existing class (never the system* forms, which are read-only)."""

    ldap_name: str  # lDAPDisplayName of the existing class
    may_contain: tuple[str, ...] = ()
    auxiliary_classes: tuple[str, ...] = ()


def _ext(n: int) -> AttributeDef:
    oid = 422 + n if n <= 10 else 588 + n  # 1..10 -> .423-.432, 11..15 -> .599-.603
    return AttributeDef(
        f"extensionAttribute{n}",
        f"ms-Exch-Extension-Attribute-{n}",
        f"1.2.840.113556.1.2.{oid}",
        "unicode",
        True,
        "ms-sdk" if n == 11 else "doc",
        range_lower=1,
        range_upper=1024 if n <= 10 else 2048,
        search_flags=16,
        schema_id_guid="167757f6-47f3-11d1-a9c3-0000f80367c1" if n == 11 else None,
    )


_X = "1.2.840.113556.1.4.7000.102."

ATTRIBUTES: tuple[AttributeDef, ...] = (
    # --- addressing
    AttributeDef("mailNickname", "ms-Exch-Mail-Nickname", "1.2.840.113556.1.2.447", "unicode", True, "doc",
                 range_lower=1, range_upper=64, search_flags=1),
    AttributeDef("targetAddress", "ms-Exch-Target-Address", "1.2.840.113556.1.2.352", "unicode", True, "ms-sdk",
                 range_lower=1, range_upper=1123, search_flags=1,
                 schema_id_guid="f0f8ff9f-1191-11d0-a060-00aa006c33ed"),
    AttributeDef("msExchRecipientDisplayType", "ms-Exch-Recipient-Display-Type", _X + "50730", "integer", True,
                 "ldf-ref", search_flags=1, schema_id_guid="b893abb0-767e-4f20-915f-3857bbc96afe"),
    AttributeDef("msExchRecipientTypeDetails", "ms-Exch-Recipient-Type-Details", _X + "50855", "large", True,
                 "ldf-ref", search_flags=1, schema_id_guid="069ba1f8-540a-42a9-bf26-a7dd35475346"),
    AttributeDef("msExchRemoteRecipientType", "ms-Exch-Remote-Recipient-Type", _X + "51611", "large", True, "doc"),
    AttributeDef("msExchHideFromAddressLists", "ms-Exch-Hide-From-Address-Lists", _X + "73", "boolean", True,
                 "ms-sdk", search_flags=16, schema_id_guid="a21c0b96-b093-11d2-aa06-00c04f8eedd8"),
    AttributeDef("msExchRequireAuthToSendTo", "ms-Exch-RequireAuthToSendTo", "1.2.840.113556.1.4.5062", "boolean",
                 True, "doc"),
    AttributeDef("msExchMailboxGuid", "ms-Exch-Mailbox-Guid", _X + "11058", "octet", True, "doc",
                 range_lower=16, range_upper=16),
    AttributeDef("msDS-ExternalDirectoryObjectId", "ms-DS-External-Directory-Object-Id", "1.2.840.113556.1.4.2310",
                 "unicode", True, "ms-sdk", range_upper=256, search_flags=9,
                 schema_id_guid="bd29bf90-66ad-40e1-887b-10df070419a6"),
    *(_ext(n) for n in range(1, 16)),
    # --- delivery restrictions (Exchange 2000): forward links OR-Name, real linkIDs
    AttributeDef("authOrig", "ms-Exch-Auth-Orig", "1.2.840.113556.1.2.129", "or-name", False, "ms-sdk",
                 link_id=110, search_flags=16, schema_id_guid="a8df7397-c5ea-11d1-bbcb-0080c76670c0"),
    AttributeDef("authOrigBL", "ms-Exch-Auth-Orig-BL", "1.2.840.113556.1.2.290", "dn", False, "doc",
                 link_id=111),
    AttributeDef("dLMemSubmitPerms", "ms-Exch-DL-Mem-Submit-Perms", "1.2.840.113556.1.2.144", "or-name", False,
                 "doc", link_id=112, search_flags=16),
    AttributeDef("dLMemSubmitPermsBL", "ms-Exch-DL-Mem-Submit-Perms-BL", "1.2.840.113556.1.2.291", "dn", False,
                 "ms-sdk", link_id=113, schema_id_guid="a8df73c5-c5ea-11d1-bbcb-0080c76670c0"),
    AttributeDef("unauthOrig", "ms-Exch-Unauth-Orig", "1.2.840.113556.1.2.221", "or-name", False, "ms-sdk",
                 link_id=114, search_flags=16, schema_id_guid="a8df7495-c5ea-11d1-bbcb-0080c76670c0"),
    AttributeDef("unauthOrigBL", "ms-Exch-Unauth-Orig-BL", "1.2.840.113556.1.2.292", "dn", False, "doc",
                 link_id=115),
    AttributeDef("dLMemRejectPerms", "ms-Exch-DL-Mem-Reject-Perms", "1.2.840.113556.1.2.47", "or-name", False,
                 "ms-sdk", link_id=116, search_flags=16, schema_id_guid="a8df73c2-c5ea-11d1-bbcb-0080c76670c0"),
    AttributeDef("dLMemRejectPermsBL", "ms-Exch-DL-Mem-Reject-Perms-BL", "1.2.840.113556.1.2.293", "dn", False,
                 "doc", link_id=117),
    AttributeDef("altRecipient", "ms-Exch-Alt-Recipient", "1.2.840.113556.1.2.126", "dn", True, "ms-sdk",
                 link_id=12, search_flags=16, schema_id_guid="bf96791e-0de6-11d0-a285-00aa003049e2"),
    AttributeDef("altRecipientBL", "ms-Exch-Alt-Recipient-BL", "1.2.840.113556.1.2.294", "dn", False, "ms-sdk",
                 link_id=13, schema_id_guid="bf96791f-0de6-11d0-a285-00aa003049e2"),
    AttributeDef("publicDelegates", "ms-Exch-Public-Delegates", "1.2.840.113556.1.2.238", "dn", False, "ms-sdk",
                 link_id=14, search_flags=16, schema_id_guid="f0f8ff9a-1191-11d0-a060-00aa006c33ed"),
    AttributeDef("publicDelegatesBL", "ms-Exch-Public-Delegates-BL", "1.2.840.113556.1.2.295", "dn", False,
                 "ms-sdk", link_id=15, schema_id_guid="bf967a08-0de6-11d0-a285-00aa003049e2"),
    # --- distribution list behaviour
    AttributeDef("reportToOriginator", "ms-Exch-Report-To-Originator", "1.2.840.113556.1.2.206", "boolean", True,
                 "doc"),
    AttributeDef("reportToOwner", "ms-Exch-Report-To-Owner", "1.2.840.113556.1.2.207", "boolean", True, "doc"),
    AttributeDef("oOFReplyToOriginator", "ms-Exch-OOF-Reply-To-Originator", "1.2.840.113556.1.2.438", "boolean",
                 True, "doc"),
    AttributeDef("hideDLMembership", "ms-Exch-Hide-DL-Membership", "1.2.840.113556.1.2.297", "boolean", True,
                 "doc"),
    # --- dynamic distribution lists (Exchange 2003)
    AttributeDef("msExchDynamicDLFilter", "ms-Exch-Dynamic-DL-Filter", _X + "12544", "unicode", True, "doc"),
    AttributeDef("msExchDynamicDLBaseDN", "ms-Exch-Dynamic-DL-BaseDN", _X + "12543", "dn", True, "doc"),
    AttributeDef("msExchQueryBaseDN", "ms-Exch-Query-Base-DN", _X + "15008", "dn", True, "doc"),
    # --- moderation and co-management (Exchange 2007 SP2+): allocated linkIDs
    AttributeDef("msExchEnableModeration", "ms-Exch-Enable-Moderation", _X + "50969", "boolean", True, "doc"),
    AttributeDef("msExchModerationFlags", "ms-Exch-Moderation-Flags", _X + "50972", "integer", True, "doc"),
    AttributeDef("msExchGroupJoinRestriction", "ms-Exch-Group-Join-Restriction", _X + "50963", "integer", True,
                 "doc"),
    AttributeDef("msExchGroupDepartRestriction", "ms-Exch-Group-Depart-Restriction", _X + "50964", "integer", True,
                 "doc"),
    AttributeDef("msExchModeratedByLink", "ms-Exch-Moderated-By-Link", _X + "50952", "dn", False, "doc",
                 auto_link=True),
    AttributeDef("msExchModeratedObjectsBL", "ms-Exch-Moderated-Objects-BL", _X + "50955", "dn", False, "doc",
                 back_link_of="msExchModeratedByLink"),
    AttributeDef("msExchCoManagedByLink", "ms-Exch-Co-Managed-By-Link", _X + "50953", "dn", False, "doc",
                 auto_link=True),
    AttributeDef("msExchCoManagedObjectsBL", "ms-Exch-Co-Managed-Objects-BL", _X + "50954", "dn", False, "doc",
                 back_link_of="msExchCoManagedByLink"),
    AttributeDef("msExchBypassModerationLink", "ms-Exch-Bypass-Moderation-Link", _X + "51140", "dn", False, "doc",
                 auto_link=True),
    AttributeDef("msExchBypassModerationBL", "ms-Exch-Bypass-Moderation-BL", _X + "51152", "dn", False, "doc",
                 back_link_of="msExchBypassModerationLink"),
    AttributeDef("msExchBypassModerationFromDLMembersLink", "ms-Exch-Bypass-Moderation-From-DL-Members-Link",
                 _X + "51141", "dn", False, "doc", auto_link=True),
    AttributeDef("msExchBypassModerationFromDLMembersBL", "ms-Exch-Bypass-Moderation-From-DL-Members-BL",
                 _X + "51151", "dn", False, "doc", back_link_of="msExchBypassModerationFromDLMembersLink"),
)
# msExchQueryFilter (the OPATH RecipientFilter of 2007+ dynamic DLs) is deliberately absent: no
# source available here gives its attributeID, and a made-up OID would be a defect. The lab's
# dynamic DLs carry their LDAP filter in msExchDynamicDLFilter, which Exchange still maintains.

_MAIL_RECIPIENT_LINKS = (
    "authOrig", "authOrigBL", "unauthOrig", "unauthOrigBL", "dLMemSubmitPerms", "dLMemSubmitPermsBL",
    "dLMemRejectPerms", "dLMemRejectPermsBL", "publicDelegates", "publicDelegatesBL", "altRecipient",
    "altRecipientBL",
)
_MODERATION = (
    "msExchEnableModeration", "msExchModerationFlags", "msExchModeratedByLink", "msExchModeratedObjectsBL",
    "msExchBypassModerationLink", "msExchBypassModerationBL", "msExchBypassModerationFromDLMembersLink",
    "msExchBypassModerationFromDLMembersBL", "msExchCoManagedObjectsBL",
)

CLASSES: tuple[ClassDef, ...] = (
    ClassDef("msExchCustomAttributes", "ms-Exch-Custom-Attributes", "1.2.840.113556.1.5.7000.62.6", 3, "ldf-ref",
             may_contain=tuple(f"extensionAttribute{n}" for n in range(1, 16)),
             schema_id_guid="00e629c8-a981-11d2-a9ff-00c04f8eedd8"),
    ClassDef("msExchBaseClass", "ms-Exch-Base-Class", "1.2.840.113556.1.5.7000.62.14", 3, "ldf-ref",
             may_contain=("msExchHideFromAddressLists",),
             schema_id_guid="d8782c34-46ca-11d3-aa72-00c04f8eedd8"),
    ClassDef("msExchMailStorage", "ms-Exch-Mail-Storage", "1.2.840.113556.1.5.7000.62.5", 3, "ldf-ref",
             may_contain=("msExchMailboxGuid",),
             schema_id_guid="03652000-a981-11d2-a9ff-00c04f8eedd8"),
    ClassDef("msExchDynamicDistributionList", "ms-Exch-Dynamic-Distribution-List", "1.2.840.113556.1.5.7000.62.12006",
             1, "doc",
             may_contain=("msExchDynamicDLFilter", "msExchDynamicDLBaseDN", "msExchQueryBaseDN", "managedBy",
                          "reportToOwner", "reportToOriginator", "oOFReplyToOriginator", "hideDLMembership",
                          "mail", "displayName", "description"),
             auxiliary_classes=("mailRecipient", "msExchCustomAttributes", "msExchBaseClass"),
             poss_superiors=("organizationalUnit", "domainDNS", "container"),
             schema_id_guid="018849b0-a981-11d2-a9ff-00c04f8eedd8"),
)

CLASS_CHANGES: tuple[ClassChange, ...] = (
    ClassChange(
        "mailRecipient",
        may_contain=(
            "mailNickname", "targetAddress", "mail", *_MAIL_RECIPIENT_LINKS, "msExchRecipientDisplayType",
            "msExchRecipientTypeDetails", *_MODERATION,
            # Pragmatic placement where Exchange's own class is not known (docs/exchange-schema.md).
            "msExchRequireAuthToSendTo", "msExchRemoteRecipientType",
        ),
    ),
    ClassChange(
        "user",
        auxiliary_classes=("msExchCustomAttributes", "msExchBaseClass", "msExchMailStorage"),
        may_contain=("msExchQueryBaseDN", "msDS-ExternalDirectoryObjectId"),
    ),
    ClassChange(
        "group",
        auxiliary_classes=("msExchCustomAttributes", "msExchBaseClass"),
        may_contain=(
            "hideDLMembership", "oOFReplyToOriginator", "reportToOriginator", "reportToOwner",
            "msExchCoManagedByLink", "msExchGroupJoinRestriction", "msExchGroupDepartRestriction",
            "msDS-ExternalDirectoryObjectId",
        ),
    ),
    ClassChange("contact", auxiliary_classes=("msExchCustomAttributes", "msExchBaseClass")),
)

# What the portal cannot work without; schema_missing() checks these and every placement above.
REQUIRED_ATTRIBUTES: tuple[str, ...] = tuple(a.ldap_name for a in ATTRIBUTES)
REQUIRED_CLASSES: tuple[str, ...] = tuple(c.ldap_name for c in CLASSES)


class SchemaError(RuntimeError):
    def __init__(self, message: str, result: dict | None = None) -> None:
        self.result = result or {}
        detail = ""
        if result:
            detail = f" (LDAP {result.get('result')} {result.get('description')}: {result.get('message', '').strip()})"
        super().__init__(message + detail)


@dataclass
class SchemaReport:
    added_attributes: list[str] = field(default_factory=list)
    added_classes: list[str] = field(default_factory=list)
    changed_classes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added_attributes or self.added_classes or self.changed_classes)


# --------------------------------------------------------------------------------------------
# connection


@contextlib.contextmanager
def admin_connection(
    *, host: str, port: int = 389, bind_dn: str, password: str, use_ssl: bool = False, timeout: int = 30
) -> Iterator[ldap3.Connection]:
    """A plain ldap3 connection bound as a schema administrator (the lab's Administrator).

    check_names is off because the rootDSE (empty DN) must be modified to refresh the schema, which
    ldap3's DN sanitiser rejects.
    """
    server = ldap3.Server(host, port=port, use_ssl=use_ssl, get_info=ldap3.NONE, connect_timeout=timeout)
    conn = ldap3.Connection(
        server, user=bind_dn, password=password, check_names=False, raise_exceptions=False,
        receive_timeout=int(timeout),
    )
    try:
        if not conn.bind():
            raise SchemaError(f"bind as {bind_dn} failed", conn.result)
        yield conn
    finally:
        with contextlib.suppress(Exception):
            conn.unbind()


def schema_dn(conn: ldap3.Connection) -> str:
    if not conn.search("", "(objectClass=*)", search_scope=BASE, attributes=["schemaNamingContext"]):
        raise SchemaError("cannot read the rootDSE", conn.result)
    values = conn.response[0]["attributes"].get("schemaNamingContext") or []
    if not values:
        raise SchemaError("the rootDSE has no schemaNamingContext")
    return values[0] if isinstance(values, list) else values


# --------------------------------------------------------------------------------------------
# inspection


@dataclass
class _Present:
    attributes: dict[str, str]  # lower name -> attributeID
    classes: dict[str, str]  # lower name -> governsID
    may_contain: dict[str, set[str]]  # lower class name -> lower names (non-system)
    aux: dict[str, set[str]]  # lower class name -> lower aux class names (non-system)


def _read_present(conn: ldap3.Connection, sdn: str) -> _Present:
    wanted_attrs = [a.ldap_name for a in ATTRIBUTES]
    wanted_classes = [c.ldap_name for c in CLASSES] + [c.ldap_name for c in CLASS_CHANGES]
    # Names are this module's constants, never user input; escaping is still applied for form.
    from ldap3.utils.conv import escape_filter_chars

    terms = "".join(f"(lDAPDisplayName={escape_filter_chars(n)})" for n in wanted_attrs + wanted_classes)
    ok = conn.search(
        sdn,
        f"(|{terms})",
        search_scope=SUBTREE,
        attributes=["lDAPDisplayName", "attributeID", "governsID", "mayContain", "auxiliaryClass", "objectClass"],
        paged_size=1000,
    )
    if not ok and conn.result.get("result") not in (0, 32):
        raise SchemaError("cannot read the schema", conn.result)
    present = _Present({}, {}, {}, {})
    for entry in conn.response or []:
        if entry.get("type") != "searchResEntry":
            continue
        attrs = entry["attributes"]
        name = _first(attrs.get("lDAPDisplayName")).lower()
        classes = {str(v).lower() for v in attrs.get("objectClass", [])}
        if "attributeschema" in classes:
            present.attributes[name] = _first(attrs.get("attributeID"))
        elif "classschema" in classes:
            present.classes[name] = _first(attrs.get("governsID"))
            present.may_contain[name] = {str(v).lower() for v in attrs.get("mayContain", [])}
            present.aux[name] = {str(v).lower() for v in attrs.get("auxiliaryClass", [])}
    return present


def _first(value: object) -> str:
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return "" if value is None else str(value)


def schema_missing(conn: ldap3.Connection) -> list[str]:
    """What the lab's schema still lacks, as readable items; empty when everything is in place.

    Items are attribute and class names (``mailNickname``), then placements
    (``mailRecipient may contain mailNickname``, ``user auxiliary msExchCustomAttributes``).
    Against a production forest an empty list means its Exchange schema serves the portal.
    """
    sdn = schema_dn(conn)
    present = _read_present(conn, sdn)
    missing: list[str] = [a.ldap_name for a in ATTRIBUTES if a.ldap_name.lower() not in present.attributes]
    missing += [c.ldap_name for c in CLASSES if c.ldap_name.lower() not in present.classes]
    for cdef in CLASSES:
        key = cdef.ldap_name.lower()
        if key in present.classes:
            missing += [
                f"{cdef.ldap_name} may contain {a}" for a in cdef.may_contain
                if a.lower() not in present.may_contain[key] and not _system_attr(conn, sdn, cdef.ldap_name, a)
            ]
    for change in CLASS_CHANGES:
        key = change.ldap_name.lower()
        if key not in present.classes:
            missing.append(change.ldap_name)
            continue
        missing += [
            f"{change.ldap_name} may contain {a}" for a in change.may_contain
            if a.lower() not in present.may_contain[key] and not _system_attr(conn, sdn, change.ldap_name, a)
        ]
        missing += [
            f"{change.ldap_name} auxiliary {x}" for x in change.auxiliary_classes if x.lower() not in present.aux[key]
        ]
    return missing


def _system_attr(conn: ldap3.Connection, sdn: str, class_name: str, attr: str) -> bool:
    """True when the class already allows ``attr`` through its read-only system* lists."""
    from ldap3.utils.conv import escape_filter_chars

    ok = conn.search(
        sdn,
        f"(&(objectClass=classSchema)(lDAPDisplayName={escape_filter_chars(class_name)}))",
        search_scope=SUBTREE,
        attributes=["systemMayContain", "systemMustContain", "mustContain"],
    )
    if not ok or not conn.response:
        return False
    attrs = conn.response[0]["attributes"]
    allowed = {str(v).lower() for key in ("systemMayContain", "systemMustContain", "mustContain") for v in
               attrs.get(key, [])}
    return attr.lower() in allowed


# --------------------------------------------------------------------------------------------
# application


def apply_schema(conn: ldap3.Connection) -> SchemaReport:
    """Add whatever of the Exchange schema is missing; a no-op when everything is there.

    Order matters to the directory: attributes before the classes naming them, a forward link
    loaded (schema refresh) before a back link naming it, auxiliary classes loaded before classes
    that use them, and a refresh at the end so that the running DC uses the result at once.
    """
    sdn = schema_dn(conn)
    report = SchemaReport()
    present = _read_present(conn, sdn)
    _check_conflicts(present)

    def add_attributes(defs: list[AttributeDef]) -> bool:
        added = False
        for adef in defs:
            if adef.ldap_name.lower() in present.attributes:
                continue
            _add(conn, f"CN={adef.cn},{sdn}", _attribute_entry(adef))
            present.attributes[adef.ldap_name.lower()] = adef.attribute_id
            report.added_attributes.append(adef.ldap_name)
            added = True
        return added

    first = [a for a in ATTRIBUTES if a.back_link_of is None]
    # Forward links before their numbered back links keeps the pair consistent if interrupted.
    first.sort(key=lambda a: (a.link_id is not None and a.link_id % 2 == 1))
    # A refresh is only needed when something was written (and keeps a second run write-free).
    if add_attributes(first):
        refresh_schema(conn)
    if add_attributes([a for a in ATTRIBUTES if a.back_link_of is not None]):
        refresh_schema(conn)

    for wanted in ([c for c in CLASSES if c.category == 3], [c for c in CLASSES if c.category != 3]):
        added = False
        for cdef in wanted:
            if cdef.ldap_name.lower() in present.classes:
                continue
            _add(conn, f"CN={cdef.cn},{sdn}", _class_entry(cdef, sdn))
            present.classes[cdef.ldap_name.lower()] = cdef.governs_id
            present.may_contain[cdef.ldap_name.lower()] = {a.lower() for a in cdef.may_contain}
            present.aux[cdef.ldap_name.lower()] = {a.lower() for a in cdef.auxiliary_classes}
            report.added_classes.append(cdef.ldap_name)
            added = True
        if added:
            refresh_schema(conn)

    for change in CLASS_CHANGES:
        key = change.ldap_name.lower()
        if key not in present.classes:
            raise SchemaError(f"class {change.ldap_name} is not in the schema")
        class_dn = _class_dn(conn, sdn, change.ldap_name)
        changes: dict[str, list] = {}
        may = [a for a in change.may_contain if a.lower() not in present.may_contain[key]
               and not _system_attr(conn, sdn, change.ldap_name, a)]
        aux = [x for x in change.auxiliary_classes if x.lower() not in present.aux[key]]
        if may:
            changes["mayContain"] = [(MODIFY_ADD, may)]
        if aux:
            changes["auxiliaryClass"] = [(MODIFY_ADD, aux)]
        if changes:
            if not conn.modify(class_dn, changes):
                raise SchemaError(f"cannot extend class {change.ldap_name}", conn.result)
            report.changed_classes.append(change.ldap_name)
    if report.changed_classes:
        refresh_schema(conn)
    return report


def refresh_schema(conn: ldap3.Connection) -> None:
    """Make the DC reload its schema cache (rootDSE schemaUpdateNow), as after any schema write."""
    if not conn.modify("", {"schemaUpdateNow": [(MODIFY_REPLACE, ["1"])]}):
        raise SchemaError("schema refresh (schemaUpdateNow) failed", conn.result)


def _check_conflicts(present: _Present) -> None:
    clashes = [
        f"{a.ldap_name} has attributeID {present.attributes[a.ldap_name.lower()]}, expected {a.attribute_id}"
        for a in ATTRIBUTES
        if a.ldap_name.lower() in present.attributes and present.attributes[a.ldap_name.lower()] != a.attribute_id
    ]
    clashes += [
        f"{c.ldap_name} has governsID {present.classes[c.ldap_name.lower()]}, expected {c.governs_id}"
        for c in CLASSES
        if c.ldap_name.lower() in present.classes and present.classes[c.ldap_name.lower()] != c.governs_id
    ]
    if clashes:
        raise SchemaError("the schema already defines these differently (reset the lab): " + "; ".join(clashes))


def _class_dn(conn: ldap3.Connection, sdn: str, ldap_name: str) -> str:
    from ldap3.utils.conv import escape_filter_chars

    ok = conn.search(
        sdn, f"(&(objectClass=classSchema)(lDAPDisplayName={escape_filter_chars(ldap_name)}))",
        search_scope=SUBTREE, attributes=["cn"],
    )
    if not ok or not conn.response or conn.response[0].get("type") != "searchResEntry":
        raise SchemaError(f"class {ldap_name} not found in {sdn}", conn.result)
    return conn.response[0]["dn"]


def _add(conn: ldap3.Connection, dn: str, attributes: dict) -> None:
    if not conn.add(dn, attributes=attributes):
        if conn.result.get("result") == 68:  # a concurrent apply added it first
            return
        raise SchemaError(f"cannot add {dn}", conn.result)


def _bool(value: bool) -> str:
    return "TRUE" if value else "FALSE"


def _attribute_entry(adef: AttributeDef) -> dict:
    syntax, om_syntax, om_class = _SYNTAXES[adef.syntax]
    entry: dict = {
        "objectClass": ["top", "attributeSchema"],
        "cn": adef.cn,
        "attributeID": adef.attribute_id,
        "attributeSyntax": syntax,
        "oMSyntax": str(om_syntax),
        "isSingleValued": _bool(adef.single_valued),
        "lDAPDisplayName": adef.ldap_name,
        "adminDisplayName": adef.cn,
        "adminDescription": adef.cn,
        "searchFlags": str(adef.search_flags),
        "showInAdvancedViewOnly": "TRUE",
    }
    if om_class is not None:
        entry["oMObjectClass"] = om_class
    if adef.link_id is not None:
        entry["linkID"] = str(adef.link_id)
    elif adef.auto_link:
        entry["linkID"] = AUTO_LINK_ID
    elif adef.back_link_of is not None:
        entry["linkID"] = adef.back_link_of
    if adef.range_lower is not None:
        entry["rangeLower"] = str(adef.range_lower)
    if adef.range_upper is not None:
        entry["rangeUpper"] = str(adef.range_upper)
    if adef.schema_id_guid:
        entry["schemaIDGUID"] = UUID(adef.schema_id_guid).bytes_le
    return entry


def _class_entry(cdef: ClassDef, sdn: str) -> dict:
    entry: dict = {
        "objectClass": ["top", "classSchema"],
        "cn": cdef.cn,
        "governsID": cdef.governs_id,
        "lDAPDisplayName": cdef.ldap_name,
        "objectClassCategory": str(cdef.category),
        "subClassOf": "top",
        "rDNAttID": "cn",
        "adminDisplayName": cdef.cn,
        "adminDescription": cdef.cn,
        "showInAdvancedViewOnly": "TRUE",
        "defaultHidingValue": "TRUE",
        "systemOnly": "FALSE",
        "defaultObjectCategory": f"CN={cdef.cn},{sdn}",
    }
    if cdef.may_contain:
        entry["mayContain"] = list(cdef.may_contain)
    if cdef.auxiliary_classes:
        entry["auxiliaryClass"] = list(cdef.auxiliary_classes)
    if cdef.poss_superiors:
        entry["possSuperiors"] = list(cdef.poss_superiors)
    if cdef.schema_id_guid:
        entry["schemaIDGUID"] = UUID(cdef.schema_id_guid).bytes_le
    return entry
