"""Projection, join and soft match: each object's plan (ProxyCalc for its addresses) and its export to the cloud."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from portal.addressing import proxycalc
from portal.addressing.validation import MAX_CERTIFICATE_USER_IDS, certificate_user_id_problem, upn_problem
from portal.connectors.ad import DirectoryObject
from portal.lab.cloud.store.common import ConflictError, NotFoundError, iso
from portal.lab.seed import CERTIFICATE_USER_IDS_ATTRIBUTE

from .constants import (
    _RECIPIENT_TYPE,
    CN_MAX,
    EXCHANGE_CLOUD_MANAGED_USER,
    EXTENSION_ATTRIBUTES,
    GROUP_TYPE_SECURITY,
    GROUP_TYPE_UNIVERSAL,
    MAILBOX_TYPES,
    MANAGED_PROPERTIES,
    ONPREM_MAIL_USER_BITS,
    REMOTE_MAILBOX_TYPES,
    RTD_ROOM_LIST,
    UAC_ACCOUNTDISABLE,
    Kind,
)
from .export_errors import _duplicate_message, _invalid_attribute
from .model import _Entry, _Plan
from .scoping import _Attrs, _mail_enabled


class _Projection:
    """Planning and exporting one object (a mixin of the cycle)."""

    # ---- planning

    def plan(self, obj: DirectoryObject, entry: _Entry) -> _Plan:
        a = _Attrs(obj)
        kind: Kind = obj.kind  # type: ignore[assignment]
        anchor = entry.anchor or ""
        plan = _Plan(attrs=a, kind=kind, anchor=anchor, dn=obj.dn, guid=entry.guid, oid=self.joined.get(anchor),
                     props={})
        nickname = a.text("mailNickname")
        exchange = nickname is not None  # Exchange attributes only flow with a mailNickname
        mail_enabled_group = kind == "group" and exchange and _mail_enabled(a)
        on_prem_upn = a.text("userPrincipalName")
        if kind == "user" and not on_prem_upn:
            on_prem_upn = f"{a.text('sAMAccountName') or ''}@{self.domain_fqdn}"  # the default rule's fallback
        if plan.oid is None:
            self.match(plan, cloud_upn=self.cloud_upn(on_prem_upn) if kind == "user" else None,
                       mail_enabled=kind != "group" or mail_enabled_group)
        oid = plan.oid
        doc = self.docs.get(oid) if oid else None
        recipient_kind, plan.recipient_type = self.recipient_type(a, kind, exchange, doc)
        existing = self.recipients.get(oid) if oid else None
        legacy = existing.get("LegacyExchangeDN") if existing else None
        if legacy is None and plan.recipient_type:
            legacy = self.adoptable_legacy_dn(a, anchor)
        plan.legacy_dn = legacy
        if kind != "group" or mail_enabled_group:
            source = proxycalc.ProxyCalcInput(
                kind=proxycalc.ObjectKind(kind), recipient=recipient_kind,
                user_principal_name=on_prem_upn if kind == "user" else None,
                mail=a.text("mail"), mail_nickname=nickname,
                proxy_addresses=tuple(p for p in a.all("proxyAddresses") if isinstance(p, str)),
                target_address=a.text("targetAddress") if kind == "contact" else None,
                cloud_legacy_exchange_dn=f"X500:{legacy}" if legacy else None, source_anchor=anchor,
            )
            previous = proxycalc.CloudAddresses(
                mail=doc.get("mail"), mail_nickname=doc.get("mailNickname"),
                proxy_addresses=tuple(doc.get("proxyAddresses") or ())) if doc else None
            plan.calc = proxycalc.calculate(
                source=source, verified_domains=self.verified, initial_domain=self.initial_domain,
                in_use_by_others=lambda address: self.addresses.get(f"smtp:{address}") not in (None, oid),
                previous=previous,
            )
            offered = {p.lower() for p in source.proxy_addresses}
            if source.mail:
                offered.add(f"smtp:{source.mail}".lower())
            for removed in plan.calc.removed:
                if removed.reason is proxycalc.RemovalReason.IN_USE_BY_ANOTHER_OBJECT and \
                        removed.address.lower() in offered:
                    plan.quarantined.append(("ProxyAddresses", removed.address))
        display = a.text("displayName") or a.text("cn") or ""
        common = {"displayName": display, "onPremisesSyncEnabled": True}
        calc = plan.calc
        ext = {n: a.text(n) for n in EXTENSION_ATTRIBUTES}
        if kind == "user":
            assert calc is not None
            upn = calc.user_principal_name or on_prem_upn
            problem = upn_problem(upn or "")
            if problem:
                plan.error = ("DataValidationFailed", "userPrincipalName", _invalid_attribute("UserPrincipalName"))
            certificate_ids = [v for v in a.all(CERTIFICATE_USER_IDS_ATTRIBUTE) if isinstance(v, str)]
            bad = [v for v in certificate_ids if certificate_user_id_problem(v)]
            if bad or len(certificate_ids) > MAX_CERTIFICATE_USER_IDS:
                # The sync server names no attribute for this one (the field notes: "[None]").
                plan.error = ("DataValidationFailed", "certificateUserIds", _invalid_attribute("None"))
            uac = a.number("userAccountControl") or 0
            plan.props = {
                **common, "givenName": a.text("givenName"), "surname": a.text("sn"), "userPrincipalName": upn,
                "mail": calc.mail, "mailNickname": calc.mail_nickname, "proxyAddresses": list(calc.proxy_addresses),
                "onPremisesDistinguishedName": obj.dn, "onPremisesSamAccountName": a.text("sAMAccountName"),
                "onPremisesSecurityIdentifier": obj.sid, "onPremisesImmutableId": anchor,
                "onPremisesUserPrincipalName": a.text("userPrincipalName"), "onPremisesDomainName": self.domain_fqdn,
                "department": a.text("department"), "companyName": a.text("company"), "jobTitle": a.text("title"),
                "officeLocation": a.text("physicalDeliveryOfficeName"), "accountEnabled": not uac & UAC_ACCOUNTDISABLE,
                "onPremisesExtensionAttributes": ext if any(ext.values()) else None,
                "authorizationInfo": {"certificateUserIds": certificate_ids} if certificate_ids else None,
                "showInAddressList": False if a.flag("msExchHideFromAddressLists") else None,
            }
        elif kind == "contact":
            assert calc is not None
            plan.props = {
                **common, "givenName": a.text("givenName"), "surname": a.text("sn"), "mail": calc.mail,
                "mailNickname": calc.mail_nickname, "proxyAddresses": list(calc.proxy_addresses),
                "companyName": a.text("company"), "department": a.text("department"), "jobTitle": a.text("title"),
                "onPremisesDistinguishedName": obj.dn,
            }
        else:
            group_type = a.number("groupType") or 0
            plan.props = {
                **common, "description": a.text("description"),
                "mail": calc.mail if calc else None, "mailEnabled": bool(mail_enabled_group),
                "mailNickname": (calc.mail_nickname if calc else None) or nickname or a.text("sAMAccountName"),
                "securityEnabled": bool(group_type & GROUP_TYPE_SECURITY), "groupTypes": [],
                "proxyAddresses": list(calc.proxy_addresses) if calc else [],
                "onPremisesSamAccountName": a.text("sAMAccountName"), "onPremisesSecurityIdentifier": obj.sid,
                "onPremisesDomainName": self.domain_fqdn, "onPremisesDistinguishedName": obj.dn,
            }
        if plan.recipient_type and calc is not None and calc.primary_smtp:
            plan.recipient_props = self.recipient_properties(plan, a, upn=plan.props.get("userPrincipalName"))
        elif plan.recipient_type:
            plan.recipient_type = None  # Exchange Online cannot hold a recipient without an address
        return plan

    def recipient_type(self, a: _Attrs, kind: str, exchange: bool, doc: Mapping[str, Any] | None
                       ) -> tuple[proxycalc.Recipient, str | None]:
        """What the object is in Exchange Online: ProxyCalc's category and RecipientTypeDetails."""
        R = proxycalc.Recipient
        if kind == "contact":
            return R.MAIL_ENABLED, "MailContact"
        if kind == "group":
            if not (exchange and _mail_enabled(a)):
                return R.NOT_MAIL_ENABLED, None
            group_type = a.number("groupType") or 0
            if (a.number("msExchRecipientTypeDetails") or 0) == RTD_ROOM_LIST:
                return R.MAIL_ENABLED, "RoomList"
            if not group_type & GROUP_TYPE_UNIVERSAL:
                return R.MAIL_ENABLED, "MailNonUniversalGroup"
            if group_type & GROUP_TYPE_SECURITY:
                return R.MAIL_ENABLED, "MailUniversalSecurityGroup"
            return R.MAIL_ENABLED, "MailUniversalDistributionGroup"
        rtd = a.number("msExchRecipientTypeDetails") if exchange else None
        if rtd in REMOTE_MAILBOX_TYPES:
            return R.MAILBOX, REMOTE_MAILBOX_TYPES[rtd]
        if rtd is not None and rtd & ONPREM_MAIL_USER_BITS:
            return R.MAIL_ENABLED, "MailUser"
        if doc is not None and doc.get("assignedLicenses"):
            return R.MAILBOX, "UserMailbox"
        return R.NOT_MAIL_ENABLED, None

    def adoptable_legacy_dn(self, a: _Attrs, anchor: str) -> str | None:
        """The LegacyExchangeDN a new recipient takes: the one it had before it was deleted (recycle bin), or
        the Exchange Online X500 already on-premises (written back in an earlier life of the lab)."""
        kept = self.state.recycle_bin.get(anchor, {}).get("legacy_dn")
        if kept:
            return kept
        for value in a.all("proxyAddresses"):
            if isinstance(value, str) and value.lower().startswith("x500:/o=exchangelabs/"):
                return value[5:]
        return None

    def recipient_properties(self, plan: _Plan, a: _Attrs, *, upn: str | None) -> dict[str, Any]:
        calc = plan.calc
        assert calc is not None and plan.recipient_type is not None
        addresses = list(calc.proxy_addresses)
        on_prem_legacy = a.text("legacyExchangeDN")
        if on_prem_legacy and not any(x.lower() == f"x500:{on_prem_legacy}".lower() for x in addresses):
            # Exchange Online keeps the on-premises legacyExchangeDN as an X500 address (replies to old mail).
            addresses.append(f"X500:{on_prem_legacy}")
        rtype = plan.recipient_type
        props: dict[str, Any] = {
            "Name": (a.text("cn") or plan.props.get("displayName") or calc.mail_nickname or "")[:CN_MAX],
            "DisplayName": plan.props.get("displayName") or a.text("cn"),
            "Alias": calc.mail_nickname,
            "PrimarySmtpAddress": calc.primary_smtp,
            "EmailAddresses": _normalise_addresses(calc.primary_smtp or "", addresses),
            "RecipientTypeDetails": rtype,
            "RecipientType": _RECIPIENT_TYPE[rtype],
            "IsDirSynced": True,
            "HiddenFromAddressListsEnabled": bool(a.flag("msExchHideFromAddressLists")),
            "RequireSenderAuthenticationEnabled": bool(a.flag("msExchRequireAuthToSendTo")),
            "ModerationEnabled": bool(a.flag("msExchEnableModeration")),
            **{f"CustomAttribute{n}": a.text(f"extensionAttribute{n}") or "" for n in range(1, 16)},
        }
        if rtype in ("MailUser", "MailContact"):
            target = a.text("targetAddress")
            props["ExternalEmailAddress"] = target if target else f"SMTP:{calc.primary_smtp}"
        if rtype in MAILBOX_TYPES:
            props["UserPrincipalName"] = upn
        if plan.kind == "group":
            props["ReportToOriginatorEnabled"] = a.flag("reportToOriginator") is not False
        return props

    # ---- exporting one object

    def export_object(self, plan: _Plan) -> None:
        if plan.error is not None:
            return  # the whole export of this object fails: nothing of it reaches the cloud
        if plan.quarantined and not self.options.duplicate_attribute_resiliency:
            values = "".join(f"{prop} {value};" for prop, value in plan.quarantined)
            code = "AttributeValueMustBeUnique" if plan.oid else "InvalidSoftMatch"
            plan.error = (code, plan.quarantined[0][0], _duplicate_message(values))
            return
        if plan.oid is None:
            self.create(plan, object_id=plan.restore_id)
        else:
            self.update(plan, plan.oid)

    def provisioning_errors(self, plan: _Plan, doc: Mapping[str, Any] | None) -> list[dict[str, Any]] | None:
        if not plan.quarantined:
            return None
        before = {(e.get("propertyCausingError"), e.get("value")): e for e in (doc or {}).get(
            "onPremisesProvisioningErrors") or []}
        errors = []
        for prop, value in plan.quarantined:
            kept = before.get((prop, value))
            errors.append({"category": "PropertyConflict", "propertyCausingError": prop, "value": value,
                           "occurredDateTime": kept["occurredDateTime"] if kept else iso(self.now)})
        return errors

    def create(self, plan: _Plan, *, object_id: str | None = None) -> None:
        props = {k: v for k, v in plan.props.items() if v is not None}
        for _ in range(10):
            if plan.kind == "user":
                self.quarantine_upn(plan, props, None)
            props["onPremisesProvisioningErrors"] = self.provisioning_errors(plan, None)
            props = {k: v for k, v in props.items() if v is not None}
            if self.staging:
                self.pend(self.aad_connector, plan.dn, "Add", props, None)
                plan.exported = plan.added = True
                self.result.counts[plan.kind].adds += 1
                return
            try:
                doc = self.store.create_object(kind=plan.kind, properties={
                    **props, "onPremisesLastSyncDateTime": iso(self.now)}, object_id=object_id,
                    source_anchor=plan.anchor)
            except ConflictError as conflict:
                if conflict.attribute == "id":
                    object_id = None
                    continue
                if not self.quarantine(plan, props, conflict):
                    return
                continue
            break
        else:
            return
        self.result.cloud_writes += 1
        doc["@kind"] = plan.kind
        oid = doc["id"]
        plan.oid = oid
        self.docs[oid] = doc
        self.joined[plan.anchor] = oid
        self.anchor_of[oid] = plan.anchor
        self.index(oid, doc)
        self.state.recycle_bin.pop(plan.anchor, None)
        plan.exported = plan.added = True
        self.touch(plan.dn)
        self.result.counts[plan.kind].adds += 1

    def update(self, plan: _Plan, oid: str) -> None:
        doc = self.docs[oid]
        desired = dict(plan.props)
        for _ in range(10):
            if plan.kind == "user":
                self.quarantine_upn(plan, desired, oid)
            desired["onPremisesProvisioningErrors"] = self.provisioning_errors(plan, doc)
            changes = {k: desired.get(k) for k in MANAGED_PROPERTIES[plan.kind] if desired.get(k) != doc.get(k)}
            if self.exchange_cloud_managed(oid):
                changes = {k: v for k, v in changes.items() if k not in EXCHANGE_CLOUD_MANAGED_USER}
            source_anchor = plan.anchor if self.store_anchor_missing(oid) else None
            if not changes and source_anchor is None:
                plan.exported = True
                return
            if self.staging:
                self.pend(self.aad_connector, plan.dn, "Update", changes, oid)
                plan.exported = True
                self.joined[plan.anchor] = oid
                self.anchor_of[oid] = plan.anchor
                self.result.counts[plan.kind].updates += 1
                return
            try:
                updated = self.store.update_object(object_id=oid, properties={
                    **changes, "onPremisesLastSyncDateTime": iso(self.now)}, source_anchor=source_anchor)
            except ConflictError as conflict:
                if not self.quarantine(plan, desired, conflict):
                    return
                continue
            except NotFoundError:
                return
            break
        else:
            return
        self.result.cloud_writes += 1
        updated["@kind"] = plan.kind
        self.unindex(oid, doc)
        self.docs[oid] = updated
        self.index(oid, updated)
        self.joined[plan.anchor] = oid
        self.anchor_of[oid] = plan.anchor
        plan.exported = True
        self.touch(plan.dn)
        self.result.counts[plan.kind].updates += 1
        self.result.soft_matches += plan.soft_matched

    def store_anchor_missing(self, oid: str) -> bool:
        # A soft-matched cloud object gets the source anchor with its first update.
        return oid not in self.anchor_of or not self.docs[oid].get("onPremisesSyncEnabled")

    def quarantine_upn(self, plan: _Plan, props: dict[str, Any], oid: str | None) -> None:
        """Duplicate attribute resiliency for the UPN: the newcomer gets <prefix>+<4 digits>@<initial domain>."""
        upn = plan.props.get("userPrincipalName")
        if not upn:
            return
        holder = self.upns.get(upn.lower())
        if holder is None or holder == oid:
            return
        local = upn.rpartition("@")[0]
        digits = int(hashlib.sha256(plan.anchor.encode()).hexdigest(), 16) % 10_000
        props["userPrincipalName"] = f"{local}+{digits:04d}@{self.initial_domain}"
        if ("UserPrincipalName", upn) not in plan.quarantined:
            plan.quarantined.append(("UserPrincipalName", upn))

    def quarantine(self, plan: _Plan, props: dict[str, Any], conflict: ConflictError) -> bool:
        """A value the store refuses as duplicate: resiliency takes it off this object (False: give up)."""
        if not self.options.duplicate_attribute_resiliency:
            code = "AttributeValueMustBeUnique" if plan.oid else "InvalidSoftMatch"
            plan.error = (code, conflict.attribute, _duplicate_message(f"{conflict.attribute} {conflict.value};"))
            return False
        if conflict.attribute == "proxyAddresses":
            kept = [p for p in props.get("proxyAddresses") or [] if p.lower() != conflict.value.lower()]
            if len(kept) == len(props.get("proxyAddresses") or []):
                return False
            props["proxyAddresses"] = kept
            plan.props["proxyAddresses"] = kept
            plan.quarantined.append(("ProxyAddresses", conflict.value))
            return True
        if conflict.attribute == "userPrincipalName":
            self.upns[conflict.value.lower()] = conflict.existing_id
            return True
        return False

    def cloud_upn(self, upn: str | None) -> str | None:
        """The UPN Entra ID gives: a suffix that is not a verified domain becomes the initial domain."""
        if not upn:
            return None
        local, _, domain = upn.rpartition("@")
        return upn if domain.lower() in self.verified else f"{local}@{self.initial_domain}"

    def match(self, plan: _Plan, *, cloud_upn: str | None, mail_enabled: bool) -> None:
        """Join a new AD object to a cloud object: restore from the recycle bin (the hard match of a
        soft-deleted object), else soft match a cloud-managed object of the same kind."""
        restored = self.state.recycle_bin.get(plan.anchor)
        if restored and restored.get("kind") == plan.kind and restored.get("id") not in self.docs:
            plan.restore_id = restored["id"]
            return
        if self.options.block_soft_match or (not mail_enabled and plan.kind != "user"):
            return  # groups that are not mail-enabled have no soft match
        a = plan.attrs
        primary = next((p[5:] for p in a.all("proxyAddresses") if isinstance(p, str) and p.startswith("SMTP:")),
                       None) or a.text("mail")
        wanted: list[tuple[str, str]] = []
        if cloud_upn:
            wanted.append(("upn", cloud_upn))
        if primary:
            wanted.append(("smtp", primary))
        for how, value in wanted:
            for candidate in self.store.find_objects_by_address(address=value):
                cid = candidate["id"]
                if cid in self.anchor_of or candidate.get("onPremisesSyncEnabled") or \
                        self.store.source_anchor_of(object_id=cid):
                    continue  # synced with another AD object: resiliency's business, not a match
                if "Unified" in (candidate.get("groupTypes") or []):
                    continue  # a Microsoft 365 group lives in the cloud only; an AD group never takes it over
                if how == "upn":
                    hit = (candidate.get("userPrincipalName") or "").lower() == value.lower()
                else:
                    hit = any(p.startswith("SMTP:") and p[5:].lower() == value.lower()
                              for p in candidate.get("proxyAddresses") or []) or \
                        (candidate.get("mail") or "").lower() == value.lower()
                if not hit:
                    continue
                if candidate.get("@kind") != plan.kind:
                    prop = "UserPrincipalName" if how == "upn" else "ProxyAddresses"
                    plan.error = ("ObjectTypeMismatch", prop, _duplicate_message(f"{prop} {value};"))
                    return
                self.docs.setdefault(cid, candidate)
                plan.oid = cid
                plan.soft_matched = True
                return


def _normalise_addresses(primary: str, addresses: Iterable[str]) -> list[str]:
    """EmailAddresses as the store keeps them (SMTP: primary first, other SMTP demoted, order kept)."""
    result = [f"SMTP:{primary}"]
    seen = {f"smtp:{primary}".lower()}
    for address in addresses:
        prefix, sep, value = address.partition(":")
        if not sep:
            prefix, value = "smtp", address
        if prefix.lower() == "smtp":
            address = f"smtp:{value}"
        if address.lower() in seen:
            continue
        seen.add(address.lower())
        result.append(address)
    return result
