"""Why an address on-premises will not be the address in the cloud: the proxyAddresses cases of the field
notes, and the comparison of the cloud's primary address with what ProxyCalc computes from today's AD
values (:mod:`portal.addressing.proxycalc`, the same code the lab syncs with). None of this is in IdFix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from portal.addressing import proxycalc

from .types import Action, CloudObject, Entry, Finding, Fix, Rule, Severity
from .values import Unreadable, printable

__all__ = ["may_show_upn_secondary", "predict", "proxy_address_cases", "upn_and_cloud_primary"]

# msExchRecipientTypeDetails of a remote (Exchange Online) mailbox: regular, room, equipment, shared.
_REMOTE_MAILBOX_TYPES = {0x80000000, 0x200000000, 0x400000000, 0x800000000}
_MAILBOX_TYPES = {0x1, 0x4, 0x10, 0x20}


def _readable(entry: Entry, name: str) -> tuple[str, ...]:
    return tuple(v for v in entry.values(name) if not isinstance(v, Unreadable))


def _finding(entry: Entry, rule: Rule, severity: Severity, explanation: str, *, attribute: str = "proxyAddresses",
             value: str = "", proposed: str | None = None, fix: Fix | None = None) -> Finding:
    return Finding(dn=entry.dn, object_class=entry.object_class, attribute=attribute, value=printable(value, 1024),
                   rule=rule, severity=severity, explanation=explanation, beyond_idfix=True, fix=fix,
                   proposed_value=proposed, action=Action.EDIT if fix else Action.NONE)


def proxy_address_cases(entry: Entry) -> list[Finding]:
    """proxyAddresses set on-premises decides the cloud addresses; ``mail`` then plays no part."""
    view = entry.addresses
    addresses = view.proxy_addresses
    if not addresses:
        return []
    mail = view.mail
    found: list[Finding] = []
    first_primary = [a for a in view.smtp if a.primary]
    if len(first_primary) == 1 and (not mail or mail.lower() == first_primary[0].lower):
        return found  # one primary, equal to mail: the usual case, where none of the cases below applies
    primaries = [a.value for a in first_primary]
    smtp = [a.value for a in view.smtp]
    shown = ", ".join(addresses)
    if not smtp:
        if mail:
            found.append(_finding(
                entry, Rule.X500_ONLY, Severity.WARNING, value=shown, proposed=f"SMTP:{mail}",
                fix=Fix(attribute="proxyAddresses", add=(f"SMTP:{mail}",)),
                explanation=(
                    "proxyAddresses holds no SMTP address (typically only the X500 that Exchange hybrid writeback "
                    "wrote back after a licence was assigned). Because proxyAddresses is not empty, it alone "
                    f"decides the cloud addresses: a change of mail (now {mail}) will not reach Exchange Online, "
                    f"which keeps its current primary address. Fix: add SMTP:{mail} to proxyAddresses.")))
        else:
            found.append(_finding(
                entry, Rule.NO_PRIMARY, Severity.INFO, value=shown,
                explanation="proxyAddresses holds no SMTP address and mail is empty: the cloud keeps the primary "
                            "address it has, or falls back to the UPN or the MOERA."))
        return found
    if not primaries:
        promote = next((a for a in smtp if mail and a[5:].lower() == mail.lower()), smtp[0])
        found.append(_finding(
            entry, Rule.NO_PRIMARY, Severity.WARNING, value=shown, proposed=f"SMTP:{promote[5:]}",
            fix=Fix(attribute="proxyAddresses", remove=(promote,), add=(f"SMTP:{promote[5:]}",)),
            explanation="proxyAddresses has SMTP addresses but none is primary (upper-case SMTP:): the cloud keeps "
                        f"the primary address it had. Proposed: make {promote[5:]} the primary address."))
        return found
    if len(primaries) > 1:
        extra = primaries[1:]
        found.append(_finding(
            entry, Rule.SEVERAL_PRIMARIES, Severity.WARNING, value=shown,
            fix=Fix(attribute="proxyAddresses", remove=tuple(extra), add=tuple(f"smtp:{a[5:]}" for a in extra)),
            explanation=f"proxyAddresses has {len(primaries)} primary (SMTP:) addresses; Exchange refuses that and "
                        f"Entra ID takes the first, {primaries[0][5:]}. Proposed: make the others secondary."))
    primary = primaries[0][5:]
    if mail and mail.lower() != primary.lower():
        old_secondary = [a for a in smtp if a[5:].lower() == mail.lower()]
        found.append(_finding(
            entry, Rule.MAIL_NOT_PRIMARY, Severity.WARNING, attribute="mail", value=mail, proposed=f"SMTP:{mail}",
            fix=Fix(attribute="proxyAddresses", remove=(primaries[0], *old_secondary),
                    add=(f"SMTP:{mail}", f"smtp:{primary}")),
            explanation=(f"mail is {mail} but the primary address in proxyAddresses is {primary}. proxyAddresses "
                         "decides the cloud addresses, so the cloud's primary address stays "
                         f"{primary} and a change of mail never reaches Exchange Online. Fix: make {mail} the "
                         f"primary address in proxyAddresses (or set mail back to {primary}).")))
    return found


def recipient_of(entry: Entry, cloud: CloudObject | None) -> proxycalc.Recipient:
    """What the object is in Exchange Online: the tenant says so when it has the object; else AD's Exchange
    attributes tell."""
    R = proxycalc.Recipient
    if cloud is not None and cloud.recipient:
        return R.MAILBOX if cloud.recipient == "mailbox" and entry.object_class == "user" else (
            R.MAIL_ENABLED if cloud.recipient in ("mailbox", "mail_enabled") else R.NOT_MAIL_ENABLED)
    try:
        details = int(next(iter(_readable(entry, "msExchRecipientTypeDetails")), "0"))
    except ValueError:
        details = 0
    if entry.object_class == "user" and (details in _REMOTE_MAILBOX_TYPES or details in _MAILBOX_TYPES):
        return R.MAILBOX
    if entry.object_class == "group":
        return R.MAIL_ENABLED if _readable(entry, "proxyAddresses") or _readable(entry, "mail") else \
            R.NOT_MAIL_ENABLED
    if entry.object_class == "contact":
        return R.MAIL_ENABLED if _readable(entry, "targetAddress") else R.NOT_MAIL_ENABLED
    if details:
        return R.MAIL_ENABLED
    return R.NOT_MAIL_ENABLED


def predict(entry: Entry, cloud: CloudObject | None, *, verified_domains: Iterable[str], initial_domain: str,
            in_use_by_others: Callable[[str], bool]) -> proxycalc.ProxyCalcResult | None:
    """What Entra ID computes for this object from today's AD values, starting from its cloud copy."""
    if entry.object_class not in ("user", "group", "contact"):
        return None
    view = entry.addresses
    source = proxycalc.ProxyCalcInput(
        kind=proxycalc.ObjectKind(entry.object_class), recipient=recipient_of(entry, cloud),
        user_principal_name=view.user_principal_name if entry.object_class == "user" else None,
        mail=view.mail, mail_nickname=next(iter(_readable(entry, "mailNickname")), None),
        proxy_addresses=view.proxy_addresses,
        target_address=next(iter(_readable(entry, "targetAddress")), None) if entry.object_class == "contact"
        else None,
        source_anchor=entry.anchor)
    previous = proxycalc.CloudAddresses(mail=cloud.mail, mail_nickname=cloud.mail_nickname,
                                        proxy_addresses=cloud.proxy_addresses) if cloud is not None else None
    return proxycalc.calculate(source=source, verified_domains=verified_domains, initial_domain=initial_domain,
                               in_use_by_others=in_use_by_others, previous=previous)


