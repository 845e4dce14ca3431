"""Conditional access against one user: scope (include/exclude precedence, nested groups through transitive
membership, roles, guests), demand (MFA grant, authentication strengths against the usable methods), and the
outcome (only enabled policies enforce; report-only and disabled never count; security defaults)."""

from __future__ import annotations

import pytest

from diagnostics_app.mfa import policies as mp
from diagnostics_app.mfa.choices import MethodFamily as F
from diagnostics_app.mfa.choices import PolicyOutcome as O
from portal.connectors.graph.policies import (
    BUILT_IN_STRENGTHS,
    STRENGTH_MFA,
    STRENGTH_PASSWORDLESS,
    STRENGTH_PHISHING_RESISTANT,
)

GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"

GUESTS = {"guestOrExternalUserTypes": "internalGuest,b2bCollaborationGuest"}


def strength(sid: str) -> mp.Demand:
    body = BUILT_IN_STRENGTHS[sid]
    return mp.demand_from(built_in_controls=(), operator="OR", strength_id=sid, strength_name=body["displayName"],
                          combinations=body["allowedCombinations"])


MFA = mp.demand_from(built_in_controls=("mfa",), operator="OR", strength_id=None, strength_name=None,
                     combinations=None)


def policy(users: dict, *, state: str = mp.ENABLED, demand: mp.Demand = MFA, pid: str = "p1") -> mp.Policy:
    return mp.Policy(pid, f"Policy {pid}", state, users, demand)


def user(*usable: str, can: bool | None = True, groups=(), roles=(), user_type="Member", upn="a@contoso.com"):
    return mp.UserContext(id="u1", upn=upn, user_type=user_type, groups=frozenset(groups), roles=frozenset(roles),
                          usable=tuple(usable), can_satisfy_mfa=can)


@pytest.mark.parametrize(("users", "ctx", "inside", "why"), [
    ({"includeUsers": ["All"]}, user(), True, "all users"),
    ({"includeUsers": ["None"]}, user(), False, ""),
    ({"includeUsers": ["U1"]}, user(), True, "named in the policy"),
    # a nested group's member carries the outer group among its (transitive) groups
    ({"includeGroups": ["outer"]}, user(groups={"inner", "outer"}), True, "member of Outer"),
    ({"includeRoles": [GLOBAL_ADMIN]}, user(roles={GLOBAL_ADMIN}), True, "holds role Global Administrator"),
    ({"includeRoles": [GLOBAL_ADMIN]}, user(), False, ""),
    # exclusions win over every inclusion
    ({"includeUsers": ["All"], "excludeGroups": ["outer"]}, user(groups={"outer"}), False,
     "excluded through group Outer"),
    ({"includeUsers": ["u1"], "excludeUsers": ["u1"]}, user(), False, "excluded by name"),
    ({"includeGroups": ["outer"], "excludeRoles": [GLOBAL_ADMIN]}, user(groups={"outer"}, roles={GLOBAL_ADMIN}),
     False, "excluded through role Global Administrator"),
    # guests
    ({"includeGuestsOrExternalUsers": GUESTS}, user(user_type="Guest", upn="p_f.com#EXT#@contoso.com"), True,
     "guest or external user"),
    ({"includeGuestsOrExternalUsers": GUESTS}, user(), False, ""),
    ({"includeUsers": ["All"], "excludeGuestsOrExternalUsers": GUESTS}, user(user_type="Guest"), False,
     "excluded as a guest or external user"),
    ({"includeUsers": ["GuestsOrExternalUsers"]}, user(user_type="Guest"), True, "guest or external user"),
])
def test_scope(users, ctx, inside, why):
    names = {"outer": "Outer", GLOBAL_ADMIN: "Global Administrator"}
    assert mp.scope(users, ctx, names) == (inside, why)


