"""All the rules over a stream of objects: per object as it arrives, duplicates once the stream ends.

The scan job and ``manage.py check_values`` both run this; the only state kept across objects is the
duplicate index (one entry per distinct value) and the tenant, indexed once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from .addresses import may_show_upn_secondary, predict, proxy_address_cases, upn_and_cloud_primary
from .certificates import check_certificate_user_ids
from .duplicates import DuplicateIndex
from .idfix import check_entry, skip_reason
from .matching import soft_match
from .types import Category, CloudObject, Entry, Finding, Rule, Severity
from .values import Unreadable
from .values import entry as make_entry

__all__ = ["ScanConfig", "Scanner", "evaluate"]

# Attributes a mailbox whose Exchange attributes are cloud-managed no longer takes from AD.
EXCHANGE_ATTRIBUTES = frozenset({"proxyaddresses", "mail", "mailnickname", "targetaddress"})
LARGE_LIMITS = {"userCertificate": 15, "userSMIMECertificate": 15}
_EXPORT_CATEGORIES = {
    "attributevaluemustbeunique": Category.DUPLICATE_ATTRIBUTE, "objecttypemismatch": Category.DATA_MISMATCH,
    "invalidsoftmatch": Category.DATA_MISMATCH, "invalidhardmatch": Category.DATA_MISMATCH,
    "datavalidationfailed": Category.DATA_VALIDATION_FAILURE, "largeobject": Category.LARGE_ATTRIBUTE,
    "exportedattributeissuestolarge": Category.LARGE_ATTRIBUTE,
}


@dataclass(frozen=True, kw_only=True)
class ExportError:
    """One export error the sync server reports today (Get-ADSyncCSObject / the run profile's errors)."""

    dn: str
    error_type: str
    attribute: str = ""
    message: str = ""


@dataclass(frozen=True, kw_only=True)
class ScanConfig:
    verified_domains: tuple[str, ...] = ()
    initial_domain: str = ""
    certificate_attribute: str | None = None
    extra_tlds: tuple[str, ...] = ()
    export_errors: tuple[ExportError, ...] = field(default_factory=tuple)


class Scanner:
    def __init__(self, config: ScanConfig, tenant: Iterable[CloudObject] = ()) -> None:
        self.config = config
        self.tenant: list[CloudObject] = list(tenant)
        self.index = DuplicateIndex(certificate_attribute=config.certificate_attribute, tenant=self.tenant)
        # A cloud-managed object is no longer shown as synced, but it is still the AD object's own cloud copy.
        mine = [o for o in self.tenant if o.synced or o.cloud_managed]
        self.by_anchor = {o.immutable_id: o for o in mine if o.immutable_id}
        self.by_dn = {o.on_premises_dn.lower(): o for o in mine if o.on_premises_dn}
        # Soft-match candidates: cloud objects no AD object owns, by primary SMTP address and by UPN.
        self.soft_by_smtp: dict[str, CloudObject] = {}
        self.soft_by_upn: dict[str, CloudObject] = {}
        for obj in self.tenant:
            if obj.synced or obj.immutable_id or obj.cloud_managed or obj.unified:
                continue
            primary = next((a[5:] for a in obj.proxy_addresses if a.startswith("SMTP:")), None) or obj.mail
            if primary:
                self.soft_by_smtp.setdefault(primary.lower(), obj)
            if obj.user_principal_name:
                self.soft_by_upn.setdefault(obj.user_principal_name.lower(), obj)
        # Tenant SMTP addresses -> the object holding them (ProxyCalc's "in use by another object").
        self.cloud_addresses: dict[str, str] = {}
        for obj in self.tenant:
            for value in obj.proxy_addresses:
                if value[:5].lower() == "smtp:":
                    self.cloud_addresses.setdefault(value[5:].lower(), obj.id)
        self.errors_by_dn: dict[str, list[ExportError]] = {}
        for error in config.export_errors:
            self.errors_by_dn.setdefault(error.dn.lower(), []).append(error)
        self._verified = frozenset(d.lower() for d in config.verified_domains) | {config.initial_domain.lower()}
        self.skipped: list[tuple[str, str]] = []
        self.seen = 0

    def twin(self, entry: Entry) -> CloudObject | None:
        return (self.by_anchor.get(entry.anchor) if entry.anchor else None) or self.by_dn.get(entry.dn.lower())

    def feed(self, entry: Entry) -> list[Finding]:
        """The findings of one object that need nothing but the object and the tenant."""
        self.seen += 1
        reason = skip_reason(entry)
        if reason is not None:
            self.skipped.append((entry.dn, reason))
            return []
        self.index.add_entry(entry)
        cfg = self.config
        found = check_entry(entry, extra_tlds=cfg.extra_tlds,
                            verified_domains=cfg.verified_domains or None)
        found += proxy_address_cases(entry)
        if cfg.certificate_attribute:
            found += check_certificate_user_ids(entry, cfg.certificate_attribute)
        found += _large(entry)
        cloud = self.twin(entry)
        if cloud is None:
            found += soft_match(entry, self.soft_by_upn, self.soft_by_smtp, verified_domains=cfg.verified_domains,
                                initial_domain=cfg.initial_domain)
        errors = self.errors_by_dn.get(entry.dn.lower(), []) if self.errors_by_dn else []
        found += [_export_error(entry, e) for e in errors]
        # Without a cloud copy ProxyCalc can only raise "UPN as a secondary address": skip it (the costliest
        # rule) for the objects that cannot have that finding, most of them.
        if cfg.initial_domain and not (cloud and cloud.cloud_managed) and (
                cloud is not None or may_show_upn_secondary(entry, self._verified, cfg.initial_domain)):
            own = cloud.id if cloud else None
            calc = predict(entry, cloud, verified_domains=cfg.verified_domains, initial_domain=cfg.initial_domain,
                           in_use_by_others=lambda a: self.cloud_addresses.get(a, own) != own)
            if calc is not None:
                found += upn_and_cloud_primary(entry, cloud, calc,
                                               export_errors=[f"{e.error_type}: {e.message}" for e in errors])
        if cloud is not None and (cloud.cloud_managed or cloud.exchange_cloud_managed):
            found = _cloud_managed(entry, cloud, found)
        return found

    def finish(self) -> Iterator[Finding]:
        """The tenant's own contacts, then duplicates across the whole scope and against the tenant (after the
        last :meth:`feed`)."""
        for obj in self.tenant:
            if obj.kind == "contact" and not obj.synced and not obj.cloud_managed and obj.id:
                yield from self._tenant_contact(obj)
        for obj in self.tenant:
            self.index.add_cloud(obj)
        for finding in self.index.findings():
            if finding.dn.startswith("cloud:") and finding.fix is not None:
                # A tenant contact's duplicate is removed in Exchange Online.
                finding = dataclasses.replace(finding, fix=dataclasses.replace(
                    finding.fix, target="exchange_online", identity=finding.dn[6:]))
            yield finding

    def _tenant_contact(self, obj: CloudObject) -> Iterator[Finding]:
        """A mail contact created in Exchange Online: no AD object brings its values, so IdFix's checks and the
        proxyAddresses cases run on what Exchange holds, and their fixes are made there (Set-MailContact)."""
        values = {"displayName": obj.display_name, "mail": obj.mail, "mailNickname": obj.mail_nickname,
                  "proxyAddresses": list(obj.proxy_addresses), "targetAddress": obj.target_address}
        item = make_entry(dn=f"cloud:{obj.id}", object_class=["contact"],
                     attributes={k: v for k, v in values.items() if v})
        found = check_entry(item, extra_tlds=self.config.extra_tlds,
                            verified_domains=None) + proxy_address_cases(item)
        for f in found:
            if f.fix is not None:
                f = dataclasses.replace(f, fix=dataclasses.replace(f.fix, target="exchange_online", identity=obj.id),
                                        explanation=f.explanation + " The contact was created in Exchange Online: "
                                                                    "the fix is made there (Set-MailContact).")
            yield dataclasses.replace(f, beyond_idfix=True)


def _large(entry: Entry) -> list[Finding]:
    found = []
    for attribute, limit in LARGE_LIMITS.items():
        count = len(entry.values(attribute))
        if count > limit:
            found.append(Finding(
                dn=entry.dn, object_class=entry.object_class, attribute=attribute, value=f"{count} values",
                rule=Rule.LARGE_ATTRIBUTE, severity=Severity.ERROR, category=Category.LARGE_ATTRIBUTE,
                beyond_idfix=True,
                explanation=f"{attribute} has {count} values; Entra Connect exports at most {limit} (LargeObject). "
                            "Remove expired certificates."))
    photo = entry.values("thumbnailPhoto")
    if photo and not isinstance(photo[0], Unreadable) and len(photo[0]) > 100 * 1024:
        found.append(Finding(
            dn=entry.dn, object_class=entry.object_class, attribute="thumbnailPhoto",
            value=f"{len(photo[0])} bytes", rule=Rule.LARGE_ATTRIBUTE, severity=Severity.ERROR,
            category=Category.LARGE_ATTRIBUTE, beyond_idfix=True,
            explanation="thumbnailPhoto is over 100 KB; Entra Connect refuses it (LargeObject)."))
    return found


def _export_error(entry: Entry, error: ExportError) -> Finding:
    return Finding(
        dn=entry.dn, object_class=entry.object_class, attribute=error.attribute or "(object)",
        value="", rule=Rule.EXPORT_ERROR, severity=Severity.ERROR, beyond_idfix=True,
        category=_EXPORT_CATEGORIES.get(error.error_type.lower(), Category.NONE),
        explanation=f"The sync server reports this export error today: {error.error_type}"
                    + (f" ({error.message})" if error.message else "") + ".")


def _cloud_managed(entry: Entry, cloud: CloudObject, found: list[Finding]) -> list[Finding]:
    """AD values no longer reach the object: its fixes target Exchange Online, and the page says why."""
    what = ("its source of authority is the cloud" if cloud.cloud_managed
            else "its Exchange attributes are managed in Exchange Online (IsExchangeCloudManaged)")
    moved: list[Finding] = []
    for f in found:
        if f.fix is not None and (cloud.cloud_managed or f.fix.attribute.lower() in EXCHANGE_ATTRIBUTES):
            f = dataclasses.replace(
                f, fix=dataclasses.replace(f.fix, target="exchange_online", identity=cloud.id),
                explanation=f.explanation + f" The object is cloud-managed ({what}): the fix is made in Exchange "
                                            "Online, not in AD.")
        moved.append(f)
    moved.append(Finding(
        dn=entry.dn, object_class=entry.object_class, attribute="(object)", value="", rule=Rule.CLOUD_MANAGED,
        severity=Severity.INFO, beyond_idfix=True,
        explanation=f"{entry.dn} is cloud-managed: {what}. Changes to these values in AD no longer reach the cloud; "
                    "a fix targets Exchange Online."))
    return moved


def evaluate(entries: Iterable[Entry], *, config: ScanConfig, tenant: Iterable[CloudObject] = ()
             ) -> tuple[list[Finding], list[tuple[str, str]]]:
    """Every finding and every skipped object (DN, why) of a finite set of objects."""
    scanner = Scanner(config, tenant)
    found: list[Finding] = []
    for entry in entries:
        found += scanner.feed(entry)
    found += scanner.finish()
    return found, scanner.skipped


def cloud_object(data: Mapping[str, object]) -> CloudObject:
    """A tenant object from Graph's JSON shape (users, groups, orgContacts)."""
    sync_behavior = data.get("onPremisesSyncBehavior") or {}
    auth = data.get("authorizationInfo") or {}

    def strings(value: object) -> tuple[str, ...]:
        return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list | tuple) else ()

    def text(value: object) -> str | None:
        return value if isinstance(value, str) else None

    kind = str(data.get("@odata.type", "user")).rpartition(".")[2].replace("orgContact", "contact") or "user"
    return CloudObject(
        id=str(data.get("id", "")), kind=kind, display_name=text(data.get("displayName")) or "",
        user_principal_name=text(data.get("userPrincipalName")), mail=text(data.get("mail")),
        mail_nickname=text(data.get("mailNickname")), proxy_addresses=strings(data.get("proxyAddresses")),
        certificate_user_ids=strings(auth.get("certificateUserIds") if isinstance(auth, dict) else None),
        synced=bool(data.get("onPremisesSyncEnabled")), immutable_id=text(data.get("onPremisesImmutableId")),
        on_premises_dn=text(data.get("onPremisesDistinguishedName")),
        cloud_managed=bool(isinstance(sync_behavior, dict) and sync_behavior.get("isCloudManaged")),
        unified="Unified" in strings(data.get("groupTypes")), target_address=text(data.get("targetAddress")),
        exchange_cloud_managed=bool(data.get("isExchangeCloudManaged")),
        recipient=text(data.get("recipient")))
