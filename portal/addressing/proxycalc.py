"""ProxyCalc: how Entra ID works out the cloud addresses of an object Entra Connect synchronises.

Pure: no Django, no I/O. The lab's sync engine calls :func:`calculate` for every object it projects into
the lab cloud. The portal's Address repair area shows a result's ``explanation`` and ``removed`` to
admins, so that they can see why an on-premises address or a ``mail`` change did not reach Exchange
Online.

Sources
-------
* Microsoft Learn, "How the proxyAddresses attribute is populated in Microsoft Entra ID" (first titled
  "... in Azure AD", KB 3190357),
  https://learn.microsoft.com/troubleshoot/entra/entra-id/user-prov-sync/proxyaddresses-attribute-populate
  (the revision dated 2023-11-06, with scenarios 1-6; the revision dated 2020-05-09 also names X500
  addresses in ``/o=MicrosoftOnline`` as discarded).
* Microsoft Learn, "Identity synchronization and duplicate attribute resiliency": a conflicting SMTP
  proxy address is quarantined on the object that brings it; the object that holds it keeps it.
* ``docs/seed-field-notes.txt``: "ProxyCalc and User Principal Names" (the UPN is always a secondary
  address of a mail recipient) and "Provisioning Exchange Online mailboxes with only a mail
  attribute" (once hybrid writeback has put the cloud X500 into ``proxyAddresses``, ``mail`` no longer
  reaches Exchange Online).

The rules, in the article's terms (paraphrased)
-----------------------------------------------
1. Entra ID keeps its own copy of the on-premises ``mail`` and ``proxyAddresses`` and derives the
   cloud ``proxyAddresses``, ``mail`` and ``mailNickname`` from them; the values are recalculated on
   every change, starting from what the cloud object already has (``previous``).
2. On-premises addresses are dropped when they are malformed (no ``type:`` prefix, not a valid SMTP
   address, a space), use a legacy address type (MS Mail, X.400, ...), or are in a reserved domain
   (``*.onmicrosoft.com``, ``*.microsoftonline.com``). An object with an Exchange Online licence also
   loses every address whose domain is not verified in the tenant.
3. When ``proxyAddresses`` is set on-premises it decides the addresses: its ``SMTP:`` value is the
   primary address and ``mail`` plays no part. When it holds no ``SMTP:`` value at all (scenario 4's
   secondary-only list, the field notes' X500-only list), the cloud keeps the primary address it had.
4. When ``proxyAddresses`` is not set on-premises, ``mail`` gives the primary address.
5. Otherwise a mail recipient's primary address is its UPN (scenario 1); an object that has lost its
   licence falls back to its MOERA (scenario 4).
6. ``mail`` in the cloud is the primary SMTP address. ``mailNickname`` is the on-premises value, else
   the cloud's existing one, else the prefix of the primary address, else the prefix of the UPN.
7. The MOERA, ``<mailNickname>@<initial domain>``, is added once an object is a mail recipient and is
   kept from then on (it is not recalculated when ``mailNickname`` changes, scenario 5). If another
   object already has it, four digits are appended to the alias (scenario 6).
8. The UPN is a secondary address of every mail recipient, whatever the on-premises attributes say
   (note under scenario 1, and the field notes).
9. An SMTP address another object already holds is quarantined on the newcomer and left with the
   holder (duplicate attribute resiliency).

Where the article is silent, the decisions taken are described on the functions that apply them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple, Protocol

__all__ = [
    "CloudAddresses",
    "CloudState",
    "ObjectKind",
    "PrimarySource",
    "ProxyAddress",
    "ProxyCalcInput",
    "ProxyCalcResult",
    "Recipient",
    "RemovalReason",
    "RemovedAddress",
    "calculate",
    "is_valid_smtp_address",
    "parse_proxy_address",
]


class ObjectKind(StrEnum):
    USER = "user"
    GROUP = "group"
    CONTACT = "contact"


class Recipient(StrEnum):
    """What the object is in Exchange Online. This decides which of the article's rules apply."""

    # A plain user (no Exchange Online licence) or a group/contact that is not mail-enabled.
    NOT_MAIL_ENABLED = "not_mail_enabled"
    # An Exchange Online mailbox: a licensed user, or a shared/room/equipment mailbox (users only).
    MAILBOX = "mailbox"
    # A mail user (no cloud mailbox), a mail-enabled group or a mail contact.
    MAIL_ENABLED = "mail_enabled"


