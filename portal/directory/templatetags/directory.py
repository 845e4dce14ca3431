from django import template
from django.utils.http import urlencode

from portal.connectors import ad
from portal.directory import attributes

register = template.Library()


@register.filter
def attr_first(obj: ad.DirectoryObject, name: str):
    return obj.first(name)


@register.filter
def dn_parent(dn: str) -> str:
    try:
        return str(ad.parse_dn(dn).parent)
    except ad.AdError:
        return dn


@register.filter
def dn_name(dn: str) -> str:
    """The RDN value: how a person names a member or a group."""
    try:
        return ad.parse_dn(dn).rdn_value
    except ad.AdError:
        return dn


@register.filter
def ldap_value(value) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex() if len(value) <= 64 else f"0x{bytes(value[:64]).hex()}… ({len(value)} bytes)"
    return str(value)


@register.filter
def flag_names(value, name: str) -> str:
    return attributes.flag_names(name, value)


@register.simple_tag(takes_context=True)
def query_with(context, **changes) -> str:
    """The current query string with some parameters replaced (pagers keep the filters)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        params[key] = value
    return urlencode(sorted(params.lists()), doseq=True)


@register.filter
def has_more_members(page: int, total: int) -> bool:
    """True when pages of MEMBER_PAGE_SIZE up to `page` leave members unseen."""
    from portal.directory.selectors import MEMBER_PAGE_SIZE

    return page * MEMBER_PAGE_SIZE < total
