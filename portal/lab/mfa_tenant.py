"""A lab tenant of any size for the MFA registration report: users, groups, MFA states, the audit trail.

The full lab seed (``cloud_seed.py``) needs the lab AD and a sync cycle and holds about 25 MFA users;
tests of the report and its benchmark need a tenant built straight in a :class:`CloudStore`, small
(tens of users) or large (``users=100_000``). This module builds one, with the *same* MFA shapes as the
scenario seed (it drives ``cloud_seed``'s builder for every state), plus:

- the field notes' pair (``MFATest1``/``MFATest2``): identical report rows (both "registered and
  capable", as every report said) and identical methods lists; only the audit trail differs;
- users whose report row is older than their latest registration (the report lags up to a day);
- bad input: a guest, a user with no UPN, a report row for a user no longer in the directory, a
  method type this lab does not model (in the report and in the methods).

Deterministic for a given ``seed``; idempotent (the manifest is kept in the store's meta table).
No Django here.
"""

from __future__ import annotations

import json
import random
from datetime import timedelta
from typing import Any

from portal.lab import ca_seed as ca
from portal.lab.cloud.store import CloudStore
from portal.lab.cloud.store.common import iso
from portal.lab.cloud_seed import _Builder

MARKER_KEY = "mfa_tenant_manifest"
DEPARTMENTS = ("Sales", "Finance", "Engineering", "Support", "Operations", "Legal")
# share of users per seeded state; the remainder stay unregistered (password only, empty report row)
STATE_SHARES = {
    "mfa_authenticator_verified": 0.55, "mfa_authenticator_unverified": 0.06, "mfa_sms_only": 0.10,
    "mfa_fido2": 0.05, "mfa_admin_strong": 0.004, "mfa_admin_weak": 0.002, "mfa_none": 0.10,
    "mfa_reregister_required": 0.002,
}
STALE_SHARE = 0.005
ABLE_STATES = frozenset({"mfa_authenticator_verified", "mfa_sms_only", "mfa_fido2", "mfa_admin_strong"})
UNKNOWN_TYPE = "quantumPasskey"


class _SparseManifest:
    """What _Builder needs of the AD seed's manifest (nothing, for the MFA states)."""


def read_manifest(store: CloudStore) -> dict[str, Any] | None:
    text = store._meta(MARKER_KEY)
    return json.loads(text) if text else None


