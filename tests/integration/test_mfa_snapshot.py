"""The MFA snapshot against the lab cloud: real msal, msgraph-sdk and httpx; the lab answers as Graph does.

The module starts its own lab cloud service (port DIROPS_TEST_MFA_CLOUD_PORT, default from
tests/support/labs.py) with its data in a temporary directory, and builds an MFA tenant in it with
portal/lab/mfa_tenant.py: the scenario seed's MFA states (cloud_seed's own builder), the field notes'
MFATest1/MFATest2 pair, users whose report row lags their registration, and bad input (a guest, a user with no
UPN, a report row for a user no longer there, a method type the lab does not model).

Paging over 100,000 users: the lab test here pages a 2,500-user tenant with 500-row pages (real
@odata.nextLink paging of users, report and audit); tests/unit/test_mfa_collect_paging.py runs the
collector over a fake of 100,000 rows; bench/mfa_snapshot.py runs it over a 100,000-user lab tenant.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from diagnostics_app.mfa.choices import MfaClass
from diagnostics_app.mfa.collect import CollectOptions, collect
from portal.connectors import graph
from portal.lab.cloud import server
from portal.lab.cloud.store import CloudStore
from portal.lab.mfa_tenant import seed_mfa_tenant
from tests.support import labs

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:GetQueryParameters is deprecated:DeprecationWarning"),
]

PORT = int(os.environ.get("DIROPS_TEST_MFA_CLOUD_PORT") or labs.own_port(labs.MFA_SNAPSHOT))


class Lab:
    def __init__(self, data_dir: Path, status: server.CloudStatus) -> None:
        self.data_dir, self.status = data_dir, status
        self.creds = server.lab_credentials(data_dir=data_dir)
        self.store = CloudStore.open(data_dir=data_dir)

    def graph(self, **overrides: Any) -> graph.EntraGraph:
        app = graph.AppCredentials(tenant_id=self.creds.tenant_id, client_id=self.creds.client_id,
                                   client_secret=self.creds.client_secret, authority_host=self.status.base_url,
                                   ca_file=str(self.status.ca_file))
        return graph.EntraGraph(graph.GraphSettings(credentials=app, graph_url=self.status.graph_url,
                                                    beta_url=self.status.graph_beta_url, **overrides))


class Recorder:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.progress_calls: list[tuple[int, int | None]] = []

    def info(self, message: str) -> None:
        self.lines.append(("info", message))

    def warning(self, message: str) -> None:
        self.lines.append(("warning", message))

    def progress(self, done: int, total: int | None = None) -> None:
        self.progress_calls.append((done, total))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, dict]]:
    data_dir = tmp_path_factory.mktemp("mfa-lab")
    status = server.start(data_dir=data_dir, port=PORT, initial_domain="contoso.onmicrosoft.com")
    lab = Lab(data_dir, status)
    manifest = seed_mfa_tenant(lab.store, users=60, seed=3)
    try:
        yield lab, manifest
    finally:
        lab.store.close()
        server.stop(data_dir=data_dir)


@pytest.fixture(autouse=True)
def _clean(lab: tuple[Lab, dict]) -> Iterator[None]:
    store = lab[0].store
    store.clear_faults()
    yield
    store.clear_faults()
    store.update_settings(premium_licence=True)


def _now() -> datetime:
    return datetime.now(UTC)


def test_field_notes_pair_told_apart_by_the_audit_trail(lab):
    lab, manifest = lab
    ok, broken = manifest["field_notes"]["verified"], manifest["field_notes"]["unverified"]
    with lab.graph() as client:
        # what every report and script showed: the same methods, the same report row
        methods = {uid: [(m.method, m.details.get("deviceTag"), m.details.get("clientAppName"))
                         for m in client.user_auth_methods(uid)] for uid in (ok, broken)}
        assert methods[ok] == methods[broken] == [("password", None, None), (
            "microsoftAuthenticator", "SoftwareTokenActivated", "microsoftAuthenticator")]
        rows = {r.id: r for r in client.user_registration_details(filter=graph.odata_in("id", [ok, broken]))}
        strip = lambda r: (r.is_mfa_registered, r.is_mfa_capable, r.methods_registered)  # noqa: E731
        assert strip(rows[ok]) == strip(rows[broken]) == (True, True, ("microsoftAuthenticatorPush",
                                                                       "softwareOneTimePasscode"))
        result = collect(client, now=_now())
    good, bad = result.users[ok], result.users[broken]
    assert good.verdict.classification == MfaClass.MFA_CAPABLE and good.verdict.can_satisfy_mfa
    assert bad.verdict.classification == MfaClass.NOT_USABLE and bad.verdict.can_satisfy_mfa is False
    assert {e.kind for e in good.events} == {"app_detail", "started", "registered", "registered_all"}
    assert {e.kind for e in bad.events} == {"app_detail"}
    text = " ".join(bad.verdict.reasons)
    assert "Azure MFA StrongAuthenticationService" in text and "no 'User registered security info'" in text
    assert "report says MFA capable; the audit trail contradicts it" in text


def test_snapshot_classifies_the_seeded_states_and_keeps_bad_input(lab):
    lab, manifest = lab
    recorder = Recorder()
    with lab.graph() as client:
        result = collect(client, now=_now(), reporter=recorder)
    states = manifest["states"]
    expect = {"mfa_authenticator_verified": {MfaClass.MFA_CAPABLE},
              "mfa_authenticator_unverified": {MfaClass.NOT_USABLE},
              "mfa_sms_only": {MfaClass.SMS_VOICE_ONLY}, "mfa_fido2": {MfaClass.PASSWORDLESS},
              "mfa_admin_weak": {MfaClass.ADMIN_NO_STRONG}, "mfa_none": {MfaClass.NOT_REGISTERED},
              "unregistered": {MfaClass.NOT_REGISTERED}, "mfa_admin_strong": {MfaClass.MFA_CAPABLE},
              "mfa_reregister_required": {MfaClass.NOT_REGISTERED}}
    stale = set(manifest["stale"])
    for state, classes in expect.items():
        for uid in states[state]:
            if uid not in stale:
                assert result.users[uid].verdict.classification in classes, (state, result.users[uid].verdict)
    # the report lagged for these users: their methods were read, and they classify from what Graph holds now
    for uid in stale:
        assert result.users[uid].question == "report older than the audit" and result.users[uid].methods is not None
        assert result.users[uid].verdict.classification in (MfaClass.MFA_CAPABLE, MfaClass.SMS_VOICE_ONLY)
    bad = manifest["bad_input"]
    assert "guest" in result.users[bad["guest"]].verdict.flags
    assert "no_upn" in result.users[bad["no_upn"]].verdict.flags
    assert result.users[bad["deleted"]].facts.deleted and "deleted_during_snapshot" in result.users[
        bad["deleted"]].verdict.flags
    odd = result.users[bad["unknown_method"]]
    assert odd.question == "unknown method name" and "unknown_method:quantumPasskey" in odd.verdict.flags
    assert odd.verdict.classification == MfaClass.PASSWORDLESS
    # bounded: per-user reads only for the questions, and the job can say how many calls it made
    # ...and for the passes the report lists without saying whether they are usable
    # an administrator required re-registration after the report was computed: the audit outweighs the report
    rereg = states["mfa_reregister_required"]
    assert rereg, "the tenant seeds users an administrator required to register again"
    for uid in rereg:
        user = result.users[uid]
        assert user.question == "report older than the audit" and user.report.is_mfa_capable
        assert "reregistration_required" in user.verdict.flags and user.verdict.can_satisfy_mfa is False
        assert any("Admin deleted security info" in r for r in user.verdict.reasons)
    assert result.methods_read == len(stale) + len(rereg) + 1 + 2
    usable_tap, expired_tap = result.users[bad["tap_usable"]], result.users[bad["tap_expired"]]
    assert usable_tap.question == "temporary access pass" and usable_tap.verdict.can_satisfy_mfa
    assert "tap_only" in usable_tap.verdict.flags
    assert expired_tap.verdict.can_satisfy_mfa is False and any("Expired" in r for r in expired_tap.verdict.reasons)
    assert result.users[bad["office_phone"]].verdict.classification == MfaClass.SMS_VOICE_ONLY
    phases = result.phases
    assert phases["methods"]["calls"] == 1  # one $batch post
    # $count, the groups, then one round: users, report, the ten audit listings and the groups' members, one page
    # each, in one $batch post
    assert "groups" not in phases and result.groups
    posts = -(-(12 + len(result.groups)) // 20)  # one round: $batch posts of 20 requests at most
    assert phases["listings"]["calls"] == 2 + posts and result.report_rows > 0 and result.audit_events > 0
    assert result.graph_calls["requests"] == sum(p["calls"] for p in phases.values())
    assert any("Graph calls" in m for _, m in recorder.lines)


def test_a_429_storm_during_the_snapshot_is_ridden_out(lab):
    lab, _ = lab
    with lab.graph() as client:
        calm = collect(client, now=_now())
    lab.store.set_faults(throttle=5, retry_after=1, scope="graph")
    with lab.graph() as client:  # default retries (5): the first request is answered 429 five times
        stormy = collect(client, now=_now())
    assert lab.store.settings().throttle_remaining == 0
    assert stormy.graph_calls["throttled"] == 5
    assert stormy.graph_calls["requests"] == calm.graph_calls["requests"] + 5
    assert {u: r.verdict.classification for u, r in stormy.users.items()} == {
        u: r.verdict.classification for u, r in calm.users.items()}


def test_without_the_premium_licence_it_says_so_and_reads_a_bounded_set(lab):
    lab, manifest = lab
    lab.store.update_settings(premium_licence=False)
    recorder = Recorder()
    with lab.graph() as client:
        result = collect(client, now=_now(), reporter=recorder,
                         options=CollectOptions(fallback_limit=25))
    assert result.licence_missing and "no Microsoft Entra ID P1 or P2 licence" in result.licence_message
    assert ("warning", next(m for lvl, m in recorder.lines if "P1 or P2" in m)) in recorder.lines
    assert result.methods_read == 25 and result.methods_skipped > 0
    evaluated = [r for r in result.users.values() if r.methods is not None]
    assert len(evaluated) == 25 and all(r.report is None for r in result.users.values())
    assert sum(1 for r in result.users.values() if r.verdict.classification == MfaClass.NOT_EVALUATED) == len(
        result.users) - 25
    assert recorder.progress_calls[-1] == (25, 25)
    # without the audit trail's usability check the methods list still decides the rest
    assert {r.verdict.classification for r in evaluated} <= set(MfaClass)


def test_real_paging_over_a_larger_tenant(tmp_path):
    status = server.start(data_dir=tmp_path, port=PORT + 1, initial_domain="contoso.onmicrosoft.com")
    lab = Lab(tmp_path, status)
    try:
        manifest = seed_mfa_tenant(lab.store, users=2_500, seed=5, bad_input=False)
        with lab.graph(page_size=500) as client:
            result = collect(client, now=_now(), options=CollectOptions(read_groups=False))
        assert len(result.users) == 2_502  # plus the field notes' pair
        # users and report are 6 pages of 500 each, the audit listings fewer: 6 rounds, one $batch post each
        assert result.phases["listings"]["calls"] == 1 + 6 and result.report_rows == 2_502
        assert result.audit_events > 2_500
        counts = result.counts()
        assert counts[MfaClass.NOT_USABLE] >= manifest["counts"]["mfa_authenticator_unverified"]
    finally:
        lab.store.close()
        server.stop(data_dir=tmp_path)


# ---- the job and its pages, through the portal (Django) ----------------------------------------------------


@pytest.fixture
def lab_graph(lab, monkeypatch):
    lab_obj, manifest = lab

    @contextmanager
    def fake_registry():
        with lab_obj.graph() as client:
            yield client

    monkeypatch.setattr("diagnostics_app.mfa.jobs.entra_graph", fake_registry)
    return lab_obj, manifest


@pytest.mark.django_db(transaction=True)
def test_snapshot_job_stores_history_and_the_report_shows_it(lab_graph, role_users, client):
    from diagnostics_app.mfa.services import do_start_snapshot
    from diagnostics_app.models import MfaSnapshot
    from portal.jobs.services import run_job_inline

    lab, manifest = lab_graph
    admin = role_users["Administrator"]
    job = run_job_inline(do_start_snapshot(user=admin, enqueue=False))
    assert job.status in ("succeeded", "warnings"), job.error
    assert job.result["graph_calls"]["requests"] > 0 and "Graph calls" in job.summary
    lines = list(job.log_lines.values_list("message", flat=True))
    assert any("Registration report" in m for m in lines) and any("Graph calls" in m for m in lines)
    lab.store.update_settings(premium_licence=False)
    job2 = run_job_inline(do_start_snapshot(user=admin, enqueue=False, fallback_limit=10))
    assert job2.result["licence_missing"] is True
    assert MfaSnapshot.objects.count() == 2
    latest = MfaSnapshot.objects.first()
    assert latest.status == "fallback" and latest.methods_read == 10
    # conditional access needs the same licence: said plainly, the rest of the report still produced
    assert not latest.policies_read and "Entra ID P1" in latest.policies_message
    client.force_login(role_users["Auditor"])
    page = client.get("/diagnostics/mfa/").content.decode()
    assert "No premium licence" in page and "P1 or P2" in page
    first = MfaSnapshot.objects.last()
    broken = first.rows.get(user_id=manifest["field_notes"]["unverified"])
    detail = client.get(f"/diagnostics/mfa/users/{broken.pk}/").content.decode()
    assert "Registered but not usable" in detail and "Authenticator app details stamped" in detail


def test_mfa_snapshot_command_prints_json(lab_graph, transactional_db, capsys):
    import json

    from django.core.management import call_command

    call_command("mfa_snapshot", "--json", "--method-read-limit", "5")
    data = json.loads(capsys.readouterr().out)
    assert data["status"] in ("succeeded", "warnings") and data["users"] > 60
    assert data["graph_calls"]["requests"] > 0 and data["methods_read"] <= 5


@pytest.mark.django_db(transaction=True)
def test_conditional_access_is_read_evaluated_per_user_and_shown(lab_graph, role_users, client):
    """The seeded policies (portal/lab/ca_seed.py): a role-targeted phishing-resistant policy,
    a pilot group with a nested group and a break-glass exclusion, a report-only all-users policy, a disabled
    one, a guests policy, a block. Only enabled ones decide the outcome."""
    from diagnostics_app.mfa.services import do_start_snapshot
    from diagnostics_app.models import MfaPolicy, MfaSnapshot
    from portal.jobs.services import run_job_inline

    lab, manifest = lab_graph
    ca = manifest["conditional_access"]
    job = run_job_inline(do_start_snapshot(user=role_users["Administrator"], enqueue=False))
    assert job.status in ("succeeded", "warnings"), job.error
    snapshot = MfaSnapshot.objects.first()
    assert snapshot.policies_read and snapshot.security_defaults is False
    policies = {p.policy_id: p for p in MfaPolicy.objects.filter(snapshot=snapshot)}
    assert {p.state for p in policies.values()} == {"enabled", "enabledForReportingButNotEnforced", "disabled"}
    pilot = policies[ca["policies"]["pilot"]]
    assert any("no longer exists" in p for p in pilot.problems) and any("not in the directory" in p
                                                                          for p in pilot.problems)
    rows = {r.user_id: r for r in snapshot.rows.all()}
    # the nested group's members are covered by the pilot policy through the outer group
    for uid in ca["groups"]["nested_members"]:
        hit = next(h for h in rows[uid].policy_hits if h["policy_id"] == pilot.policy_id)
        assert hit["in_scope"] and "CA pilot" in hit["why"]
        assert rows[uid].policy_outcome == ("covered_able" if rows[uid].can_satisfy_mfa else "covered_interrupted")
    # the break-glass member is excluded, the exclusion winning over the pilot group
    for uid in ca["groups"]["excluded"]:
        hit = next(h for h in rows[uid].policy_hits if h["policy_id"] == pilot.policy_id)
        assert not hit["in_scope"] and "break glass" in hit["why"]
    # MFATest1 holds Global Administrator: Authenticator only, so the phishing-resistant strength interrupts
    admin = rows[manifest["field_notes"]["verified"]]
    assert admin.can_satisfy_mfa and admin.policy_outcome == "covered_interrupted"
    assert "Phishing-resistant MFA accepts" in " ".join(admin.policy_reasons)
    # the report-only all-users policy never makes anyone covered
    broken = rows[manifest["field_notes"]["unverified"]]
    assert broken.policy_outcome == "not_covered" and any("Report-only" in r for r in broken.policy_reasons)
    # legacy per-user MFA asks these users for MFA although no enabled policy covers them
    for uid in ca["per_user_mfa"]:
        hit = rows[uid].policy_hits[0]
        assert hit["name"].startswith("Per-user MFA (legacy") and rows[uid].policy_outcome != "not_covered"
    per_user = job.result["phases"]["per_user_mfa"]
    assert per_user["items"] > 0
    assert per_user["calls"] <= -(-per_user["items"] // 20), "read 20 users to a $batch call, not one call each"
    all_users = policies[ca["policies"]["all_users"]]
    assert all_users.interrupted > 0 and all_users.state == "enabledForReportingButNotEnforced"

    client.force_login(role_users["Auditor"])
    listing = client.get(f"/diagnostics/mfa/policies/?snapshot={snapshot.pk}").content.decode()
    assert "Admins: phishing-resistant MFA" in listing and "Report-only" in listing and "Disabled" in listing
    page = client.get(f"/diagnostics/mfa/policies/{policies[ca['policies']['admins']].pk}/?status=interrupted")
    text = page.content.decode()
    assert page.status_code == 200 and "mfatest1@contoso.com" in text and "fido2" in text
    user_page = client.get(f"/diagnostics/mfa/users/{admin.pk}/").content.decode()
    assert "Covered, will be interrupted" in user_page and "holds role Global Administrator" in user_page
    export = client.get(f"/diagnostics/mfa/policies/{all_users.pk}/?export=csv&status=interrupted")
    body = b"".join(export.streaming_content).decode()
    assert body.splitlines()[0].startswith("policy,policy_state,demand,upn")
    assert len(body.splitlines()) == all_users.interrupted + 1

    # readiness of the report-only policy: the prediction against the sign-in logs' report-only results
    from diagnostics_app.mfa.policy_selectors import policy_readiness

    ready = policy_readiness(snapshot, existing=all_users, list_limit=None)
    assert ready.interrupted_total == all_users.interrupted and ready.with_evidence > 0
    assert ready.evidence.get("agrees", 0) > 0 and ready.evidence.get("disagrees", 0) == 0
    assert any(u["user_id"] == manifest["field_notes"]["unverified"] and "user action required" in u["evidence"]
               for u in ready.interrupted)
    text = client.get("/diagnostics/mfa/policies/readiness/", {"snapshot": snapshot.pk,
                                                               "policy": all_users.pk}).content.decode()
    assert "Sign-in evidence against the prediction" in text and "mfatest2@contoso.com" in text
    hypothetical = policy_readiness(snapshot, demand_key="00000000-0000-0000-0000-000000000004", list_limit=None)
    assert not hypothetical.with_evidence and hypothetical.interrupted_total > all_users.interrupted

    # the command line: one policy's users, by name, as JSON; an unknown policy is said plainly
    import json

    from django.core.management import CommandError, call_command

    out = io.StringIO()
    call_command("mfa_report", "--policy", "all users: require mfa", "--status", "interrupted", "--format", "json",
                 stdout=out)
    data = json.loads(out.getvalue())
    assert data["state"] == "enabledForReportingButNotEnforced" and len(data["users"]) == all_users.interrupted
    assert {u["status"] for u in data["users"]} == {"interrupted"}
    with pytest.raises(CommandError, match="has no policy 'Nope'.*All users: require MFA"):
        call_command("mfa_report", "--policy", "Nope")


@pytest.mark.django_db(transaction=True)
def test_approved_waves_become_security_groups_in_the_lab_and_a_rerun_changes_nothing(lab_graph, role_users):
    """Readiness of the lab tenant split into waves of at most 7 users; approved by another person, the job
    creates one cloud security group per wave (POST /groups, members/$ref); run again, it writes nothing."""
    from diagnostics_app.mfa import selectors
    from diagnostics_app.mfa.services import do_start_snapshot
    from diagnostics_app.mfa.wave_services import do_approve_wave_groups, do_request_wave_groups
    from diagnostics_app.models import MfaSnapshot
    from portal.jobs.services import do_start_job, run_job_inline

    lab, _ = lab_graph
    admin, approver = role_users["Administrator"], role_users["Approver"]
    assert run_job_inline(do_start_snapshot(user=admin, enqueue=False)).status in ("succeeded", "warnings")
    snapshot = MfaSnapshot.objects.first()
    result = selectors.readiness(snapshot, wave_by="department", list_limit=0)
    req = do_request_wave_groups(snapshot=snapshot, scope=result.scope, group_id="", wave_by="department",
                                 max_size=7, buckets=selectors.wave_buckets(result), shown_hash="", user=admin)
    req = do_approve_wave_groups(req=req, user=approver, shown_hash=req.plan_hash, enqueue=False)
    created: list[str] = []
    try:
        job = run_job_inline(req.job)
        req.refresh_from_db()
        created = [w["group_id"] for w in req.report["waves"].values()]
        assert job.status == "succeeded", job.error
        assert len(created) == len(req.waves) and all(w["created"] for w in req.report["waves"].values())
        with lab.graph() as g:
            for wave in req.waves:
                gid = req.report["waves"][str(wave["number"])]["group_id"]
                group = g.get_group(gid)
                assert group.display_name == wave["group_name"] and group.security_enabled and not group.mail_enabled
                members = {m.id.lower() for m in g.iter_group_members(gid, select=["id"])}
                assert members == {u.lower() for u in wave["user_ids"]} and len(members) <= 7
        # Re-run (e.g. after a failure elsewhere): found by nickname, nothing created, added or removed.
        before = len(lab.store.list_audit_events(limit=100_000).items)
        again = run_job_inline(do_start_job(kind="mfa_wave_groups", user=admin, params={"wave_groups": req.pk},
                                            target="re-run", enqueue=False))
        assert again.status == "succeeded", again.error
        assert again.result["created"] == 0 and again.result["added"] == 0 and again.result["removed"] == 0
        assert len(lab.store.list_audit_events(limit=100_000).items) == before
    finally:
        with lab.graph() as g:
            for gid in created:
                g.delete_group(gid)