@pytest.mark.parametrize(("sid", "usable", "ok"), [
    (STRENGTH_MFA, (F.PHONE,), True),
    (STRENGTH_MFA, (F.AUTHENTICATOR,), True),
    (STRENGTH_PASSWORDLESS, (F.AUTHENTICATOR,), False),
    (STRENGTH_PASSWORDLESS, (F.AUTHENTICATOR_PASSWORDLESS,), True),
    (STRENGTH_PASSWORDLESS, (F.WINDOWS_HELLO,), True),
    (STRENGTH_PHISHING_RESISTANT, (F.AUTHENTICATOR_PASSWORDLESS, F.PHONE), False),
    (STRENGTH_PHISHING_RESISTANT, (F.FIDO2,), True),
    (STRENGTH_PHISHING_RESISTANT, (F.PLATFORM,), True),
    (STRENGTH_PHISHING_RESISTANT, (F.SOFTWARE_OATH, F.HARDWARE_OATH), False),
])
def test_strengths_against_methods(sid, usable, ok):
    answer, detail = mp.meets(strength(sid), user(*usable))
    assert answer is ok, detail
    if not ok:
        assert BUILT_IN_STRENGTHS[sid]["displayName"] in detail


def test_not_capable_outweighs_the_methods_and_unknown_stays_unknown():
    assert mp.meets(MFA, user(F.AUTHENTICATOR, can=False))[0] is False
    assert mp.meets(strength(STRENGTH_MFA), user(F.FIDO2, can=False))[0] is False
    assert mp.meets(MFA, user(can=None)) == (None, "methods not evaluated")


def test_demand_from_grant_controls():
    assert mp.demand_from(built_in_controls=("block",), operator="OR", strength_id=None, strength_name=None,
                          combinations=None).kind == "block"
    either = mp.demand_from(built_in_controls=("mfa", "compliantDevice"), operator="OR", strength_id=None,
                            strength_name=None, combinations=None)
    assert either.kind == "mfa" and either.alternatives == ("compliantDevice",)
    both = mp.demand_from(built_in_controls=("mfa", "compliantDevice"), operator="AND", strength_id=None,
                          strength_name=None, combinations=None)
    assert both.alternatives == ()
    odd = mp.demand_from(built_in_controls=("mfa", "quantumControl"), operator="OR", strength_id=None,
                         strength_name=None, combinations=None)
    assert odd.kind == "mfa" and "Unknown grant control 'quantumControl'" in odd.problems[0]
    gone = mp.demand_from(built_in_controls=(), operator="OR", strength_id="s-x", strength_name=None,
                          combinations=None)
    assert gone.kind == "strength" and "could not be read" in gone.problems[0]
    assert mp.meets(gone, user(F.FIDO2)) == (None, "strength unreadable")


def test_only_enabled_policies_enforce():
    everyone = {"includeUsers": ["All"]}
    weak = user(can=False)
    for state in (mp.REPORT_ONLY, mp.DISABLED):
        result = mp.evaluate(weak, [policy(everyone, state=state)])
        assert result.outcome == O.NOT_COVERED
        assert result.hits[0].status == "interrupted"  # evaluated and shown, not enforcing
    report_only = mp.evaluate(weak, [policy(everyone, state=mp.REPORT_ONLY)])
    assert any("Report-only" in r and "not enforced" in r for r in report_only.reasons)
    enforced = mp.evaluate(weak, [policy(everyone)])
    assert enforced.outcome == O.INTERRUPTED and "no usable MFA method" in enforced.reasons[0]
    assert mp.evaluate(user(F.AUTHENTICATOR), [policy(everyone)]).outcome == O.ABLE


def test_one_policy_the_user_cannot_meet_interrupts_even_when_another_is_met():
    admin = user(F.AUTHENTICATOR, roles={GLOBAL_ADMIN})
    result = mp.evaluate(admin, [
        policy({"includeUsers": ["All"]}, pid="all"),
        policy({"includeRoles": [GLOBAL_ADMIN]}, demand=strength(STRENGTH_PHISHING_RESISTANT), pid="admins"),
    ])
    assert result.outcome == O.INTERRUPTED
    assert {h.policy_id: h.status for h in result.hits} == {"all": "able", "admins": "interrupted"}
    assert result.key() == ",all=able,admins=interrupted,"


def test_block_policies_are_listed_but_decide_nothing_about_mfa():
    block = mp.demand_from(built_in_controls=("block",), operator="OR", strength_id=None, strength_name=None,
                           combinations=None)
    result = mp.evaluate(user(), [policy({"includeUsers": ["All"]}, demand=block)])
    assert result.outcome == O.NOT_COVERED and result.hits[0].status == "other"