def seed_mfa_tenant(store: CloudStore, *, users: int, seed: int = 1, domain: str = "contoso.com",
                    bad_input: bool = True) -> dict[str, Any]:
    """Build (once) a tenant of ``users`` users for the MFA report; returns its manifest."""
    existing = read_manifest(store)
    if existing is not None:
        if existing["users"] != users or existing["seed"] != seed:
            raise ValueError(f"the store holds an MFA tenant of {existing['users']} users (seed {existing['seed']}); "
                             "use another data directory")
        return existing
    rng = random.Random(seed)
    keep_lists = users <= 20_000
    manifest: dict[str, Any] = {"users": users, "seed": seed, "states": {}, "groups": {}, "stale": []}
    with store.transaction():
        made = []
        for i in range(users):
            dept = DEPARTMENTS[i % len(DEPARTMENTS)]
            made.append(store.create_user(
                user_principal_name=f"user{i:06d}@{domain}", display_name=f"User {i:06d}",
                mail=f"user{i:06d}@{domain}", mail_nickname=f"user{i:06d}", source_anchor=f"mfa-anchor-{i}",
                on_premises_sync_enabled=True,
                extra={"department": dept, "accountEnabled": i % 50 != 7,
                       "assignedLicenses": [] if i % 40 == 3 else [{"skuId": "078d2b04-f1bd-4111-bbd3-b4b4b3b0a5b3",
                                                                    "disabledPlans": []}]}))
        for dept in DEPARTMENTS:
            group = store.create_group(display_name=f"Dept {dept}", security_enabled=True)
            store.set_members(group_id=group["id"], member_ids=[u["id"] for u in made if u["department"] == dept])
            manifest["groups"][f"Dept {dept}"] = group["id"]
        pilot = store.create_group(display_name="MFA pilot", security_enabled=True)
        store.set_members(group_id=pilot["id"], member_ids=[u["id"] for u in made[::25]])
        manifest["groups"]["MFA pilot"] = pilot["id"]

        builder = _Builder(store=store, manifest=_SparseManifest(), rng=rng)  # type: ignore[arg-type]
        states = list(STATE_SHARES)
        weights = [STATE_SHARES[s] for s in states] + [1 - sum(STATE_SHARES.values())]
        counters: dict[str, int] = {}
        by_state: dict[str, list[str]] = {s: [] for s in (*states, "unregistered")}
        for user in made:
            state = rng.choices((*states, "unregistered"), weights)[0]
            if state == "unregistered":
                builder.password(user)
                builder.row(user, is_admin=False)
            else:
                builder.register(user, state, counters.get(state, 0))
                counters[state] = counters.get(state, 0) + 1
            by_state[state].append(user["id"])
        # a small tenant still holds two users an administrator required to register again
        by_id = {u["id"]: u for u in made}
        while len(by_state["mfa_reregister_required"]) < 2 and by_state["unregistered"]:
            uid = by_state["unregistered"].pop()
            builder.reregister(by_id[uid], builder.now - timedelta(days=rng.randint(2, 20)))
            by_state["mfa_reregister_required"].append(uid)
        # the report lags: users who registered after the report was computed
        registered = by_state["mfa_authenticator_verified"] + by_state["mfa_sms_only"]
        for uid in rng.sample(registered, max(1, int(users * STALE_SHARE))) if registered else ():
            store.upsert_registration_details(user_id=uid, properties={
                "isMfaRegistered": False, "isMfaCapable": False, "isSsprRegistered": False,
                "methodsRegistered": [], "systemPreferredAuthenticationMethods": [],
                "userPreferredMethodForSecondaryAuthentication": "none",
                "lastUpdatedDateTime": iso(builder.now - timedelta(days=25))})
            manifest["stale"].append(uid)
        manifest["field_notes"] = _field_notes(store, builder, domain)
        if bad_input:
            manifest["bad_input"] = _bad_input(store, builder, domain)
        admins = {uid: (ca.GLOBAL_ADMIN if n % 2 == 0 else ca.SECURITY_ADMIN)
                  for n, uid in enumerate(by_state["mfa_admin_strong"])}
        admins.update({uid: ca.HELPDESK_ADMIN for uid in by_state["mfa_admin_weak"]})
        # a small tenant has few seeded administrators: the field notes' verified user (Authenticator only, not
        # phishing-resistant) and a FIDO2 user hold roles too, so the role-targeted policy has both outcomes
        admins[manifest["field_notes"]["verified"]] = ca.GLOBAL_ADMIN
        admins.update({uid: ca.SECURITY_ADMIN for uid in by_state["mfa_fido2"][:1]})
        bad = manifest.get("bad_input") or {}
        manifest["conditional_access"] = ca.seed_conditional_access(
            store, users=made, admins=admins, guests=[bad["guest"]] if bad.get("guest") else [],
            gone_user_id=bad.get("deleted") or builder.new_id(), gone_group_id=builder.new_id(),
            new_id=builder.new_id)
        # report-only evidence: sign-ins under the all-users policy for the users whose state says able or not
        able = {uid: state in ABLE_STATES for state, ids in by_state.items() for uid in ids}
        able.update({manifest["field_notes"]["verified"]: True, manifest["field_notes"]["unverified"]: False})
        policy_ids = manifest["conditional_access"]["policies"]
        everyone = {u["id"]: u for u in store.iter_objects(kind="user")}
        manifest["sign_ins"] = ca.seed_sign_ins(
            store, users=[everyone[uid] for uid in able if uid in everyone], able=able,
            report_only={"id": policy_ids["all_users"], "displayName": "All users: require MFA"},
            block={"id": policy_ids["legacy"], "displayName": "Block legacy authentication"})
        manifest["counts"] = {s: len(v) for s, v in by_state.items()}
        if keep_lists:
            manifest["states"] = by_state
        else:
            manifest["stale"] = manifest["stale"][:50]
        store._set_meta(MARKER_KEY, json.dumps(manifest))
    return manifest


