"""The cloud side of the scenario seed: what lives only in the lab tenant, never in the lab AD.

Run after an initial sync cycle (:func:`portal.lab.sync.run_cycle` with ``policy="Initial"``), so the
synced users, groups and recipients are in the store. :func:`seed_cloud` then adds licences, MFA
registration states (methods, ``userRegistrationDetails`` rows and the directory audit trail that
goes with each), cloud-only groups set up for group writeback, cloud-only distribution lists that
nest synced lists, mailbox permissions on synced groups, accepted domains, outbound connectors and
the premium licence switch. The returned :class:`CloudManifest` names the objects of each scenario.

Deterministic (``random.Random(seed)``, object ids drawn from it, users picked in UPN order) and
idempotent: the manifest is kept in the store's meta table, and a second call returns it without
writing. No Django here.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from portal.lab import layout
from portal.lab.cloud.store import CloudStore
from portal.lab.cloud.store.common import iso, utc_now
from portal.lab.seed import Manifest

MARKER_KEY = "cloud_seed_manifest"
VERSION = 1

# Well-known SKU ids (Microsoft's "Product names and service plan identifiers for licensing").
SKU_EXCHANGE_ONLINE_PLAN_1 = "4b9405b0-7788-4568-add1-99614e613b69"
SKU_ENTRA_ID_P1 = "078d2b04-f1bd-4111-bbd3-b4b4b3b0a5b3"  # AAD_PREMIUM
# The service principal the field notes show as the actor of "Update user" for app details.
MFA_SERVICE = {"displayName": "Azure MFA StrongAuthenticationService", "appId": None,
               "servicePrincipalId": "797b413b-1b35-45ad-a30a-11c0eb96fa8f", "servicePrincipalName": None}
PASSWORD_METHOD_ID = "28c10230-6103-485e-b985-444c60001490"

ACCEPTED_DOMAINS: tuple[tuple[str, str], ...] = (
    ("contoso.com", "Authoritative"),
    ("fabrikam.com", "Authoritative"),
    ("contoso.mail.onmicrosoft.com", "Authoritative"),
    ("contoso.onmicrosoft.com", "Authoritative"),
)
HYBRID_CONNECTOR = "Outbound to Contoso on-premises"
ROUTE_ALL_CONNECTOR = "Route all mail via on-premises (disabled)"

MFA_STATES = (
    "mfa_none", "mfa_sms_only", "mfa_authenticator_verified", "mfa_authenticator_unverified", "mfa_fido2",
    "mfa_admin_strong", "mfa_admin_weak", "mfa_reregister_required",
)
# users per state; the rest of the synced users stay unregistered without being named
STATE_SIZES = {
    "mfa_none": 4, "mfa_sms_only": 4, "mfa_authenticator_verified": 4, "mfa_authenticator_unverified": 4,
    "mfa_fido2": 3, "mfa_admin_strong": 2, "mfa_admin_weak": 2, "mfa_reregister_required": 2,
}
ADMIN_ROLES = ("Global Administrator", "Exchange Administrator", "User Administrator", "Helpdesk Administrator")


class CloudSeedError(RuntimeError):
    """The store cannot be seeded as asked (no synced users, another seed already there...)."""


@dataclass
class CloudManifest:
    """What :func:`seed_cloud` made, per scenario: lists of ``{"id", "upn"|"displayName", ...facts}``."""

    version: int
    seed: int
    scenarios: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    created: bool = field(default=False, compare=False)  # this call wrote (not part of the identity)

    def to_json(self, *, indent: int | None = None) -> str:
        data = asdict(self)
        data.pop("created")
        return json.dumps(data, sort_keys=True, indent=indent, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> CloudManifest:
        data = json.loads(text)
        return cls(version=data["version"], seed=data["seed"], scenarios=data["scenarios"])

    def ids(self, name: str) -> list[str]:
        return [o["id"] for o in self.scenarios[name]]

    def upns(self, name: str) -> list[str]:
        return [o["upn"] for o in self.scenarios[name]]


def read_cloud_manifest(*, store: CloudStore) -> CloudManifest | None:
    # store.py has no public meta accessor; its private one is the only per-tenant key/value place
    # that Graph never shows (settings reject unknown keys, a marker object would be listed).
    text = store._meta(MARKER_KEY)
    return CloudManifest.from_json(text) if text else None


def seed_cloud(*, store: CloudStore, manifest: Manifest, seed: int = 1) -> CloudManifest:
    """Seed the cloud-only scenarios into ``store`` (after an initial sync of ``manifest``'s AD)."""
    existing = read_cloud_manifest(store=store)
    if existing is not None:
        if existing.seed != seed:
            raise CloudSeedError(f"the store holds cloud seed {existing.seed}, not {seed}; reset the lab cloud")
        return existing
    builder = _Builder(store=store, manifest=manifest, rng=random.Random(seed))
    result = CloudManifest(version=VERSION, seed=seed)
    with store.transaction():
        builder.run(result)
        store._set_meta(MARKER_KEY, result.to_json())
    result.created = True
    return result


# --------------------------------------------------------------------------------------------


class _Builder:
    def __init__(self, *, store: CloudStore, manifest: Manifest, rng: random.Random) -> None:
        self.store = store
        self.manifest = manifest
        self.rng = rng
        # relative to now so the audit trail stays inside Entra ID's 30-day window when the lab is used
        self.now = utc_now().replace(microsecond=0)
        self.users = sorted(
            (u for u in store.iter_objects(kind="user") if store.source_anchor_of(object_id=u["id"])),
            key=lambda u: u["userPrincipalName"].lower(),
        )
        if not self.users:
            raise CloudSeedError("no synced users in the store: run an initial sync cycle first")
        self.recipients = {r["ExternalDirectoryObjectId"]: r for r in store.iter_recipients() if
                           r.get("ExternalDirectoryObjectId")}

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def run(self, result: CloudManifest) -> None:
        s = result.scenarios
        self.domains(s)
        self.store.update_settings(premium_licence=True)
        s["premium_licence"] = [{"id": "premium_licence", "value": True}]
        self.licences(s)
        self.mfa(s)
        self.conditional_access(s)
        self.writeback_groups(s)
        self.cloud_lists(s)

    # ---- domains and connectors

    def domains(self, s: dict[str, list[dict[str, Any]]]) -> None:
        have = {d["DomainName"].lower() for d in self.store.list_accepted_domains()}
        added = []
        for name, kind in ACCEPTED_DOMAINS:
            if name not in have:
                self.store.add_accepted_domain(domain_name=name, domain_type=kind,
                                               default=name == "contoso.com")
                added.append({"id": name})
        s["accepted_domains_added"] = added
        connectors = {c["Name"].lower() for c in self.store.list_outbound_connectors()}
        made = []
        if HYBRID_CONNECTOR.lower() not in connectors:
            self.store.add_outbound_connector(name=HYBRID_CONNECTOR, properties={
                "SmartHosts": ["mail.contoso.com"], "RecipientDomains": ["contoso.com", "fabrikam.com"],
                "TlsDomain": "mail.contoso.com", "TlsSettings": "DomainValidation"})
            made.append({"id": HYBRID_CONNECTOR, "Enabled": True})
        if ROUTE_ALL_CONNECTOR.lower() not in connectors:
            # disabled on purpose: preflight must not mistake it for centralised mail transport
            self.store.add_outbound_connector(name=ROUTE_ALL_CONNECTOR, properties={
                "Enabled": False, "RouteAllMessagesViaOnPremises": True, "AllAcceptedDomains": True,
                "SmartHosts": ["mail.contoso.com"], "Comment": "lab seed: centralised mail transport, switched off"})
            made.append({"id": ROUTE_ALL_CONNECTOR, "Enabled": False, "RouteAllMessagesViaOnPremises": True})
        s["outbound_connectors"] = made

    # ---- licences

    def licences(self, s: dict[str, list[dict[str, Any]]]) -> None:
        unlicensed = {u["id"] for u in self.rng.sample(self.users, min(5, len(self.users) // 10 or 1))}
        licensed = []
        for user in self.users:
            if user["id"] in unlicensed:
                continue
            self.store.update_object(object_id=user["id"], properties={"assignedLicenses": [
                {"skuId": SKU_EXCHANGE_ONLINE_PLAN_1, "disabledPlans": []},
                {"skuId": SKU_ENTRA_ID_P1, "disabledPlans": []},
            ]})
            licensed.append(user)
        s["licensed_users"] = [_user_ref(u) for u in licensed]
        s["unlicensed_users"] = [_user_ref(u) for u in self.users if u["id"] in unlicensed]

    # ---- MFA registration states

    def mfa(self, s: dict[str, list[dict[str, Any]]]) -> None:
        by_department: dict[str, list[dict[str, Any]]] = {}
        for user in self.users:
            by_department.setdefault(user.get("department") or "", []).append(user)
        for pool in by_department.values():
            self.rng.shuffle(pool)
        departments = sorted(by_department)
        # round robin over departments so every state spans several of them
        order: list[dict[str, Any]] = []
        while any(by_department.values()):
            for name in departments:
                if by_department[name]:
                    order.append(by_department[name].pop())
        chosen: set[str] = set()
        cursor = 0
        for state in MFA_STATES:
            members = []
            for _ in range(STATE_SIZES[state]):
                if cursor >= len(order):
                    break
                user = order[cursor]
                cursor += 1
                chosen.add(user["id"])
                members.append(self.register(user, state, len(members)))
            s[state] = members
        # everyone else: the password method only and an empty registration row, as an unregistered user
        for user in self.users:
            if user["id"] not in chosen:
                self.password(user)
                self.row(user, is_admin=False)

    def conditional_access(self, s: dict[str, list[dict[str, Any]]]) -> None:
        """Roles for the seeded administrators, and the conditional access policies (lab/ca_seed.py)."""
        from . import ca_seed as ca

        admins = {ref["id"]: ca.ROLE_TEMPLATES.get(ref.get("role", ""), ca.GLOBAL_ADMIN)
                  for state in ("mfa_admin_strong", "mfa_admin_weak") for ref in s.get(state, ())}
        made = ca.seed_conditional_access(self.store, users=self.users, admins=admins,
                                          gone_user_id=self.new_id(), gone_group_id=self.new_id(),
                                          new_id=self.new_id)
        s["ca_policies"] = [{"id": pid, "name": name} for name, pid in made["policies"].items()]
        s["ca_groups"] = [{"id": gid, "name": name} for name, gid in made["groups"].items() if isinstance(gid, str)]
        able = {ref["id"]: state in ("mfa_sms_only", "mfa_authenticator_verified", "mfa_fido2", "mfa_admin_strong")
                for state in MFA_STATES for ref in s.get(state, ())}
        pids = made["policies"]
        ca.seed_sign_ins(self.store, users=self.users, able=able,
                         report_only={"id": pids["all_users"], "displayName": "All users: require MFA"},
                         block={"id": pids["legacy"], "displayName": "Block legacy authentication"})

    def register(self, user: dict[str, Any], state: str, index: int) -> dict[str, Any]:
        ref = {**_user_ref(user), "department": user.get("department")}
        when = self.now - timedelta(days=self.rng.randint(2, 20), minutes=self.rng.randint(0, 600))
        self.password(user)
        if state == "mfa_none":
            self.row(user, is_admin=False)
        elif state == "mfa_sms_only":
            phone = f"+1 425555{self.rng.randint(1000, 9999)}"
            self.method(user, "phone", {"phoneNumber": phone, "phoneType": "mobile",
                                        "smsSignInState": "notAllowedByPolicy"}, when)
            self.registration_events(user, when, "Mobile Phone SMS", completed=True)
            self.row(user, is_admin=False, mfa_registered=True, mfa_capable=True, sspr=True,
                     methods=["mobilePhone"], preferred="sms", system_preferred=["Sms"])
            ref["phoneNumber"] = phone
        elif state in ("mfa_authenticator_verified", "mfa_authenticator_unverified", "mfa_admin_strong"):
            verified = state != "mfa_authenticator_unverified"
            method_id = self.authenticator(user, when, verified=verified)
            # the unverified half: some scanned the QR code and pressed next (started), none finished
            started = verified or index % 2 == 1
            self.registration_events(user, when, "Authenticator App with Notification and Code",
                                     completed=verified, started=started)
            methods = ["microsoftAuthenticatorPush", "softwareOneTimePasscode"]
            self.row(user, is_admin=state == "mfa_admin_strong", mfa_registered=True, mfa_capable=verified,
                     sspr=verified, methods=methods, preferred="push",
                     system_preferred=["Push"] if verified else [])
            ref.update({"authenticator_method_id": method_id, "started_event": started, "completed_event": verified})
            if state == "mfa_admin_strong":
                self.method(user, "fido2", _fido2(self.rng), when + timedelta(minutes=5))
                ref["role"] = ADMIN_ROLES[index % len(ADMIN_ROLES)]
        elif state == "mfa_fido2":
            self.method(user, "fido2", _fido2(self.rng), when)
            methods = ["passKeyDeviceBound"]
            if index % 2 == 0:
                self.method(user, "windowsHelloForBusiness", {
                    "displayName": f"LAPTOP-{self.rng.randint(1000, 9999)}", "keyStrength": "normal"}, when)
                methods.append("windowsHelloForBusiness")
            if index % 3 == 1:
                self.method(user, "softwareOath", {"secretKey": None}, when)
                methods.append("softwareOneTimePasscode")
            self.registration_events(user, when, "FIDO2 Security Key", completed=True)
            self.row(user, is_admin=False, mfa_registered=True, mfa_capable=True, passwordless=True,
                     methods=methods, preferred="none", system_preferred=["Fido2"])
        elif state == "mfa_admin_weak":
            # an administrator with nothing but a password and an email for SSPR: the report must flag it
            address = f"{user['mailNickname']}.recovery@fabrikam.com"
            self.method(user, "email", {"emailAddress": address}, when)
            self.registration_events(user, when, "Email", completed=True)
            self.row(user, is_admin=True, sspr=True, methods=["email"])
            ref["role"] = ADMIN_ROLES[(index + 1) % len(ADMIN_ROLES)]
        elif state == "mfa_reregister_required":
            self.reregister(user, when)
        return ref

    def reregister(self, user: dict[str, Any], when: datetime) -> None:
        """Registered the Authenticator, then an administrator pressed "Require re-register MFA" a day later:
        Entra deletes the app (and any phone or software OATH token), which the audit logs as "Admin deleted
        security info" (Entra has no activity of its own for the action); the report row, computed before
        the deletion, still lists the app as registered and capable."""
        method_id = self.authenticator(user, when, verified=True)
        self.registration_events(user, when, "Authenticator App with Notification and Code", completed=True)
        reset = when + timedelta(days=1)
        self.store.delete_auth_method(user_id=user["id"], method_id=method_id)
        domain = user["userPrincipalName"].rsplit("@", 1)[-1]
        admin = {"id": "5f0c3a52-8a4e-4c1d-9a57-2b1c9f1e7a01", "displayName": "Authentication Administrator",
                 "userPrincipalName": f"authadmin@{domain}", "ipAddress": "203.0.113.20"}
        self.store.add_audit_event(
            activity_display_name="Admin deleted security info", category="UserManagement", result="success",
            result_reason="Admin deleted Authenticator App with Notification and Code", activity_date_time=reset,
            logged_by_service="Authentication Methods", operation_type="Delete",
            initiated_by={"app": None, "user": admin}, target_resources=[self.target(user)],
            event_id=f"Directory_{self.new_id()}")
        self.row(user, is_admin=False, mfa_registered=True, mfa_capable=True, sspr=True,
                 methods=["microsoftAuthenticatorPush", "softwareOneTimePasscode"], preferred="push",
                 system_preferred=["Push"], updated=reset - timedelta(hours=2))

    def password(self, user: dict[str, Any]) -> None:
        self.store.add_auth_method(user_id=user["id"], method_type="password", method_id=PASSWORD_METHOD_ID,
                                   properties={"createdDateTime": user.get("createdDateTime"), "password": None})

    def method(self, user: dict[str, Any], kind: str, props: Mapping[str, Any], when: datetime) -> str:
        method_id = self.new_id()
        self.store.add_auth_method(user_id=user["id"], method_type=kind, method_id=method_id,
                                   properties={"createdDateTime": iso(when), **props})
        return method_id

    def authenticator(self, user: dict[str, Any], when: datetime, *, verified: bool) -> str:
        device = self.rng.choice(("iPhone 14 Pro Max", "iPhone 15", "Pixel 8", "Galaxy S23"))
        method_id = self.method(user, "microsoftAuthenticator", {
            "displayName": device, "deviceTag": "SoftwareTokenActivated", "phoneAppVersion": "6.7.12",
            "clientAppName": "microsoftAuthenticator"}, when)
        detail = [{
            "DeviceName": device, "DeviceToken": f"apns2-{self.rng.getrandbits(256):064x}",
            "DeviceTag": "SoftwareTokenActivated", "PhoneAppVersion": "6.7.12", "OathTokenTimeDrift": 0,
            "DeviceId": "00000000-0000-0000-0000-000000000000", "Id": method_id, "TimeInterval": 0,
            "AuthenticationType": 3, "NotificationType": 2,
            "LastAuthenticatedTimestamp": iso(when) if verified else None, "AuthenticatorFlavor": None,
            "HashFunction": None, "TenantDeviceId": None, "SecuredPartitionId": 0, "SecuredKeyId": 0,
        }]
        # The app details land on the user as soon as the QR code is scanned, verified or not: the
        # field notes' trap, where the methods list alone cannot tell the two users apart.
        self.store.add_audit_event(
            activity_display_name="Update user", category="UserManagement", activity_date_time=when,
            logged_by_service="Core Directory", operation_type="Update",
            initiated_by={"app": MFA_SERVICE, "user": None},
            target_resources=[{**self.target(user), "modifiedProperties": [
                {"displayName": "StrongAuthenticationPhoneAppDetail", "oldValue": "[]",
                 "newValue": json.dumps(detail)},
                {"displayName": "Included Updated Properties", "oldValue": None,
                 "newValue": '"StrongAuthenticationPhoneAppDetail"'},
            ]}],
            additional_details=[{"key": "UserType", "value": "Member"}],
            event_id=f"Directory_{self.new_id()}",
        )
        return method_id

    def registration_events(self, user: dict[str, Any], when: datetime, method: str, *, completed: bool,
                            started: bool = True) -> None:
        actor = {"app": None, "user": {"id": user["id"], "displayName": user.get("displayName"),
                                       "userPrincipalName": user["userPrincipalName"], "ipAddress": "203.0.113.10"}}
        steps: list[tuple[str, str, int]] = []
        if started:
            steps.append(("User started security info registration",
                          f"User started the registration for {method}", 7))
        if completed:
            steps += [("User registered security info", f"User registered {method}", 13),
                      ("User registered all required security info", "User registered all required security info", 14)]
        for activity, reason, seconds in steps:
            self.store.add_audit_event(
                activity_display_name=activity, category="UserManagement", result="success", result_reason=reason,
                activity_date_time=when + timedelta(seconds=seconds), logged_by_service="Authentication Methods",
                operation_type="Add" if "registered" in activity else "Update", initiated_by=actor,
                target_resources=[self.target(user)], event_id=f"Directory_{self.new_id()}",
            )

    def target(self, user: dict[str, Any]) -> dict[str, Any]:
        return {"id": user["id"], "displayName": user.get("displayName"), "type": "User",
                "userPrincipalName": user["userPrincipalName"]}

    def row(self, user: dict[str, Any], *, is_admin: bool, mfa_registered: bool = False, mfa_capable: bool = False,
            sspr: bool = False, passwordless: bool = False, methods: Sequence[str] = (), preferred: str = "none",
            system_preferred: Sequence[str] = (), updated: datetime | None = None) -> None:
        self.store.upsert_registration_details(user_id=user["id"], properties={
            "userPrincipalName": user["userPrincipalName"], "userDisplayName": user.get("displayName"),
            "userType": "member", "isAdmin": is_admin, "isMfaRegistered": mfa_registered,
            "isMfaCapable": mfa_capable, "isPasswordlessCapable": passwordless, "isSsprRegistered": sspr,
            "isSsprEnabled": True, "isSsprCapable": sspr, "methodsRegistered": list(methods),
            "userPreferredMethodForSecondaryAuthentication": preferred,
            "systemPreferredAuthenticationMethods": list(system_preferred),
            "lastUpdatedDateTime": iso(updated or self.now - timedelta(hours=self.rng.randint(1, 20))),
        })

    # ---- cloud-only groups for group writeback

    def writeback_groups(self, s: dict[str, list[dict[str, Any]]]) -> None:
        specs = (
            # (displayName, kind, onPremisesGroupType); only Microsoft 365 groups may be written back as
            # distribution or mail-enabled security groups (the sync engine forces security groups to security)
            ("Cloud Seed Project Atlas", "m365", "universalDistributionGroup"),
            ("Cloud Seed Leadership Circle", "m365", "universalMailEnabledSecurityGroup"),
            ("Cloud Seed App Reviewers", "security", "universalSecurityGroup"),
        )
        made = []
        for display, kind, target in specs:
            oid = self.new_id()
            alias = display.lower().replace(" ", "-")
            m365 = kind == "m365"
            self.store.create_group(
                object_id=oid, display_name=display, mail_enabled=m365, security_enabled=not m365,
                group_types=["Unified"] if m365 else [], mail=f"{alias}@contoso.com" if m365 else None,
                mail_nickname=alias, proxy_addresses=[f"SMTP:{alias}@contoso.com",
                                                      f"smtp:{alias}@contoso.onmicrosoft.com"] if m365 else [],
                extra={"description": "cloud-only, written back by group writeback v2",
                       "writebackConfiguration": {"isEnabled": True, "onPremisesGroupType": target}},
            )
            members = self.rng.sample(self.users, 3)
            self.store.set_members(group_id=oid, member_ids=[u["id"] for u in members])
            if m365:
                self.store.create_recipient(
                    recipient_type_details="GroupMailbox", name=f"{display}_{oid[-12:]}", alias=alias,
                    display_name=display, primary_smtp_address=f"{alias}@contoso.com",
                    email_addresses=[f"smtp:{alias}@contoso.onmicrosoft.com"], object_id=oid,
                    recipient_id=self.new_id())
            made.append({"id": oid, "displayName": display, "kind": kind, "onPremisesGroupType": target,
                         "members": [u["userPrincipalName"] for u in members], "cn": f"Group_{oid}"})
        s["cloud_writeback_groups"] = made
        s["written_back_group_twins"] = self.written_back_group_twins()

    def written_back_group_twins(self) -> list[dict[str, Any]]:
        """The cloud groups the AD seed's written-back groups came from (same object ids), so that a lab's
        writeback plan has groups to rename with the seed's naming cases (DN escaping, a case collision, a
        name over 64 characters). Left without one, as groups whose cloud twin was deleted: the group marked
        ``no_cloud_twin``, and the case-collision pair, whose planned names would collide and so block every
        approval of a plan in the lab (the collision rule is proven on plans of its own). The members are drawn by
        an rng of their own: the rest of the seed is unchanged."""
        twins = []
        for item in self.manifest.scenario("written_back_groups").objects:
            facts = item.facts
            if facts.get("case") in ("no_cloud_twin", "case_collision"):
                continue
            oid, display, m365 = facts["object_id"], facts["display_name"], facts["kind"] == "m365"
            mail = facts.get("mail") if m365 else None
            alias = mail.split("@")[0] if mail else None
            self.store.create_group(
                object_id=oid, display_name=display, mail_enabled=bool(mail), security_enabled=not m365,
                group_types=["Unified"] if m365 else [], mail=mail, mail_nickname=alias,
                proxy_addresses=[f"SMTP:{mail}", f"smtp:{alias}@{layout.TENANT_DOMAIN}"] if mail else [],
                extra={"description": "cloud group written back by group writeback v2 (the AD seed's)",
                       "writebackConfiguration": {"isEnabled": True, "onPremisesGroupType":
                                                  "universalDistributionGroup" if m365 else "universalSecurityGroup"}},
            )
            members = random.Random(oid).sample(self.users, 3)
            self.store.set_members(group_id=oid, member_ids=[u["id"] for u in members])
            twins.append({"id": oid, "displayName": display, "case": facts.get("case"), "cn": f"Group_{oid}"})
        return twins

    # ---- cloud-only lists nesting synced lists, and permissions on synced groups

    def cloud_lists(self, s: dict[str, list[dict[str, Any]]]) -> None:
        synced = [(g, self.recipients.get(g["id"])) for g in self.store.iter_objects(kind="group")
                  if self.store.source_anchor_of(object_id=g["id"])]
        synced_dls = sorted((pair for pair in synced if pair[1] and
                             pair[1]["RecipientTypeDetails"] == "MailUniversalDistributionGroup"),
                            key=lambda pair: pair[0]["displayName"].lower())
        synced_sgs = sorted((pair for pair in synced if pair[1] and
                             pair[1]["RecipientTypeDetails"] == "MailUniversalSecurityGroup"),
                            key=lambda pair: pair[0]["displayName"].lower())
        if len(synced_dls) < 4:
            raise CloudSeedError("the initial sync brought fewer than 4 distribution lists")
        mailboxes = sorted((u for u in self.users if (self.recipients.get(u["id"]) or {}).get(
            "RecipientTypeDetails") in ("UserMailbox", "RemoteUserMailbox")), key=lambda u: u["userPrincipalName"])
        lists = []
        for n, display in enumerate(("All Contoso Staff (cloud)", "Regional Leads (cloud)")):
            oid, rid = self.new_id(), self.new_id()
            alias = f"cloudlist{n + 1}"
            address = f"{alias}@contoso.com"
            self.store.create_group(object_id=oid, display_name=display, mail_enabled=True, security_enabled=False,
                                    mail=address, mail_nickname=alias,
                                    proxy_addresses=[f"SMTP:{address}", f"smtp:{alias}@contoso.onmicrosoft.com"])
            nested = self.rng.sample(synced_dls, 2)
            owner = self.rng.choice(synced_sgs) if synced_sgs else self.rng.choice(synced_dls)
            behalf = self.rng.choice([p for p in synced_dls if p not in nested])
            user = self.rng.choice(mailboxes) if mailboxes else self.users[0]
            self.store.set_members(group_id=oid, member_ids=[g["id"] for g, _ in nested] + [user["id"]])
            self.store.create_recipient(
                recipient_type_details="MailUniversalDistributionGroup", name=display, alias=alias,
                primary_smtp_address=address, email_addresses=[f"smtp:{alias}@contoso.onmicrosoft.com"],
                object_id=oid, is_dir_synced=False, recipient_id=rid,
                properties={"ManagedBy": [owner[1]["@id"]], "GrantSendOnBehalfTo": [behalf[1]["@id"]]})
            lists.append({"id": oid, "recipient_id": rid, "displayName": display, "mail": address,
                          "nested_synced_lists": [g["id"] for g, _ in nested],
                          "nested_synced_list_names": [g["displayName"] for g, _ in nested],
                          "managed_by": owner[0]["id"], "send_on_behalf": behalf[0]["id"]})
        s["cloud_lists_nesting_synced_lists"] = lists

        # a cloud-only shared mailbox and a synced mailbox, each with SendAs on a synced group
        perms = []
        shared_id, shared_rid = self.new_id(), self.new_id()
        upn = "cloud.shared.desk@contoso.onmicrosoft.com"
        self.store.create_user(object_id=shared_id, user_principal_name=upn, display_name="Shared Desk (cloud)",
                               mail="shared.desk@contoso.com", mail_nickname="shared.desk",
                               extra={"accountEnabled": False})
        self.store.create_recipient(recipient_type_details="SharedMailbox", name="Shared Desk (cloud)",
                                    alias="shared.desk", primary_smtp_address="shared.desk@contoso.com",
                                    email_addresses=["smtp:shared.desk@contoso.onmicrosoft.com"],
                                    object_id=shared_id, recipient_id=shared_rid,
                                    properties={"UserPrincipalName": upn})
        trustees = [(shared_id, shared_rid, upn, True)]
        if mailboxes:
            synced_user = self.rng.choice(mailboxes)
            trustees.append((synced_user["id"], self.recipients[synced_user["id"]]["@id"],
                             synced_user["userPrincipalName"], False))
        for trustee_id, trustee_rid, trustee_upn, cloud_only in trustees:
            group, recipient = self.rng.choice(synced_dls + synced_sgs)
            self.store.add_recipient_permission(recipient_id=recipient["@id"], trustee_id=trustee_rid,
                                                access_right="SendAs")
            perms.append({"id": trustee_id, "upn": trustee_upn, "trustee_recipient_id": trustee_rid,
                          "cloud_only": cloud_only, "group_id": group["id"], "group_recipient_id": recipient["@id"],
                          "access_right": "SendAs"})
        s["mailbox_sendas_on_synced_groups"] = perms


def _user_ref(user: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": user["id"], "upn": user["userPrincipalName"]}


def _fido2(rng: random.Random) -> dict[str, Any]:
    model = rng.choice(("YubiKey 5 NFC", "YubiKey 5C", "Feitian ePass FIDO2"))
    return {"displayName": model, "model": model, "aaGuid": "cb69481e-8ff7-4039-93ec-0a2729a154a8",
            "attestationLevel": "attested", "attestationCertificates": []}
