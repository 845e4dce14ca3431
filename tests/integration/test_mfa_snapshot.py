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

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from diagnostics_app.choices import MfaClass
from diagnostics_app.mfa_collect import CollectOptions, collect
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
              "unregistered": {MfaClass.NOT_REGISTERED}, "mfa_admin_strong": {MfaClass.MFA_CAPABLE}}
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
    assert result.methods_read == len(stale) + 1
    phases = result.phases
    assert phases["methods"]["calls"] == 1  # one $batch post
    assert phases["report"]["calls"] == 1 and phases["users"]["calls"] == 2  # $count + one page
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
        assert result.phases["users"]["calls"] == 1 + 6 and result.phases["report"]["calls"] == 6
        assert result.phases["audit"]["items"] > 2_500
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

    monkeypatch.setattr("diagnostics_app.jobs.entra_graph", fake_registry)
    return lab_obj, manifest


@pytest.mark.django_db(transaction=True)
def test_snapshot_job_stores_history_and_the_report_shows_it(lab_graph, role_users, client):
    from diagnostics_app.models import MfaSnapshot
    from diagnostics_app.services import do_start_snapshot
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
