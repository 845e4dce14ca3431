"""Reads of on-premises AD for the Directory pages. The connector builds every filter."""

from __future__ import annotations

from dataclasses import dataclass, replace

from portal.connectors import ad
from portal.connectors.registry import active_directory

from .attributes import PANEL_ATTRIBUTES, SEARCH_ATTRIBUTES, SHOWN_ATTRIBUTES, is_shown, secret_class

PAGE_SIZE = 50
MEMBER_PAGE_SIZE = 200
MAX_RESULTS = 1000


class SecretObject(Exception):
    """The object exists to hold a secret (a BitLocker recovery key, a trust password...)."""

    def __init__(self, object_class: str) -> None:
        super().__init__(f"a {object_class} object holds secrets; the portal does not show it")
        self.object_class = object_class


@dataclass(frozen=True)
class SearchPage:
    results: list[ad.DirectoryObject]
    page: int
    has_next: bool
    capped: bool


def directory_search(*, text: str, kinds: list[str], page: int = 1) -> SearchPage:
    """Objects with the text anywhere in a name or address, `page` of PAGE_SIZE; AD's own paging underneath."""
    wanted = page * PAGE_SIZE + 1
    with active_directory() as directory:
        found = list(directory.find(name_or_mail_or_alias=text, kinds=kinds, anywhere=True,
                                    attributes=SEARCH_ATTRIBUTES, limit=min(wanted, MAX_RESULTS + 1)))
    found.sort(key=lambda o: (str(o.first("displayName") or o.first("cn") or "")).lower())
    start = (page - 1) * PAGE_SIZE
    return SearchPage(results=found[start:start + PAGE_SIZE], page=page, has_next=len(found) > page * PAGE_SIZE,
                      capped=len(found) > MAX_RESULTS)


@dataclass(frozen=True)
class ObjectView:
    obj: ad.DirectoryObject
    attributes: list[tuple[str, list]]
    proxy_addresses: list[tuple[str, bool]]
    members: list[str]
    member_total: int
    member_page: int
    member_of: list[str]


def directory_object(*, guid: str, member_page: int = 1) -> ObjectView:
    with active_directory() as directory:
        # Only the allowlist is asked for: a secret the server holds never reaches the portal.
        obj = directory.read_by_guid(guid, attributes=SHOWN_ATTRIBUTES)
        refused = secret_class(obj.object_classes)
        if refused:
            raise SecretObject(refused)
        members: list[str] = []
        total = 0
        if obj.kind == "group":
            # Ranged reads: a 50,000-member group is counted, not held, and one page is kept.
            start = (member_page - 1) * MEMBER_PAGE_SIZE
            for total, value in enumerate(directory.iter_values(obj.dn, "member"), start=1):
                if start < total <= start + MEMBER_PAGE_SIZE:
                    members.append(value)
    # Checked again on what came back: a server may add attributes nobody asked for.
    obj = replace(obj, attributes={name: values for name, values in obj.attributes.items() if is_shown(name)})
    attributes = sorted(((name, values) for name, values in obj.attributes.items()
                         if name.split(";")[0].lower() not in PANEL_ATTRIBUTES), key=lambda kv: kv[0].lower())
    proxies = sorted(((p, p.startswith("SMTP:")) for p in obj.get("proxyAddresses")),
                     key=lambda pair: (not pair[1], pair[0].lower()))
    return ObjectView(obj=obj, attributes=attributes, proxy_addresses=proxies, members=members,
                      member_total=total, member_page=member_page, member_of=sorted(obj.get("memberOf"), key=str.lower))


def guid_for_dn(*, dn: str) -> str:
    with active_directory() as directory:
        return str(directory.read(dn, attributes=["objectGUID"]).guid)
