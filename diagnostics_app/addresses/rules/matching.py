"""Connect Health's "Data Mismatch" category, predicted before the export: the soft match of a new object.

Microsoft Entra Connect Health lists "Data Mismatch" beside Duplicate Attribute, Data Validation Failure and
Large Attribute: errors where the soft match fails to match objects ("Understanding errors during Microsoft
Entra synchronization", section "Data mismatch errors": ``InvalidSoftMatch`` and ``ObjectTypeMismatch``).
An AD object that has no cloud copy yet is matched, at its first export, to a cloud object no AD object owns:
a user by its UPN (as Entra ID computes it) or its primary SMTP address, a mail-enabled group or a contact by
its primary SMTP address ("When you have an existing tenant"). When that cloud object is of another type,
the export fails with ``ObjectTypeMismatch`` and nothing of the object reaches the cloud.

With duplicate attribute resiliency (on for every tenant since 2016) the ``InvalidSoftMatch`` of a new
object whose value another *synced* object holds no longer occurs: the value is quarantined instead, which
:mod:`.duplicates` reports as Duplicate Attribute. So the prediction here is ``ObjectTypeMismatch`` (an error)
and, for a candidate of the same type, the takeover itself (information: the cloud object becomes the AD
object's copy and AD's values overwrite it). The lab's sync engine (portal.lab.sync.projection.match) applies
the same rules, which is how the prediction is tested against a real export.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .types import Category, CloudObject, Entry, Finding, Rule, Severity

__all__ = ["soft_match"]


def _cloud_upn(upn: str, verified_domains: Iterable[str], initial_domain: str) -> str:
    # Entra ID replaces a suffix that is not a verified domain with the initial domain (ProxyCalc's cloud UPN).
    local, _, domain = upn.rpartition("@")
    verified = {d.lower() for d in verified_domains}
    return upn if not verified or domain.lower() in verified or not initial_domain else f"{local}@{initial_domain}"


def soft_match(entry: Entry, by_upn: Mapping[str, CloudObject], by_smtp: Mapping[str, CloudObject], *,
               verified_domains: Iterable[str] = (), initial_domain: str = "") -> list[Finding]:
    """The soft match of an AD object that has no cloud copy: a Data Mismatch error when the candidate is of
    another object type, information when it is taken over."""
    kind = entry.object_class
    if kind not in ("user", "group", "contact") or not (by_upn or by_smtp):
        return []  # (a tenant without unowned objects has nothing to soft-match to)
    view = entry.addresses
    primary = next((a.address for a in view.smtp if a.primary), None) or view.mail
    if kind == "group" and not primary:
        return []  # a group that is not mail-enabled is never soft-matched
    wanted: list[tuple[str, str, CloudObject | None]] = []
    upn = view.user_principal_name if kind == "user" else None
    if upn:
        cloud_upn = _cloud_upn(upn, verified_domains, initial_domain)
        wanted.append(("UserPrincipalName", cloud_upn, by_upn.get(cloud_upn.lower())))
    if primary:
        wanted.append(("ProxyAddresses", primary, by_smtp.get(primary.lower())))
    for prop, value, candidate in wanted:
        if candidate is None:
            continue
        what = f"the cloud-only {candidate.kind} {candidate.display_name or candidate.id} ({candidate.id})"
        attribute = "userPrincipalName" if prop == "UserPrincipalName" else "proxyAddresses"
        if candidate.kind != kind:
            return [Finding(
                dn=entry.dn, object_class=kind, attribute=attribute, value=value, rule=Rule.SOFT_MATCH,
                severity=Severity.ERROR, category=Category.DATA_MISMATCH, beyond_idfix=True,
                others=(f"cloud:{candidate.id}",),
                explanation=f"This {kind} is not in the cloud yet; at its first export Entra ID soft-matches it on "
                            f"{prop} {value} to {what}, which is of another object type. The export fails with "
                            "ObjectTypeMismatch (Connect Health: Data Mismatch) and nothing of the object reaches "
                            f"the cloud. Fix: change {value} on one of the two, or remove the cloud {candidate.kind} "
                            "if it is obsolete.")]
        return [Finding(
            dn=entry.dn, object_class=kind, attribute=attribute, value=value, rule=Rule.SOFT_MATCH,
            severity=Severity.INFO, beyond_idfix=True, others=(f"cloud:{candidate.id}",),
            explanation=f"This {kind} is not in the cloud yet; at its first export Entra ID soft-matches it on "
                        f"{prop} {value} to {what} and takes it over: from then on AD's values overwrite that "
                        "object. Make sure it is the same person or list (unless BlockSoftMatchEnabled is set).")]
    return []