class PrimarySource(StrEnum):
    """Where the primary SMTP address came from. The Address repair area uses this to say which on-premises
    attribute to change."""

    ON_PREMISES_PROXY_ADDRESSES = "the SMTP: value of proxyAddresses on-premises"
    PREVIOUS_CLOUD_PRIMARY = "the primary address the cloud object already had"
    MAIL = "the mail attribute on-premises"
    TARGET_ADDRESS = "the targetAddress of the contact"
    USER_PRINCIPAL_NAME = "the userPrincipalName"
    MOERA = "the MOERA (alias@initial domain)"
    NONE = "nothing: the object has no primary SMTP address"


class RemovalReason(StrEnum):
    """Why an address did not reach the cloud. The member name is the code, the value the admin-facing text."""

    MALFORMED = "malformed: no address type prefix, or not a valid SMTP address"
    TOO_LONG = "longer than 256 characters"
    LEGACY_ADDRESS_TYPE = "a legacy address type (MS Mail, X.400, ...) that Entra ID discards"
    RESERVED_DOMAIN = "in a domain reserved to Microsoft Online (onmicrosoft.com / microsoftonline.com)"
    UNVERIFIED_DOMAIN = "its domain is not verified in the tenant"
    IN_USE_BY_ANOTHER_OBJECT = "another object in the tenant already has it (proxy address conflict, quarantined)"
    OWN_LEGACY_EXCHANGE_DN = "the object's own cloud legacyExchangeDN, written back on-premises by Exchange hybrid"


class RemovedAddress(NamedTuple):
    """An address the on-premises object (or ProxyCalc itself) offered that the cloud object does not get."""

    address: str
    reason: RemovalReason


class CloudState(Protocol):
    """What the cloud object already has: a :class:`ProxyCalcResult`, a :class:`CloudAddresses`, or a model
    of the lab cloud with these three attributes."""

    @property
    def mail(self) -> str | None: ...

    @property
    def mail_nickname(self) -> str | None: ...

    @property
    def proxy_addresses(self) -> Iterable[str]: ...


@dataclass(frozen=True, kw_only=True)
class CloudAddresses:
    """The address attributes of an object in Entra ID (for ``previous=`` when no result is at hand)."""

    mail: str | None = None
    mail_nickname: str | None = None
    proxy_addresses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "proxy_addresses", tuple(self.proxy_addresses))


@dataclass(frozen=True, kw_only=True)
class ProxyCalcInput:
    """The on-premises attributes Entra Connect sends for one object, and what the object is in Exchange Online."""

    kind: ObjectKind = ObjectKind.USER
    recipient: Recipient
    user_principal_name: str | None = None
    mail: str | None = None
    mail_nickname: str | None = None
    proxy_addresses: tuple[str, ...] = ()
    # Only a contact's address is taken from targetAddress; a user's targetAddress routes mail to the
    # cloud and never becomes one of its cloud addresses.
    target_address: str | None = None
    # The X500 form of the cloud object's own LegacyExchangeDN, when known. Exchange hybrid writes it
    # into proxyAddresses on-premises; the cloud keeps it as legacyExchangeDN rather than as an address,
    # which is why the field notes' cloud address lists never show it.
    cloud_legacy_exchange_dn: str | None = None
    # A stable identity (sourceAnchor / objectGUID) so that the four "random" MOERA digits are the
    # same at every sync cycle of the lab.
    source_anchor: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "proxy_addresses", tuple(self.proxy_addresses))
        object.__setattr__(self, "kind", ObjectKind(self.kind))
        object.__setattr__(self, "recipient", Recipient(self.recipient))
        if self.recipient is Recipient.MAILBOX and self.kind is not ObjectKind.USER:
            raise ValueError("only a user can have an Exchange Online mailbox")


