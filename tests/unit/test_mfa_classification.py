"""The MFA classification matrix (diagnostics_app/mfa/classify.py): pure inputs, a class and its reasons out."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import orjson
import pytest

from diagnostics_app.mfa import classify as mc
from diagnostics_app.mfa.choices import MfaClass as C
from portal.bulk import json_text

T0 = datetime(2026, 11, 10, 12, 35, 33, tzinfo=UTC)
USER = mc.UserFacts(id="u1", upn="someone@contoso.com", display_name="Someone", user_type="Member", enabled=True)


def report(methods=(), *, admin=False, registered=None, capable=None, passwordless=False,
           updated=T0 + timedelta(days=1)):
    has = any(mc.report_family(m) in mc.MFA_FAMILIES for m in methods)
    return mc.ReportRow(is_admin=admin, is_mfa_registered=has if registered is None else registered,
                        is_mfa_capable=has if capable is None else capable, is_passwordless_capable=passwordless,
                        methods_registered=tuple(methods), last_updated=updated)


def app_detail(at=T0, device="iPhone 14 Pro Max", before=()):
    return mc.Event(id=f"ad-{at}", time=at, activity="Update user", kind="app_detail",
                    detail=f"Authenticator app details stamped: {device}",
                    actor="Azure MFA StrongAuthenticationService",
                    added_devices=(device,), had_devices=len(before))


def ev(kind, at, activity=""):
    return mc.Event(id=f"{kind}-{at}", time=at, activity=activity or kind, kind=kind)


PUSH = ("microsoftAuthenticatorPush", "softwareOneTimePasscode")
VERIFIED_TRAIL = (app_detail(), ev("started", T0 + timedelta(seconds=7)), ev("registered", T0 + timedelta(seconds=13)))


@pytest.mark.parametrize("name,rep,events,methods,expected,can", [
    ("authenticator verified", report(PUSH), VERIFIED_TRAIL, None, C.MFA_CAPABLE, True),
    ("authenticator never verified (field notes' MFATest2)", report(PUSH), (app_detail(),), None, C.NOT_USABLE, False),
    ("started, never completed", report(PUSH), (app_detail(), ev("started", T0 + timedelta(seconds=7))), None,
     C.NOT_USABLE, False),
    ("unverified device but SMS registered too", report((*PUSH, "mobilePhone")), (app_detail(),), None,
     C.SMS_VOICE_ONLY, True),
    ("second device added to a working one", report(PUSH), (app_detail(before=({"Id": "x"},)),), None,
     C.MFA_CAPABLE, True),
    ("registered, policy disallows", report(("mobilePhone",), registered=True, capable=False), (), None,
     C.NOT_CAPABLE_POLICY, False),
    ("registered per report, no MFA method listed", report((), registered=True, capable=False), (), None,
     C.NOT_CAPABLE_POLICY, False),
    ("nothing registered", report(()), (), None, C.NOT_REGISTERED, False),
    ("email only (SSPR, not MFA)", report(("email",)), (), None, C.NOT_REGISTERED, False),
    ("admin with email only", report(("email",), admin=True), (), None, C.ADMIN_NO_STRONG, False),
    ("admin with SMS only", report(("mobilePhone",), admin=True), (), None, C.ADMIN_NO_STRONG, True),
    ("admin with an unverified authenticator", report(PUSH, admin=True), (app_detail(),), None, C.ADMIN_NO_STRONG,
     False),
    ("admin with FIDO2", report(("passKeyDeviceBound",), admin=True, passwordless=True), (), None, C.PASSWORDLESS,
     True),
    ("SMS only", report(("mobilePhone",)), (), None, C.SMS_VOICE_ONLY, True),
    ("voice on the office phone only", report(("officePhone",)), (), None, C.SMS_VOICE_ONLY, True),
    ("FIDO2 security key", report(("fido2SecurityKey",), passwordless=True), (), None, C.PASSWORDLESS, True),
    ("Windows Hello for Business", report(("windowsHelloForBusiness",)), (), None, C.PASSWORDLESS, True),
    ("hardware token", report(("hardwareOneTimePasscode",)), (), None, C.MFA_CAPABLE, True),
    ("methods read override a stale report", report(()),
     (), [mc.Method("p", "password"), mc.Method("a", "microsoftAuthenticator")], C.MFA_CAPABLE, True),
    ("methods read: password only", None, (), [mc.Method("p", "password")], C.NOT_REGISTERED, False),
    ("no report row, methods not read", None, (), None, C.NOT_EVALUATED, None),
])
def test_classification_matrix(name, rep, events, methods, expected, can):
    verdict = mc.classify(USER, rep, events, methods)
    assert verdict.classification == expected, (name, verdict.reasons)
    assert verdict.can_satisfy_mfa is can, name
    assert verdict.reasons, "every class says why"


def test_unverified_reason_names_the_device_the_time_and_the_contradiction():
    verdict = mc.classify(USER, report(PUSH), (app_detail(),))
    text = " ".join(verdict.reasons)
    assert "iPhone 14 Pro Max" in text and "2026-11-10 12:35 UTC" in text
    assert "no 'User registered security info'" in text
    assert "report says MFA capable" in text
    assert "unverified_authenticator" in verdict.flags
    assert [e.kind for e in verdict.evidence["events"]] == ["app_detail"]


def test_events_in_the_evidence_are_stored_as_their_fields_with_iso_times():
    verdict = mc.classify(USER, report(PUSH), (app_detail(), ev("registered", T0 + timedelta(microseconds=7))))
    stored = orjson.loads(json_text(verdict.evidence))  # as portal.bulk writes a snapshot's rows
    assert stored["events"] == [
        {"id": f"ad-{T0}", "time": "2026-11-10T12:35:33+00:00", "activity": "Update user", "kind": "app_detail",
         "detail": "Authenticator app details stamped: iPhone 14 Pro Max",
         "actor": "Azure MFA StrongAuthenticationService", "added_devices": ["iPhone 14 Pro Max"], "had_devices": 0},
        {"id": f"registered-{T0 + timedelta(microseconds=7)}", "time": "2026-11-10T12:35:33.000007+00:00",
         "activity": "registered", "kind": "registered", "detail": "", "actor": "", "added_devices": [],
         "had_devices": 0}]


def test_a_later_completed_registration_clears_an_earlier_pending_one():
    events = (app_detail(), ev("registered_all", T0 + timedelta(days=2)))
    assert mc.classify(USER, report(PUSH), events).classification == C.MFA_CAPABLE


def test_a_device_stamped_after_the_last_completion_is_pending_again():
    events = (ev("registered", T0 - timedelta(days=3)), app_detail(at=T0))
    assert mc.classify(USER, report(PUSH), events).classification == C.NOT_USABLE


def test_bad_input_is_kept_and_marked():
    odd = mc.UserFacts(id="u2", upn=None, user_type="Guest", enabled=False, deleted=True)
    verdict = mc.classify(odd, report(("quantumPasskey", "fido2SecurityKey")), (),
                          [mc.Method("q", "quantumPasskey"), mc.Method("f", "fido2")])
    assert verdict.classification == C.PASSWORDLESS
    assert {"no_upn", "guest", "deleted_during_snapshot", "disabled", "unknown_method:quantumPasskey"} <= set(
        verdict.flags)
    assert mc.method_family("somethingNew") == mc.F.UNKNOWN and mc.report_family("") == mc.F.UNKNOWN


def _audit(activity, target_id, props=(), app=None, reason="", user=None):
    target = SimpleNamespace(id=target_id, type="User", modified_properties=props)
    return SimpleNamespace(id="e1", activity=activity, activity_time=T0, result_reason=reason, initiated_by_upn=user,
                           initiated_by_app=app, initiated_by_user_id=None, targets=(target,))


def test_audit_events_become_evidence_as_the_field_notes_show_them():
    detail = [{"DeviceName": "iPhone 14 Pro Max", "Id": "6ce10fca-fb88-4109-95e4-66d27c3e9f6d",
               "LastAuthenticatedTimestamp": "2023-08-08T12:38:24.2254241Z"}]
    update = _audit("Update user", "D1BEC8BC", props=(("StrongAuthenticationPhoneAppDetail", "[]", json.dumps(detail)),
                                                       ("Included Updated Properties", None,
                                                        '"StrongAuthenticationPhoneAppDetail"')),
                    app="Azure MFA StrongAuthenticationService")
    assert mc.event_user_ids(update) == ["d1bec8bc"]
    event = mc.event_from_audit(update, "d1bec8bc")
    assert event.kind == "app_detail" and event.added_devices == ("iPhone 14 Pro Max",) and event.had_devices == 0
    default = mc.event_from_audit(_audit("Update user", "x", props=(("StrongAuthenticationMethod", "[]",
                                                                     '[{"MethodType":6,"Default":true}]'),)), "x")
    assert default.kind == "default_method_set"
    registered = mc.event_from_audit(_audit("User registered security info", "x",
                                            reason="User registered Authenticator App with Notification and Code"))
    assert registered.kind == "registered" and "Authenticator" in registered.detail
    assert mc.event_from_audit(_audit("Update user", "x", props=(("displayName", "a", "b"),)), "x") is None
    assert mc.event_from_audit(_audit("Add member to group", "x")) is None


# ------------------------------------------------------------------ re-registration required by an admin


def _method(kind, created, mid=None):
    return mc.Method(id=mid or f"{kind}-{created}", type=kind, created=created)


def test_a_reset_of_the_default_methods_is_re_registration_not_a_default_set():
    reset = mc.event_from_audit(_audit("Update user", "x", props=(
        ("StrongAuthenticationMethod", '[{"MethodType":6,"Default":true}]', "[]"),), user="admin@contoso.com"), "x")
    assert reset.kind == "reregistration_required" and reset.actor == "admin@contoso.com"
    assert mc.event_from_audit(_audit("Admin deleted security info", "x")).kind == "admin_deleted"
    # Microsoft spells the cancelled registration "canceled"; the collector asks for that name
    assert mc.event_from_audit(_audit("User canceled security info registration", "x")).kind == "cancelled"
    from diagnostics_app.mfa.collect import AUDIT_ACTIVITIES
    assert "User canceled security info registration" in AUDIT_ACTIVITIES


def test_methods_registered_before_a_required_re_registration_cannot_answer_until_the_user_registers_again():
    reset = mc.Event(id="r", time=T0 + timedelta(days=2), activity="Update user", kind="reregistration_required",
                     actor="admin@contoso.com")
    before = [_method("microsoftAuthenticator", T0), _method("phone", T0), _method("fido2", T0)]
    # the older reset left the methods listed: Authenticator and phone set aside, the FIDO2 key still answers
    v = mc.classify(USER, report(PUSH), (*VERIFIED_TRAIL, reset), before)
    assert v.classification == C.PASSWORDLESS and v.usable == (mc.F.FIDO2,)
    assert "reregistration_required" in v.flags
    assert any("registered before it cannot answer MFA until the user registers again" in r for r in v.reasons)
    # nothing else: the user must register again
    v = mc.classify(USER, report(PUSH), (*VERIFIED_TRAIL, reset), before[:2])
    assert v.classification == C.NOT_REGISTERED and v.can_satisfy_mfa is False
    assert v.reasons[0].startswith("Must register MFA again")
    # registering again (a completed registration after it) makes the new method count
    again = ev("registered", T0 + timedelta(days=3))
    v = mc.classify(USER, report(PUSH), (*VERIFIED_TRAIL, reset, again),
                    [*before[:2], _method("microsoftAuthenticator", T0 + timedelta(days=3), "new")])
    assert v.classification == C.MFA_CAPABLE and "reregistration_required" not in v.flags


def test_admin_deleted_security_info_outweighs_a_report_that_predates_it():
    deleted = mc.Event(id="d", time=T0 + timedelta(days=2), activity="Admin deleted security info",
                       kind="admin_deleted", actor="admin@contoso.com")
    stale = report(PUSH, updated=T0 + timedelta(days=1))
    v = mc.classify(USER, stale, (*VERIFIED_TRAIL, deleted))
    assert v.classification == C.NOT_REGISTERED and "reregistration_required" in v.flags
    assert any("Admin deleted security info" in r for r in v.reasons)
    # a report updated after the deletion lists what is left: it counts
    v = mc.classify(USER, report(PUSH, updated=T0 + timedelta(days=3)), (*VERIFIED_TRAIL, deleted))
    assert v.classification == C.MFA_CAPABLE
    # methods read now: what is still listed was not deleted
    v = mc.classify(USER, stale, (*VERIFIED_TRAIL, deleted), [_method("microsoftAuthenticator", T0)])
    assert v.classification == C.MFA_CAPABLE and "reregistration_required" not in v.flags


def test_times_in_reasons_read_to_the_minute_in_utc() -> None:
    started = ev("started", T0)
    verdict = mc.classify(USER, report(PUSH, updated=None), (started,), None)
    assert any("at 2026-11-10 12:35 UTC (" in reason for reason in verdict.reasons)
    # a report updated at a known time says when; an event without a time says so
    dated = mc.classify(USER, report(PUSH, updated=datetime(2026, 1, 2, 3, 4, 59, tzinfo=UTC)), (), None)
    assert dated.reasons[-1].endswith("last updated 2026-01-02 03:04 UTC.")
    undated = mc.classify(USER, report(PUSH), (ev("cancelled", None),), None)
    assert "Cancelled a security info registration at an unknown time." in undated.reasons
