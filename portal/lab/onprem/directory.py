"""The directory side: a cmdlet call's session on the lab AD through the portal's AD connector."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from portal.connectors import ad
from portal.connectors.ad import ActiveDirectory, DirectoryObject
from portal.lab import layout

from .errors import _AMBIGUOUS, _NOT_FOUND, _PROXY_EXISTS, CmdletError, _conversion
from .names import _split_canonical, canonical_name, domain_name
from .recipient_types import _RECIPIENT_ATTRIBUTES
from .values import _PREFIX, Proxy, _identity_value

_setup_lock = threading.Lock()
_server_names: dict[str, str] = {}


def _ensure_django() -> None:
    """The lab cloud process has no Django: configure it on the first call (settings say where the lab AD is)."""
    with _setup_lock:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
        from django.apps import apps

        if not apps.ready:
            import django

            django.setup()


@dataclass
class _Session:
    """One cmdlet call: a connection to the lab AD and where things are."""

    directory: ActiveDirectory
    base_dn: str
    server: str = ""

    # ---- errors that name the server

    def not_found(self, identity: str) -> CmdletError:
        return CmdletError(_NOT_FOUND, f"The operation couldn't be performed because object '{identity}' couldn't be "
                           f"found on '{self.server}'.", target=identity)

    def ambiguous(self, identity: str) -> CmdletError:
        return CmdletError(_AMBIGUOUS, f"The operation couldn't be performed because '{identity}' matches multiple "
                           "entries.", target=identity)

    # ---- identities

    def resolve(self, identity: str, *, kinds: Iterable[str], shown: str | None = None) -> DirectoryObject:
        """A recipient by GUID, DN, canonical name, name, alias, email/proxy address, LegacyExchangeDN,
        sAMAccountName or UPN (RecipientIdParameter's forms); only mail-enabled objects are recipients."""
        wanted = set(kinds)
        shown = shown or identity
        candidate = self._by_reference(identity)
        if candidate is not None:
            if candidate.kind in wanted and candidate.first("mailNickname"):
                return candidate
            raise self.not_found(shown)
        terms = [ad.eq(a, identity) for a in ("name", "mailNickname", "sAMAccountName")]
        if "@" in identity:
            proxy = identity if _PREFIX.match(identity) else f"smtp:{identity}"
            terms += [ad.eq("proxyAddresses", proxy), ad.eq("userPrincipalName", identity)]
            if not _PREFIX.match(identity):
                terms.append(ad.eq("mail", identity))
        elif _PREFIX.match(identity):
            terms.append(ad.eq("proxyAddresses", identity))
        if identity.lower().startswith("/o="):
            terms.append(ad.eq("legacyExchangeDN", identity))
        flt = ad.all_of(ad.kind_filter(wanted), ad.present("mailNickname"), ad.any_of(*terms))
        found = list(self.directory.search(filter=flt, base=self.base_dn, attributes=_RECIPIENT_ATTRIBUTES, limit=2))
        if not found:
            raise self.not_found(shown)
        if len(found) > 1:
            raise self.ambiguous(shown)
        return found[0]

    def _by_reference(self, identity: str) -> DirectoryObject | None:
        """GUID, DN or canonical name: None when the text is none of those forms."""
        text = identity.strip("{}") if identity.startswith("{") else identity
        try:
            guid = UUID(text)
        except ValueError:
            guid = None
        try:
            if guid is not None and len(text) in (32, 36):
                return self.directory.read_by_guid(guid, attributes=_RECIPIENT_ATTRIBUTES)
            if "=" in identity:
                try:
                    dn = ad.parse_dn(identity)
                except ad.InvalidDn:
                    return None
                # '=' is also legal in an alias: only a DN inside this domain is taken as one.
                if not dn.is_within(self.base_dn):
                    return None
                return self.directory.read(str(dn), attributes=_RECIPIENT_ATTRIBUTES)
            dn_text = self.dn_from_canonical(identity)
            if dn_text is not None:
                return self.directory.read(dn_text, attributes=_RECIPIENT_ATTRIBUTES)
        except ad.NotFound:
            raise self.not_found(identity) from None
        return None

    def dn_from_canonical(self, text: str) -> str | None:
        """``lab.example/Contoso/Synced`` -> its DN (each step an OU or a container), or None."""
        if "/" not in text:
            return None
        parts = _split_canonical(text)
        if parts[0].lower() != domain_name(self.base_dn).lower() or any(not p for p in parts[1:]):
            return None
        current = self.base_dn
        for part in parts[1:]:
            for attr in ("OU", "CN"):
                child = ad.child_dn(current, attr, part)
                if self.directory.exists(child):
                    current = child
                    break
            else:
                raise self.not_found(text)
        return current

    def organizational_unit(self, value: Any, parameter: str) -> str:
        """OrganizationalUnitIdParameter: DN, canonical name, GUID or name of an OU, container or the domain."""
        text = _identity_value(value, parameter)
        obj: DirectoryObject | None = None
        try:
            if "=" in text:
                try:
                    dn = ad.parse_dn(text)
                except ad.InvalidDn as exc:
                    raise _conversion(parameter, text, "Microsoft.Exchange.Configuration.Tasks."
                                      "OrganizationalUnitIdParameter", exc.message) from None
                obj = self.directory.read(str(dn), attributes=["objectClass"])
            elif (dn_text := self.dn_from_canonical(text)) is not None:
                obj = self.directory.read(dn_text, attributes=["objectClass"])
            elif text.lower() == domain_name(self.base_dn).lower():
                obj = self.directory.read(self.base_dn, attributes=["objectClass"])
            else:
                try:
                    obj = self.directory.read_by_guid(UUID(text.strip("{}")), attributes=["objectClass"])
                except ValueError:
                    flt = ad.all_of(ad.object_class("organizationalUnit"), ad.eq("ou", text))
                    found = list(self.directory.search(filter=flt, base=self.base_dn, attributes=["objectClass"],
                                                       limit=2))
                    if len(found) > 1:
                        raise self.ambiguous(text) from None
                    obj = found[0] if found else None
        except ad.NotFound:
            obj = None
        if obj is None or not any(obj.has_class(c) for c in ("organizationalUnit", "container", "domainDNS",
                                                             "builtinDomain")):
            raise self.not_found(text)
        return str(ad.parse_dn(obj.dn))

    # ---- addresses

    def check_addresses_free(self, proxies: Iterable[Proxy], *, owner_dn: str | None) -> None:
        """Exchange refuses an address another object holds as a proxy address (or an X500 one as its
        LegacyExchangeDN)."""
        for proxy in proxies:
            if proxy.is_smtp:
                flt = ad.eq("proxyAddresses", f"smtp:{proxy.address}")
            elif proxy.prefix.lower() == "x500":
                flt = ad.any_of(ad.eq("proxyAddresses", str(proxy)), ad.eq("legacyExchangeDN", proxy.address))
            else:
                flt = ad.eq("proxyAddresses", str(proxy))
            for holder in self.directory.search(filter=flt, base=self.base_dn, attributes=["objectClass"], limit=2):
                if owner_dn is not None and ad.same_dn(holder.dn, owner_dn):
                    continue
                raise CmdletError(_PROXY_EXISTS, f'The proxy address "{proxy}" is already being used by the proxy '
                                  f'addresses or LegacyExchangeDN of "{canonical_name(holder.dn)}". Please choose '
                                  "another proxy address.", target=str(proxy))

    def legacy_dn(self, alias: str) -> str:
        return (f"/o={layout.EXCHANGE_ORG}/ou={layout.ADMIN_GROUP}/cn=Recipients/cn={uuid.uuid4().hex}-"
                f"{alias[:11]}")