@dataclass(frozen=True, kw_only=True)
class ProxyCalcResult:
    """The address attributes of the object in Entra ID, and why they are what they are."""

    # Primary first (SMTP:), then the other SMTP addresses (smtp:), then other types as given on-premises.
    proxy_addresses: tuple[str, ...]
    primary_smtp: str | None
    mail: str | None
    mail_nickname: str | None
    user_principal_name: str | None
    moera: str | None
    primary_source: PrimarySource
    # True when mail is set on-premises but did not decide the primary address because proxyAddresses is
    # set there (the field notes' "a mail change never reaches Exchange Online").
    mail_ignored: bool
    removed: tuple[RemovedAddress, ...] = ()
    explanation: tuple[str, ...] = field(default_factory=tuple)

    def as_cloud(self) -> CloudAddresses:
        return CloudAddresses(mail=self.mail, mail_nickname=self.mail_nickname, proxy_addresses=self.proxy_addresses)


# --- addresses ----------------------------------------------------------------------------------

MAX_PROXY_ADDRESS_LENGTH = 256
# Address types the article lists as legacy ("MSMAIL, X400, etc."): MS Mail, cc:Mail, Lotus Notes and
# GroupWise connectors that Exchange Online no longer has.
LEGACY_ADDRESS_TYPES = frozenset({"X400", "MS", "MSMAIL", "CCMAIL", "NOTES", "GWISE"})

_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9]{0,8}")
# RFC 5322 dot-atom local part (quoted local parts are refused, as Exchange refuses them).
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_NOT_LOCAL = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]")


@dataclass(frozen=True)
class ProxyAddress:
    """One ``type:value`` proxy address. The case of an ``SMTP`` prefix says whether it is the primary address."""

    prefix: str
    address: str

    @property
    def type(self) -> str:
        return self.prefix.upper()

    @property
    def is_smtp(self) -> bool:
        return self.type == "SMTP"

    @property
    def is_primary(self) -> bool:
        return self.prefix == "SMTP"

    @property
    def key(self) -> tuple[str, str]:
        # Exchange compares addresses without regard to case, whichever the type.
        return self.type, self.address.lower()

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2].lower()

    def __str__(self) -> str:
        return f"{self.prefix}:{self.address}"


def parse_proxy_address(value: str) -> ProxyAddress | None:
    """``"smtp:a@b.com"`` → ``ProxyAddress("smtp", "a@b.com")``; ``None`` when there is no ``type:`` prefix."""
    prefix, sep, address = value.partition(":")
    if not sep or not address or not _PREFIX.fullmatch(prefix):
        return None
    return ProxyAddress(prefix, address)


def is_valid_smtp_address(address: str) -> bool:
    """RFC 5322 addr-spec restricted to what Exchange accepts: a dot-atom local part and a DNS host name."""
    local, sep, domain = address.rpartition("@")
    if not sep or not local or len(local) > 64 or len(domain) > 255 or not _LOCAL.fullmatch(local):
        return False
    labels = domain.split(".")
    return len(labels) >= 2 and all(_LABEL.fullmatch(label) for label in labels)


def _local_part(address: str) -> str:
    return address.rpartition("@")[0]


def _nobody(address: str) -> bool:
    return False


# --- the calculation ----------------------------------------------------------------------------


def calculate(
    *,
    source: ProxyCalcInput,
    verified_domains: AbstractSet[str] | Iterable[str],
    initial_domain: str,
    in_use_by_others: Callable[[str], bool] | AbstractSet[str] = _nobody,
    previous: CloudState | None = None,
) -> ProxyCalcResult:
    """Compute the cloud ``proxyAddresses``, ``mail`` and ``mailNickname`` of ``source``.

    ``verified_domains`` are the tenant's verified domains (the initial domain is always counted in).
    ``in_use_by_others`` answers whether an SMTP address (given without prefix, in lower case) already
    belongs to *another* object of the tenant: a callable or a set of lower-case addresses.
    ``previous`` is what the cloud object has now (``None`` for an object synchronised for the first
    time); several of the article's rules keep a value the cloud already holds.
    """
    return _Calculation(source, verified_domains, initial_domain, in_use_by_others, previous).run()