def test_security_defaults_ask_for_the_authenticator():
    assert mp.evaluate(user(F.AUTHENTICATOR), [], security_defaults=True).outcome == O.ABLE
    sms = mp.evaluate(user(F.PHONE), [], security_defaults=True)
    assert sms.outcome == O.INTERRUPTED and "Microsoft Authenticator" in sms.reasons[0]
    assert mp.evaluate(user(F.PHONE), [], security_defaults=False).outcome == O.NOT_COVERED


def test_not_evaluated_users_are_never_guessed():
    result = mp.evaluate(user(can=None), [policy({"includeUsers": ["All"]})])
    assert result.outcome == O.NOT_EVALUATED
    assert mp.evaluate(user(can=None), []).outcome == O.NOT_COVERED


@pytest.mark.parametrize(("predicted", "evidence", "verdict"), [
    ("interrupted", "reportOnlyInterrupted", "agrees"),
    ("able", "reportOnlyInterrupted", "prompted (able to answer)"),
    ("able", "reportOnlySuccess", "agrees"),
    ("interrupted", "reportOnlySuccess", "disagrees"),
    ("able", "reportOnlyFailure", "disagrees"),
    ("able", "reportOnlyNotApplied", "not applied"),
    ("able", "", "no evidence"),
    ("able", "somethingNew", "unknown result"),
])
def test_sign_in_evidence_against_the_prediction(predicted, evidence, verdict):
    assert mp.agreement(predicted, evidence) == verdict


def test_legacy_per_user_mfa_covers_a_user_no_policy_covers():
    for state, outcome in (("enforced", O.ABLE), ("enabled", O.ABLE), ("disabled", O.NOT_COVERED)):
        result = mp.evaluate(mp.UserContext(id="u1", usable=(F.PHONE,), can_satisfy_mfa=True, per_user_mfa=state), [])
        assert result.outcome == outcome
    weak = mp.evaluate(mp.UserContext(id="u1", can_satisfy_mfa=False, per_user_mfa="enforced"), [])
    assert weak.outcome == O.INTERRUPTED and weak.hits[0].name == "Per-user MFA (legacy, enforced)"


def test_users_alike_in_what_the_policies_look_at_share_one_evaluation(monkeypatch):
    """The snapshot's Evaluator: the same answer as evaluate() for every user, worked out once per context (the
    groups and roles the policies name, named or not, guest kind, usable methods, per-user MFA)."""
    policies = [
        policy({"includeUsers": ["All"], "excludeGroups": ["breakglass"]}, pid="all"),
        policy({"includeGroups": ["pilot"], "excludeUsers": ["u7"]}, demand=strength(STRENGTH_PHISHING_RESISTANT),
               state=mp.REPORT_ONLY, pid="pilot"),
        policy({"includeRoles": [GLOBAL_ADMIN]}, demand=strength(STRENGTH_PHISHING_RESISTANT), pid="admins"),
        policy({"includeGuestsOrExternalUsers": GUESTS}, pid="guests"),
    ]
    names = {"pilot": "Pilot", "breakglass": "Break glass", GLOBAL_ADMIN: "Global Administrator"}
    population = []
    for n in range(400):
        population.append(mp.UserContext(
            id=f"U{n}", upn=f"p{n}#EXT#@contoso.com" if n % 13 == 0 else f"u{n}@contoso.com",
            user_type="Guest" if n % 13 == 0 else "Member",
            groups=frozenset({"pilot", f"dept{n % 5}"} if n % 3 == 0 else {f"dept{n % 5}"}
                             | ({"breakglass"} if n == 11 else set())),
            roles=frozenset({GLOBAL_ADMIN} if n % 50 == 0 else ()),
            usable=((F.FIDO2,), (F.PHONE,), (F.AUTHENTICATOR,), ())[n % 4], can_satisfy_mfa=n % 4 != 3 or None,
            per_user_mfa="enforced" if n == 20 else ""))
    expected = [mp.evaluate(ctx, policies, names=names) for ctx in population]
    scoped = []
    real_scope = mp.scope
    monkeypatch.setattr(mp, "scope", lambda *a, **k: scoped.append(1) or real_scope(*a, **k))
    evaluate = mp.Evaluator(policies, names=names)
    assert [evaluate(ctx) for ctx in population] == expected
    assert "excluded by name" in {h.why for h in evaluate(population[7]).hits}  # u7, named, kept apart
    # the departments no policy names make no difference: far fewer evaluations than users
    assert len(scoped) <= len(policies) * 40
