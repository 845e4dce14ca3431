"""The lab's conditional access scenario, shared by the scenario seed (cloud_seed) and the MFA tenant
(mfa_tenant): roles for the administrators, a nested pilot group, a break-glass exclusion, policies in every
state and demand, and sign-ins carrying report-only results. No Django here."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from portal.connectors.graph.policies import STRENGTH_PASSWORDLESS, STRENGTH_PHISHING_RESISTANT
from portal.lab.cloud.store import CloudStore
from portal.lab.cloud.store.common import utc_now
from portal.lab.cloud.store.conditional_access import ROLE_NAMES

GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
SECURITY_ADMIN = "194ae4cb-b126-40b2-bd5b-6091b380977d"
HELPDESK_ADMIN = "729827e3-9c14-49f7-bb1b-9608f156bbb8"
ROLE_TEMPLATES = {name: tid for tid, name in ROLE_NAMES.items()}


def seed_conditional_access(store: CloudStore, *, users: Sequence[Mapping[str, Any]],
                            admins: Mapping[str, str], guests: Sequence[str] = (), gone_user_id: str | None = None,
                            gone_group_id: str | None = None, new_id: Callable[[], str] | None = None
                            ) -> dict[str, Any]:
    """Roles for ``admins`` (user id -> role template id), groups (one nested), and the policies:

    - *Admins: phishing-resistant MFA* (enabled; roles; strength ...0004; the break-glass group excluded);
    - *Pilot: require MFA* (enabled; the pilot group, whose members include a nested group; a deleted
      user and a deleted group named in its exclusions, as tenants accumulate);
    - *All users: require MFA* (report-only; everyone but the break-glass group and guests);
    - *Finance: passwordless MFA* (disabled; the first department's group; strength ...0003);
    - *Guests: require MFA* (enabled; guests or external users);
    - *Block legacy authentication* (enabled; a block, not an MFA demand).
    """
    ids = [u["id"] for u in users]
    new_id = new_id or (lambda: str(uuid.uuid4()))  # the seeders pass their own, so a seed is deterministic
    out: dict[str, Any] = {"roles": {}, "groups": {}, "policies": {}}

    def group(name: str) -> dict[str, Any]:
        return store.create_group(object_id=new_id(), display_name=name, security_enabled=True)

    def policy(**kwargs: Any) -> dict[str, Any]:
        return store.add_ca_policy(policy_id=new_id(), **kwargs)

    with store.transaction():
        for template in sorted({GLOBAL_ADMIN, SECURITY_ADMIN, *admins.values()}):
            members = [uid for uid, t in admins.items() if t == template]
            role = store.activate_role(template_id=template, member_ids=members)
            out["roles"][ROLE_NAMES[template]] = {"id": role["id"], "template": template, "members": members}
        nested = group("CA pilot - wave 2 (nested)")
        nested_members = ids[1::9][:6]
        store.set_members(group_id=nested["id"], member_ids=nested_members)
        pilot = group("CA pilot")
        pilot_direct = ids[0::7][:8]
        store.set_members(group_id=pilot["id"], member_ids=[*pilot_direct, nested["id"]])
        breakglass = group("CA exclusions (break glass)")
        excluded = [pilot_direct[0]] if pilot_direct else []
        store.set_members(group_id=breakglass["id"], member_ids=excluded)
        out["groups"] = {"pilot": pilot["id"], "nested": nested["id"], "breakglass": breakglass["id"],
                         "pilot_direct": pilot_direct, "nested_members": nested_members, "excluded": excluded}
        departments = sorted({u.get("department") for u in users if u.get("department")})
        finance = None
        if departments:
            finance = group(f"CA {departments[0]} (dynamic stand-in)")
            store.set_members(group_id=finance["id"],
                              member_ids=[u["id"] for u in users if u.get("department") == departments[0]])
            out["groups"]["finance"] = finance["id"]
        guest_block = {"guestOrExternalUserTypes": "internalGuest,b2bCollaborationGuest,b2bCollaborationMember",
                       "externalTenants": {"@odata.type": "#microsoft.graph.conditionalAccessAllExternalTenants",
                                           "membershipKind": "all"}}
        made = {
            "admins": policy(display_name="Admins: phishing-resistant MFA", state="enabled",
                                 users={"includeRoles": [GLOBAL_ADMIN, SECURITY_ADMIN, HELPDESK_ADMIN],
                                        "excludeGroups": [breakglass["id"]]},
                                 built_in_controls=(), strength_id=STRENGTH_PHISHING_RESISTANT),
            "pilot": policy(display_name="Pilot: require MFA", state="enabled",
                                users={"includeGroups": [pilot["id"]],
                                       "excludeGroups": [breakglass["id"], *([gone_group_id] if gone_group_id else [])],
                                       "excludeUsers": [gone_user_id] if gone_user_id else []},
                                locations={"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]}),
            "all_users": policy(display_name="All users: require MFA",
                                    state="enabledForReportingButNotEnforced",
                                    users={"includeUsers": ["All"], "excludeGroups": [breakglass["id"]],
                                           "excludeGuestsOrExternalUsers": guest_block}),
            "guests": policy(display_name="Guests: require MFA", state="enabled",
                                 users={"includeGuestsOrExternalUsers": guest_block}),
            "legacy": policy(display_name="Block legacy authentication", state="enabled",
                                 users={"includeUsers": ["All"], "excludeGroups": [breakglass["id"]]},
                                 built_in_controls=("block",), client_app_types=("exchangeActiveSync", "other")),
        }
        if finance is not None:
            made["finance"] = policy(display_name="Finance: passwordless MFA", state="disabled",
                                         users={"includeGroups": [finance["id"]]}, built_in_controls=(),
                                         strength_id=STRENGTH_PASSWORDLESS)
        out["policies"] = {k: v["id"] for k, v in made.items()}
        # legacy per-user MFA, still switched on for a few accounts outside every policy's groups
        legacy = [uid for uid in ids[3::13] if uid not in set(pilot_direct) | set(nested_members)][:3]
        for n, uid in enumerate(legacy):
            store.set_per_user_mfa(user_id=uid, state="enforced" if n % 2 == 0 else "enabled")
        out["per_user_mfa"] = legacy
        out["guests"] = list(guests)
    return out


def seed_sign_ins(store: CloudStore, *, users: Sequence[Mapping[str, Any]], able: Mapping[str, bool],
                  report_only: Mapping[str, str], block: Mapping[str, str] | None = None, limit: int = 2_000
                  ) -> int:
    """Sign-ins of the last days under a report-only MFA policy (``report_only``: id, displayName), as Entra ID
    logs them: a user who already answered MFA in the session shows ``reportOnlySuccess``, one who would have
    been prompted ``reportOnlyInterrupted`` (users without a usable method always are: they would be sent to
    register). Users absent from ``able`` get no sign-in (no evidence)."""
    now = utc_now().replace(microsecond=0)
    made = 0
    with store.transaction():
        for n, user in enumerate(u for u in users if u["id"] in able):
            if made >= limit:
                break
            result = "reportOnlySuccess" if able[user["id"]] and n % 2 == 0 else "reportOnlyInterrupted"
            applied = [{"id": report_only["id"], "displayName": report_only["displayName"], "grant": ["Mfa"],
                        "result": result}]
            if block:
                applied.append({"id": block["id"], "displayName": block["displayName"], "result": "notApplied"})
            store.add_sign_in(user=user, when=now - timedelta(hours=1 + n % 72), applied=applied)
            made += 1
    return made
