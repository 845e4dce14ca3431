"""Every method type Graph documents, as the classification and the policy evaluation see it: a Temporary
Access Pass counts only while usable (isUsable), phone types, hardware OATH, passkeys in Authenticator, email
for SSPR only, unknown types kept and marked; "not capable" in the registration report outweighs a methods
list (unless the report is older than the audit trail)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from diagnostics_app.mfa import classify as mc
from diagnostics_app.mfa import policies as mp
from diagnostics_app.mfa.choices import MethodFamily as F
from diagnostics_app.mfa.choices import MfaClass as C
from portal.connectors.graph.policies import BUILT_IN_STRENGTHS, STRENGTH_MFA, STRENGTH_PHISHING_RESISTANT

USER = mc.UserFacts(id="u1", upn="a@contoso.com", user_type="Member", enabled=True)
PASSWORD = mc.Method("p", "password")


def graph_method(kind: str, **details) -> mc.Method:
    return mc.method_from(SimpleNamespace(id=f"m-{kind}", method=kind, display_name=None, created=None,
                                          details=details))


def tap(usable: bool) -> mc.Method:
    return graph_method("temporaryAccessPass", isUsable=usable, isUsableOnce=True, lifetimeInMinutes=60,
                        startDateTime="2026-12-01T09:00:00Z",
                        methodUsabilityReason=None if usable else "Expired")


def test_a_usable_tap_answers_mfa_and_an_expired_one_does_not():
    ok = mc.classify(USER, None, (), [PASSWORD, tap(True)])
    assert ok.classification == C.MFA_CAPABLE and ok.can_satisfy_mfa and "tap_only" in ok.flags
    assert ok.usable == (F.TAP,) and any("one-time pass, 60 minutes" in r for r in ok.reasons)
    gone = mc.classify(USER, None, (), [PASSWORD, tap(False)])
    assert gone.can_satisfy_mfa is False and F.TAP not in gone.usable
    assert any("not usable (Expired)" in r for r in gone.reasons)
    # the strengths accept a usable pass as MFA, never as phishing-resistant
    ctx = mp.UserContext(id="u1", usable=ok.usable, can_satisfy_mfa=True)
    for sid, expected in ((STRENGTH_MFA, True), (STRENGTH_PHISHING_RESISTANT, False)):
        body = BUILT_IN_STRENGTHS[sid]
        demand = mp.demand_from(built_in_controls=(), operator="OR", strength_id=sid,
                                strength_name=body["displayName"], combinations=body["allowedCombinations"])
        assert mp.meets(demand, ctx)[0] is expected


@pytest.mark.parametrize(("method", "family", "note"), [
    (graph_method("phone", phoneType="office"), F.PHONE, "office phone (voice only)"),
    (graph_method("phone", phoneType="alternateMobile"), F.PHONE, "alternate mobile (SMS and voice)"),
    (graph_method("fido2", model="Microsoft Authenticator - iOS"), F.FIDO2, "passkey in Microsoft Authenticator"),
    (graph_method("hardwareOath"), F.HARDWARE_OATH, ""),
    (graph_method("softwareOath"), F.SOFTWARE_OATH, ""),
    (graph_method("windowsHelloForBusiness"), F.WINDOWS_HELLO, ""),
    (graph_method("platformCredential"), F.PLATFORM, ""),
    (graph_method("email"), F.EMAIL, "self-service password reset only, never a second factor"),
    (graph_method("quantumPasskey"), F.UNKNOWN, ""),
])
def test_each_method_type_has_its_family_and_note(method, family, note):
    assert mc.method_family(method.type) == family
    assert method.note == note


def test_email_alone_is_not_mfa_and_unknown_types_are_kept_and_marked():
    email = mc.classify(USER, None, (), [PASSWORD, graph_method("email")])
    assert email.classification == C.NOT_REGISTERED and email.can_satisfy_mfa is False
    odd = mc.classify(USER, None, (), [PASSWORD, graph_method("quantumPasskey")])
    assert "unknown_method:quantumPasskey" in odd.flags and odd.registered == (F.UNKNOWN,)


def report(*, capable: bool, updated: datetime) -> mc.ReportRow:
    return mc.ReportRow(is_admin=False, is_mfa_registered=True, is_mfa_capable=capable,
                        is_passwordless_capable=False, methods_registered=("microsoftAuthenticatorPush",),
                        last_updated=updated)


def test_not_capable_in_the_report_outweighs_a_methods_list():
    methods = [PASSWORD, mc.Method("a", "microsoftAuthenticator")]
    updated = datetime(2026, 12, 1, 12, tzinfo=UTC)
    verdict = mc.classify(USER, report(capable=False, updated=updated), (), methods)
    assert verdict.classification == C.NOT_CAPABLE_POLICY and verdict.can_satisfy_mfa is False
    assert "outweighs the methods list" in verdict.reasons[0]
    # ...unless the report is older than the user's latest registration (the report lags up to a day)
    later = mc.Event(id="e", time=datetime(2026, 12, 1, 13, tzinfo=UTC), activity="User registered security info",
                     kind="registered")
    fresh = mc.classify(USER, report(capable=False, updated=updated), (later,), methods)
    assert fresh.classification == C.MFA_CAPABLE and fresh.can_satisfy_mfa