def may_show_upn_secondary(entry: Entry, verified: frozenset[str], initial_domain: str) -> bool:
    """False when :func:`upn_and_cloud_primary` cannot raise UPN_SECONDARY for an object without a cloud copy,
    whatever ProxyCalc computes: no UPN in the cloud (not a user, or none readable); the cloud UPN already among
    the on-premises SMTP addresses; no proxyAddresses and no mail other than the cloud UPN (the primary is then the
    UPN, or ProxyCalc refused the UPN as an address too, or it is the MOERA and the UPN is no address); or a mail
    recipient none of whose on-premises SMTP addresses (proxyAddresses when set, else mail) is in a verified
    domain: ProxyCalc drops them all, so the primary is again the UPN, the MOERA or none. ``verified``: the
    lower-cased verified domains and the initial domain (ProxyCalc's own set)."""
    if entry.object_class != "user":
        return False
    view = entry.addresses
    upn = view.user_principal_name
    if not upn:
        return False
    local, _, domain = upn.rpartition("@")
    cloud_upn = (upn if domain.lower() in verified else f"{local}@{initial_domain}").lower()
    if not view.proxy_addresses:
        if not view.mail or view.mail.lower() == cloud_upn:
            return False
        candidates: Iterable[str] = (view.mail.lower(),)
    else:
        candidates = [a.lower for a in view.smtp]
        if cloud_upn in candidates:
            return False
    # (Most objects stop above; recipient_of reads msExchRecipientTypeDetails.)
    return any(c.rpartition("@")[2] in verified for c in candidates) or \
        recipient_of(entry, None) is proxycalc.Recipient.NOT_MAIL_ENABLED


def upn_and_cloud_primary(entry: Entry, cloud: CloudObject | None, calc: proxycalc.ProxyCalcResult,
                          *, export_errors: Iterable[str] = ()) -> list[Finding]:
    found: list[Finding] = []
    upn = calc.user_principal_name
    on_prem = {a.lower for a in entry.addresses.smtp}
    if upn and calc.primary_smtp and upn.lower() != calc.primary_smtp.lower() and upn.lower() not in on_prem and \
            any(a.lower() == f"smtp:{upn.lower()}" for a in calc.proxy_addresses):
        found.append(_finding(
            entry, Rule.UPN_SECONDARY, Severity.INFO, attribute="userPrincipalName", value=upn,
            explanation=f"The cloud lists the UPN {upn} as a secondary address although AD does not. This is by "
                        "design: Entra ID adds the UPN of every mail recipient to its addresses (ProxyCalc); "
                        "only a change of the UPN removes it. Nothing to fix."))
    if cloud is None:
        return found
    current = next((a[5:] for a in cloud.proxy_addresses if a.startswith("SMTP:")), cloud.mail)
    predicted = calc.primary_smtp
    if (current or "").lower() == (predicted or "").lower():
        return found
    steps = " ".join(calc.explanation)  # only for an object whose cloud primary differs: most have none
    errors = list(export_errors)
    if errors:
        found.append(_finding(
            entry, Rule.CLOUD_PRIMARY_DIFFERS, Severity.ERROR, value=current or "",
            explanation=f"The cloud's primary address is {current or 'empty'}; from today's AD values Entra ID "
                        f"computes {predicted or 'none'} ({calc.primary_source.value}), but the export is blocked: "
                        f"{'; '.join(errors)}. ProxyCalc: {steps}"))
    else:
        found.append(_finding(
            entry, Rule.CLOUD_PRIMARY_DIFFERS, Severity.INFO, value=current or "",
            explanation=f"Sync pending: the cloud's primary address is {current or 'empty'} and the next sync cycle "
                        f"makes it {predicted or 'none'} ({calc.primary_source.value}). ProxyCalc: {steps}"))
    return found