def _field_notes(store: CloudStore, b: _Builder, domain: str) -> dict[str, str]:
    """MFATest1 verified the Authenticator; MFATest2 scanned the QR code and closed the browser."""
    out = {}
    when = b.now - timedelta(days=3)
    for name, verified in (("MFATest1", True), ("MFATest2", False)):
        user = store.create_user(user_principal_name=f"{name.lower()}@{domain}", display_name=name,
                                 mail=f"{name.lower()}@{domain}", source_anchor=f"mfa-anchor-{name}",
                                 extra={"department": "Operations"})
        b.password(user)
        # the field notes: both devices carry LastAuthenticatedTimestamp; the stamp alone proves nothing
        b.authenticator(user, when, verified=True)
        if verified:
            b.registration_events(user, when, "Authenticator App with Notification and Code", completed=True)
        b.row(user, is_admin=False, mfa_registered=True, mfa_capable=True, sspr=True,
              methods=["microsoftAuthenticatorPush", "softwareOneTimePasscode"], preferred="push",
              system_preferred=["Push"])
        out["verified" if verified else "unverified"] = user["id"]
        when += timedelta(minutes=3)
    return out


def _bad_input(store: CloudStore, b: _Builder, domain: str) -> dict[str, str]:
    guest = store.create_user(user_principal_name=f"partner_fabrikam.com#EXT#@{domain}",
                              display_name="Partner (guest)", extra={"userType": "Guest", "department": None})
    b.password(guest)
    b.row({**guest, "userPrincipalName": guest["userPrincipalName"]}, is_admin=False)
    no_upn = store.create_object(kind="user", properties={"displayName": "No UPN (broken import)",
                                                           "department": "Support"})
    b.password(no_upn)
    store.upsert_registration_details(user_id=no_upn["id"], properties={
        "userPrincipalName": None, "userDisplayName": "No UPN (broken import)", "isMfaRegistered": False})
    gone_id = b.new_id()
    store.upsert_registration_details(user_id=gone_id, properties={
        "userPrincipalName": f"left.yesterday@{domain}", "userDisplayName": "Left yesterday",
        "isMfaRegistered": True, "isMfaCapable": True, "methodsRegistered": ["mobilePhone"]})
    odd = store.create_user(user_principal_name=f"early.adopter@{domain}", display_name="Early adopter",
                            extra={"department": "Engineering"})
    b.password(odd)
    store.add_auth_method(user_id=odd["id"], method_type=UNKNOWN_TYPE,
                          odata_type=f"#microsoft.graph.{UNKNOWN_TYPE}AuthenticationMethod",
                          properties={"displayName": "Prototype key"})
    b.method(odd, "fido2", {"displayName": "YubiKey 5C", "model": "YubiKey 5C"}, b.now - timedelta(days=4))
    b.row(odd, is_admin=False, mfa_registered=True, mfa_capable=True, passwordless=True,
          methods=[UNKNOWN_TYPE, "passKeyDeviceBound"])
    made = {"guest": guest["id"], "no_upn": no_upn["id"], "deleted": gone_id, "unknown_method": odd["id"]}
    made.update(_method_types(store, b, domain))
    return made


def _method_types(store: CloudStore, b: _Builder, domain: str) -> dict[str, str]:
    """Method types whose own properties decide: a Temporary Access Pass usable now, one expired (isUsable),
    an office phone (voice only). The report lists a pass without saying whether it is usable."""
    out = {}
    start = b.now - timedelta(hours=2)
    for key, usable in (("tap_usable", True), ("tap_expired", False)):
        user = store.create_user(user_principal_name=f"{key.replace('_', '.')}@{domain}",
                                 display_name=key.replace("_", " ").title(), extra={"department": "Support"})
        b.password(user)
        b.method(user, "temporaryAccessPass", {
            "startDateTime": iso(start), "lifetimeInMinutes": 480 if usable else 60, "isUsableOnce": not usable,
            "isUsable": usable, "methodUsabilityReason": "EnabledByPolicy" if usable else "Expired",
            "temporaryAccessPass": None}, start)
        b.row(user, is_admin=False, methods=["temporaryAccessPass"])
        out[key] = user["id"]
    office = store.create_user(user_principal_name=f"office.phone@{domain}", display_name="Office phone",
                               extra={"department": "Legal"})
    b.password(office)
    b.method(office, "phone", {"phoneNumber": "+1 4255550100", "phoneType": "office", "smsSignInState":
                               "notSupported"}, start)
    b.row(office, is_admin=False, mfa_registered=True, mfa_capable=True, methods=["officePhone"], preferred="call")
    out["office_phone"] = office["id"]
    return out