class _Calculation:
    def __init__(self, source: ProxyCalcInput, verified_domains: Iterable[str], initial_domain: str,
                 in_use_by_others: Callable[[str], bool] | AbstractSet[str], previous: CloudState | None) -> None:
        self.source = source
        self.initial_domain = initial_domain
        self.initial = initial_domain.lower()
        self.verified = frozenset(d.lower() for d in verified_domains) | {self.initial}
        if isinstance(in_use_by_others, AbstractSet):
            taken = frozenset(a.lower() for a in in_use_by_others)
            self.in_use: Callable[[str], bool] = lambda address: address in taken
        else:
            self.in_use = in_use_by_others
        self.previous_nickname = previous.mail_nickname if previous is not None else None
        self.previous = [p for p in (parse_proxy_address(v) for v in (previous.proxy_addresses if previous else ()))
                         if p is not None]
        self.previous_keys = {p.key for p in self.previous}
        self.removed: list[RemovedAddress] = []
        self.removed_keys: set[tuple[str, str]] = set()
        self.explanation: list[str] = []

        kind, recipient = source.kind, source.recipient
        self.is_recipient = recipient is not Recipient.NOT_MAIL_ENABLED
        # The article ties the removal of unverified domains to the Exchange Online licence; it is
        # applied to every Exchange Online recipient here because Exchange Online accepts no address
        # outside its accepted (= verified) domains. A contact's address is external by nature.
        self.drops_unverified = self.is_recipient and kind is not ObjectKind.CONTACT
        self.gets_moera = self.is_recipient and kind is not ObjectKind.CONTACT
        self.proxy_addresses_set = bool(source.proxy_addresses)
        self._moera_done = False
        self._moera: ProxyAddress | None = None
        self._upn_done = False
        self._upn_address: ProxyAddress | None = None

    # ---- bookkeeping

    def say(self, sentence: str) -> None:
        self.explanation.append(sentence)

    def remove(self, address: str, reason: RemovalReason, sentence: str) -> None:
        parsed = parse_proxy_address(address)
        key = parsed.key if parsed else ("", address.lower())
        if key in self.removed_keys:
            return
        self.removed_keys.add(key)
        self.removed.append(RemovedAddress(address, reason))
        self.say(sentence)

    def held_before(self, address: ProxyAddress) -> bool:
        return address.key in self.previous_keys

    def conflicts(self, address: ProxyAddress) -> bool:
        # Duplicate attribute resiliency only covers SMTP addresses, and leaves an address with the
        # object that already holds it: the object's own cloud addresses are never taken from it.
        return address.is_smtp and not self.held_before(address) and self.in_use(address.address.lower())

    def reserved(self, domain: str) -> bool:
        # The tenant's own initial domain is reserved for the MOERA, which the cloud alone assigns.
        # Other *.onmicrosoft.com domains are only reserved when the tenant has not verified them:
        # the hybrid routing domain (<tenant>.mail.onmicrosoft.com) is a verified domain that remote
        # mailboxes need, and the article's examples only discard the initial domain.
        if domain == self.initial:
            return True
        if domain == "microsoftonline.com" or domain.endswith(".microsoftonline.com"):
            return True
        return domain.endswith(".onmicrosoft.com") and domain not in self.verified

    # ---- the object

    def describe(self) -> None:
        s = self.source
        what = {
            Recipient.MAILBOX: "has an Exchange Online mailbox",
            Recipient.MAIL_ENABLED: "is a mail recipient in Exchange Online without a mailbox",
            Recipient.NOT_MAIL_ENABLED: "is not a mail recipient in Exchange Online",
        }[s.recipient]
        self.say(f"This {s.kind.value} {what}.")
        if self.is_recipient and not self.drops_unverified:
            self.say("A contact's addresses point outside the tenant, so their domains need not be verified.")

    def cloud_upn(self) -> str | None:
        """The UPN in Entra ID: a suffix that is not verified is replaced by the initial domain."""
        upn = self.source.user_principal_name if self.source.kind is ObjectKind.USER else None
        if not upn:
            return None
        local, _, domain = upn.rpartition("@")
        if domain.lower() in self.verified:
            return upn
        cloud = f"{local}@{self.initial_domain}"
        self.say(f"The UPN suffix of {upn} is not a verified domain, so Entra ID gives the user the UPN {cloud}.")
        if self.upn_rule_applies():
            self.remove(f"smtp:{upn}", RemovalReason.UNVERIFIED_DOMAIN,
                        f"smtp:{upn} (the on-premises UPN) is not added: its domain is not verified in the tenant.")
        return cloud

    def upn_rule_applies(self) -> bool:
        # The note under scenario 1 and the field notes: every mail recipient carries its UPN. Scenario 4
        # adds it back to an unlicensed user as soon as proxyAddresses is set on-premises.
        return self.source.kind is ObjectKind.USER and (self.is_recipient or self.proxy_addresses_set)

    # ---- candidates

    def check_smtp(self, address: ProxyAddress, what: str, *, verified_only: bool) -> bool:
        """Whether an SMTP candidate may be used; records why not."""
        shown = f"{what} {address.address}" if what else str(address)
        if len(str(address)) > MAX_PROXY_ADDRESS_LENGTH:
            self.remove(str(address), RemovalReason.TOO_LONG, f"{shown} is dropped: {RemovalReason.TOO_LONG}.")
            return False
        if not is_valid_smtp_address(address.address):
            self.remove(str(address), RemovalReason.MALFORMED, f"{shown} is dropped: it is not a valid SMTP address.")
            return False
        if self.reserved(address.domain):
            self.remove(str(address), RemovalReason.RESERVED_DOMAIN,
                        f"{shown} is dropped: {address.domain} is reserved to Microsoft Online; "
                        "the cloud assigns addresses there itself.")
            return False
        if verified_only and address.domain not in self.verified:
            if self.drops_unverified:
                self.remove(str(address), RemovalReason.UNVERIFIED_DOMAIN,
                            f"{shown} is dropped: {address.domain} is not a verified domain of the tenant.")
                return False
            if not self.is_recipient:
                self.say(f"{shown} is kept although {address.domain} is not verified: Entra ID removes such "
                         "addresses only once the object gets an Exchange Online licence.")
        if self.conflicts(address):
            self.remove(str(address), RemovalReason.IN_USE_BY_ANOTHER_OBJECT,
                        f"{shown} is dropped: another object in the tenant already has it. Entra ID quarantines "
                        "it on this object and leaves it with the other one until the conflict is resolved.")
            return False
        return True

    def on_premises_addresses(self) -> tuple[list[ProxyAddress], list[ProxyAddress], list[ProxyAddress]]:
        """The on-premises proxyAddresses that survive the article's filters: (SMTP:, smtp:, other types)."""
        primaries: list[ProxyAddress] = []
        secondaries: list[ProxyAddress] = []
        others: list[ProxyAddress] = []
        seen: dict[tuple[str, str], ProxyAddress] = {}
        own_dn = self.source.cloud_legacy_exchange_dn
        own_dn_key = ("X500", own_dn.removeprefix("X500:").removeprefix("x500:").lower()) if own_dn else None
        merged = False
        for raw in self.source.proxy_addresses:
            parsed = parse_proxy_address(raw)
            if parsed is None:
                self.remove(raw, RemovalReason.MALFORMED,
                            f"{raw} is dropped: a proxy address must start with its type, such as smtp: or x500:.")
                continue
            if parsed.key in seen:
                # Listed twice (smtp:a and SMTP:A are the same address); the primary form wins.
                merged = True
                if parsed.is_primary and not seen[parsed.key].is_primary and seen[parsed.key] in secondaries:
                    secondaries.remove(seen[parsed.key])
                    primaries.append(parsed)
                    seen[parsed.key] = parsed
                continue
            if len(raw) > MAX_PROXY_ADDRESS_LENGTH:
                self.remove(raw, RemovalReason.TOO_LONG, f"{_shorten(raw)} is dropped: {RemovalReason.TOO_LONG}.")
                continue
            if parsed.type in LEGACY_ADDRESS_TYPES:
                self.remove(raw, RemovalReason.LEGACY_ADDRESS_TYPE,
                            f"{raw} is dropped: {parsed.type} is a legacy address type Entra ID does not keep.")
                continue
            if parsed.is_smtp:
                if not self.check_smtp(parsed, "", verified_only=True):
                    continue
                (primaries if parsed.is_primary else secondaries).append(parsed)
            else:
                if parsed.type == "X500" and parsed.address.lower().startswith("/o=microsoftonline"):
                    self.remove(raw, RemovalReason.RESERVED_DOMAIN,
                                f"{raw} is dropped: X500 addresses in /o=MicrosoftOnline belong to the cloud.")
                    continue
                if own_dn_key is not None and parsed.key == own_dn_key:
                    self.remove(raw, RemovalReason.OWN_LEGACY_EXCHANGE_DN,
                                f"{raw} is the cloud object's own legacyExchangeDN (written back on-premises by "
                                "Exchange hybrid); the cloud keeps it as legacyExchangeDN, not as an address.")
                    continue
                others.append(parsed)
            seen[parsed.key] = parsed
        if merged:
            self.say("proxyAddresses lists some addresses more than once (case does not matter); each is kept once.")
        return primaries, secondaries, others

    def upn_address(self, cloud_upn: str | None) -> ProxyAddress | None:
        if self._upn_done:
            return self._upn_address
        self._upn_done = True
        if cloud_upn is None or not self.upn_rule_applies():
            return None
        candidate = ProxyAddress("smtp", cloud_upn)
        # The UPN's domain is verified by construction (cloud_upn); the reserved-domain filter is for
        # on-premises addresses and does not apply to an address the cloud derives itself.
        if not is_valid_smtp_address(cloud_upn):
            self.remove(str(candidate), RemovalReason.MALFORMED,
                        f"The UPN {cloud_upn} is not added as an address: it is not a valid SMTP address.")
            return None
        if self.conflicts(candidate):
            self.remove(str(candidate), RemovalReason.IN_USE_BY_ANOTHER_OBJECT,
                        f"The UPN {cloud_upn} is not added as an address: another object in the tenant already "
                        "has it (quarantined until the conflict is resolved).")
            return None
        self._upn_address = candidate
        return candidate

    def previous_moera(self, cloud_upn: str | None) -> ProxyAddress | None:
        in_initial = [p for p in self.previous if p.is_smtp and p.domain == self.initial]
        # A UPN in the initial domain (its suffix was not verified) is not the MOERA.
        not_upn = [p for p in in_initial if cloud_upn is None or p.address.lower() != cloud_upn.lower()]
        return (not_upn or in_initial or [None])[0]

    def moera(self, nickname: str | None, cloud_upn: str | None) -> ProxyAddress | None:
        """The MOERA: kept once the cloud has one, otherwise ``<mailNickname>@<initial domain>`` for a recipient."""
        if self._moera_done:
            return self._moera
        self._moera_done = True
        kept = self.previous_moera(cloud_upn)
        if kept is not None:
            self._moera = ProxyAddress("smtp", kept.address)
            if not self.gets_moera:
                self.say(f"The MOERA {kept.address} stays: the cloud keeps it once assigned.")
            return self._moera
        if not self.gets_moera:
            return None
        # Characters an SMTP local part cannot hold are left out of the alias (an alias is meant to
        # be a valid local part already; IdFix reports the ones that are not).
        local = _NOT_LOCAL.sub("", nickname or "").strip(".")
        local = re.sub(r"\.{2,}", ".", local)
        if not local:
            self.say("There is no alias to build a MOERA from, so the object has none.")
            return None
        candidate = ProxyAddress("smtp", f"{local}@{self.initial_domain}")
        if not self.in_use(candidate.address.lower()):
            self._moera = candidate
            self.say(f"The MOERA {candidate.address} (alias@initial domain) is added.")
            return candidate
        self.remove(str(candidate), RemovalReason.IN_USE_BY_ANOTHER_OBJECT,
                    f"The MOERA {candidate.address} is already in use by another object, so four digits are "
                    "appended to the alias (scenario 6 of the article).")
        seed = self.source.source_anchor or self.source.user_principal_name or local
        for attempt in range(100):
            digits = int(hashlib.sha256(f"{seed}:{attempt}".encode()).hexdigest(), 16) % 10_000
            numbered = ProxyAddress("smtp", f"{local}{digits:04d}@{self.initial_domain}")
            if not self.in_use(numbered.address.lower()):
                self._moera = numbered
                self.say(f"The MOERA is {numbered.address}.")
                return numbered
        self.say("No free MOERA was found, so the object has none.")
        return None

    # ---- the primary address

    def fallback_primary(self, cloud_upn: str | None, nickname: str | None
                         ) -> tuple[ProxyAddress | None, PrimarySource]:
        upn = self.upn_address(cloud_upn)
        if upn is not None:
            self.say(f"The UPN {upn.address} becomes the primary address.")
            return upn, PrimarySource.USER_PRINCIPAL_NAME
        moera = self.moera(nickname or _upn_prefix(cloud_upn), cloud_upn)
        if moera is not None:
            self.say(f"The MOERA {moera.address} becomes the primary address.")
            return moera, PrimarySource.MOERA
        if self.is_recipient:
            self.say("Nothing is left to make a primary address of.")
        return None, PrimarySource.NONE

    def previous_primary(self) -> ProxyAddress | None:
        for p in self.previous:
            if p.is_smtp and p.is_primary:
                # The object holds it already, so no conflict check; a domain that has since lost its
                # verification still drops it.
                if self.drops_unverified and p.domain not in self.verified:
                    self.remove(str(p), RemovalReason.UNVERIFIED_DOMAIN,
                                f"The cloud's primary address {p.address} is dropped: {p.domain} is not verified.")
                    return None
                return p
        return None

    def from_proxy_addresses(self, primaries: list[ProxyAddress], cloud_upn: str | None, nickname: str | None
                             ) -> tuple[ProxyAddress | None, PrimarySource]:
        s = self.source
        if s.mail:
            self.say("proxyAddresses is set on-premises, so mail is ignored for the primary address.")
        else:
            self.say("proxyAddresses is set on-premises, so it decides the addresses.")
        if primaries:
            self.say(f"Its SMTP: value {primaries[0].address} is the primary address.")
            return primaries[0], PrimarySource.ON_PREMISES_PROXY_ADDRESSES
        parsed = [p for p in map(parse_proxy_address, s.proxy_addresses) if p is not None]
        if any(p.is_primary for p in parsed):
            # The SMTP: value was dropped. mail stays out of it (proxyAddresses is still set); the
            # article's order for an object without a usable primary applies: UPN, then MOERA.
            self.say("Its SMTP: value was dropped, so the primary address comes from the next rule.")
            return self.fallback_primary(cloud_upn, nickname)
        kept = self.previous_primary()
        if kept is not None:
            if not any(p.is_smtp for p in parsed):
                self.say("proxyAddresses on-premises holds no SMTP address at all (for example only the X500 that "
                         "Exchange hybrid writeback wrote back), so the calculation from mail stops and the primary "
                         f"address stays {kept.address}. To change it, add an SMTP: value to proxyAddresses "
                         "on-premises.")
            else:
                self.say(f"proxyAddresses on-premises has no SMTP: (primary) value, so the primary address stays "
                         f"{kept.address}.")
            return ProxyAddress("SMTP", kept.address), PrimarySource.PREVIOUS_CLOUD_PRIMARY
        self.say("proxyAddresses on-premises has no SMTP: (primary) value and the cloud object has no primary "
                 "address yet.")
        return self.fallback_primary(cloud_upn, nickname)

    def from_mail(self, cloud_upn: str | None, nickname: str | None) -> tuple[ProxyAddress | None, PrimarySource]:
        s = self.source
        if s.mail:
            candidate = ProxyAddress("SMTP", s.mail)
            self.say("proxyAddresses is not set on-premises, so the primary address comes from mail.")
            if self.check_smtp(candidate, "mail", verified_only=True):
                return candidate, PrimarySource.MAIL
        if s.kind is ObjectKind.CONTACT and s.target_address:
            target = parse_proxy_address(s.target_address) or ProxyAddress("SMTP", s.target_address)
            if target.is_smtp:
                candidate = ProxyAddress("SMTP", target.address)
                if self.check_smtp(candidate, "targetAddress", verified_only=False):
                    self.say(f"The contact's targetAddress {candidate.address} is its primary address.")
                    return candidate, PrimarySource.TARGET_ADDRESS
        if not s.mail and self.is_recipient:
            self.say("Neither proxyAddresses nor mail is set on-premises.")
        if not self.is_recipient and self.previous_moera(cloud_upn) is None:
            # Scenario 1 before the licence: only mailNickname is filled in.
            self.say("Until it is a mail recipient, the object gets no addresses from Entra ID.")
            return None, PrimarySource.NONE
        return self.fallback_primary(cloud_upn, nickname)

    # ---- assembling

    def run(self) -> ProxyCalcResult:
        s = self.source
        self.describe()
        cloud_upn = self.cloud_upn()
        nickname = s.mail_nickname or self.previous_nickname
        primaries, secondaries, others = self.on_premises_addresses()

        if self.proxy_addresses_set:
            primary, primary_source = self.from_proxy_addresses(primaries, cloud_upn, nickname)
        else:
            primary, primary_source = self.from_mail(cloud_upn, nickname)

        if len(primaries) > 1:
            extra = ", ".join(p.address for p in primaries[1:])
            self.say(f"proxyAddresses holds more than one SMTP: value; only the first is primary, {extra} "
                     "become secondary.")
            secondaries = [*primaries[1:], *secondaries]

        # scenarios 2, 3 and 6: the on-premises alias, else the one the cloud has, else the primary's prefix.
        if s.mail_nickname:
            final_nickname: str | None = s.mail_nickname
        elif self.previous_nickname:
            final_nickname = self.previous_nickname
            if primary is not None and _local_part(primary.address) != self.previous_nickname:
                self.say(f"mailNickname is not set on-premises, so the cloud keeps {self.previous_nickname}.")
        elif primary is not None:
            final_nickname = _local_part(primary.address)
        else:
            final_nickname = _upn_prefix(cloud_upn)

        moera = self.moera(final_nickname, cloud_upn)
        upn = self.upn_address(cloud_upn)
        if upn is not None and (primary is None or upn.key != primary.key):
            why = ("a mail recipient always carries its UPN, and only changing the UPN on-premises removes it"
                   if self.is_recipient else "proxyAddresses is set on-premises, which brings the UPN back")
            self.say(f"The UPN {upn.address} is added as a secondary address: {why}.")
        before = next((p for p in self.previous if p.is_primary), None)
        if before is not None and (primary is None or before.address != primary.address):
            now = primary.address if primary else "nothing"
            self.say(f"The primary address changes from {before.address} to {now}.")

        addresses: list[str] = []
        keys: set[tuple[str, str]] = set()

        def add(address: ProxyAddress | None, prefix: str | None = None) -> None:
            if address is None or address.key in keys:
                return
            keys.add(address.key)
            addresses.append(f"{prefix or address.prefix}:{address.address}")

        add(primary, "SMTP")
        for address in secondaries:
            add(address, "smtp")
        add(upn, "smtp")
        add(moera, "smtp")
        for address in others:
            add(address)

        mail_ignored = bool(self.proxy_addresses_set and s.mail
                            and (primary is None or s.mail.lower() != primary.address.lower()))
        if mail_ignored:
            self.say(f"mail is {s.mail} on-premises but does not decide the primary address because proxyAddresses "
                     "is set there; change proxyAddresses on-premises to change the primary address.")

        return ProxyCalcResult(
            proxy_addresses=tuple(addresses),
            primary_smtp=primary.address if primary else None,
            mail=primary.address if primary else None,
            mail_nickname=final_nickname,
            user_principal_name=cloud_upn,
            moera=moera.address if moera else None,
            primary_source=primary_source,
            mail_ignored=mail_ignored,
            removed=tuple(self.removed),
            explanation=tuple(self.explanation),
        )


def _upn_prefix(upn: str | None) -> str | None:
    return (upn.rpartition("@")[0] or None) if upn else None


def _shorten(value: str, limit: int = 60) -> str:
    return value if len(value) <= limit else f"{value[:limit]}…"
