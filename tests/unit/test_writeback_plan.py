"""The writeback rename plan without a directory: rows, risks, collisions, groups listed apart, versions and
their diff, four-eyes approval (database constraint included), the runbook's hard stops, verification."""

from __future__ import annotations

import struct
import uuid
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction

from diagnostics_app.models import WritebackPlan, WritebackRunbookStep
from diagnostics_app.writeback import runbook
from diagnostics_app.writeback import services as svc
from diagnostics_app.writeback.choices import PlanStatus, RowSection
from diagnostics_app.writeback.plan import CloudGroup, build_plan
from diagnostics_app.writeback.verify import verify
from portal.audit.models import AuditEvent
from portal.connectors import sync as connect_api
from portal.connectors.ad import DirectoryObject
from portal.connectors.ad.security import dacl_trustees
from tests.support.forms import form_fields

OU = "OU=GroupWriteback,DC=lab,DC=example"
SID = "S-1-5-21-1-2-3-1105"


def _oid(n: int, tail: str | None = None) -> str:
    text = f"{n:08x}-0000-4000-8000-{n:012x}"
    return text[:-12] + tail if tail else text


def _group(oid: str, name: str = "", *, dn: str | None = None, sid: str | None = None, **attrs) -> DirectoryObject:
    return DirectoryObject(dn or f"CN=Group_{oid},{OU}", uuid.uuid5(uuid.NAMESPACE_URL, oid), sid,
                           ("top", "group"), {"displayName": [name], "msDS-ExternalDirectoryObjectId": [f"Group_{oid}"],
                                              **{k: list(v) for k, v in attrs.items()}})


def _cloud(oid: str, name: str, *, mail: bool = False, unified: bool = False, enabled: bool | None = True,
           target: str | None = None) -> CloudGroup:
    return CloudGroup(id=oid, display_name=name, mail_enabled=mail, security_enabled=not mail,
                      group_types=("Unified",) if unified else (), writeback_enabled=enabled,
                      on_premises_group_type=target)


def _built():
    a, b, c, d, e, f = (_oid(n) for n in range(1, 7))
    twin1, twin2 = _oid(7, "00000000abcd"), _oid(8, "00000000abcd")
    in_ou = [
        DirectoryObject(OU, None, None, ("organizationalUnit",), {}),
        _group(a, "Sales", sid=SID, memberOf=[f"CN=All Staff,{OU}"], managedObjects=["CN=Share,DC=lab,DC=example"]),
        _group(b, "old"),  # the cloud group is called something else now: the cloud name wins
        _group(c, "m365"),
        _group(d, "gone"),  # no cloud group
        _group(e, "off"),  # writeback turned off for the group
        _group(twin1, "x"), _group(twin2, "y"),
        DirectoryObject(f"CN=Hand made,{OU}", uuid.uuid4(), None, ("top", "contact"), {}),
    ]
    outside = [_group(f, "elsewhere", dn=f"CN=Group_{f},OU=Other,DC=lab,DC=example"), in_ou[1]]
    cloud = {a: _cloud(a, "Sales"), b: _cloud(b, '#1 R&D, "EMEA" ' + "x" * 60),
             c: _cloud(c, "Team", mail=True, unified=True, enabled=None), d: None,
             e: _cloud(e, "Off", enabled=False), f: _cloud(f, "Elsewhere"),
             twin1: _cloud(twin1, "Finance Team"), twin2: _cloud(twin2, "FINANCE TEAM")}
    return build_plan(container=OU, in_ou=in_ou, outside=outside, cloud=cloud,
                      acl_index={SID: ["OU=Finance,DC=lab,DC=example"]}, acl_note="ACLs read"), (a, b, c, d, e, f,
                                                                                               twin1, twin2)


def test_rows_sections_risks_and_collisions() -> None:
    built, (a, b, c, d, e, f, twin1, twin2) = _built()
    rows = {r["object_id"] or r["current_dn"]: r for r in built.rows}
    assert rows[a]["planned_dn"] == f"CN=Sales_{a[-12:]},{OU}" and rows[a]["section"] == RowSection.PLANNED
    assert {"nested", "managed_by", "acl", "manual"} <= set(rows[a]["risks"])
    assert rows[a]["risk_detail"]["acl"] == ["OU=Finance,DC=lab,DC=example"]
    assert rows[b]["truncated"] and rows[b]["planned_dn"].startswith('CN=\\#1 R&D\\, \\"EMEA\\" ')
    assert rows[c]["section"] == RowSection.PLANNED and "mail_enabled" in rows[c]["risks"]  # unset = on for M365
    assert rows[c]["cloud_sync"] == "stays" and rows[a]["cloud_sync"] == "ready"
    assert rows[d]["section"] == RowSection.NOT_JOINED and rows[e]["section"] == RowSection.WRITEBACK_DISABLED
    assert rows[f]["section"] == RowSection.OUTSIDE_OU and not rows[f]["planned_dn"]
    assert rows[f"CN=Hand made,{OU}"]["section"] == RowSection.NOT_WRITTEN_BACK
    assert rows[twin1]["collides"] and rows[twin1]["collision"]["object_ids"] == [twin2]
    assert rows[twin1]["risks"][0] == "collision" and not rows[a]["collides"]
    assert rows[twin1]["same_display_name"] == [twin2]
    assert OU not in rows and built.counts()["collisions"] == 2 and built.notes == ["ACLs read"]
    assert len([r for r in built.rows if r["object_id"] == a]) == 1  # an OU group found twice is one row


def test_the_dacl_trustees_include_object_aces() -> None:
    def sid_bytes(text: str) -> bytes:
        parts = [int(p) for p in text.split("-")[1:]]
        return bytes([parts[0], len(parts) - 2]) + parts[1].to_bytes(6, "big") + struct.pack(
            "<" + "I" * (len(parts) - 2), *parts[2:])
    plain = struct.pack("<BBHI", 0, 0, 8 + len(sid_bytes(SID)), 0x20) + sid_bytes(SID)
    other = "S-1-5-21-9-9-9-500"
    obj_ace_body = struct.pack("<I", 0x20) + struct.pack("<I", 1) + b"\x11" * 16 + sid_bytes(other)
    obj_ace = struct.pack("<BBH", 5, 0, 4 + len(obj_ace_body)) + obj_ace_body
    acl_body = plain + obj_ace
    acl = struct.pack("<BBHHH", 4, 0, 8 + len(acl_body), 2, 0) + acl_body
    sd = struct.pack("<BBHIIII", 1, 0, 0x8004, 0, 0, 0, 20) + acl
    assert dacl_trustees(sd) == {SID, other}
    assert dacl_trustees(sd[:30]) == set()  # cut short: what could be read, no crash


def test_verify_outcomes() -> None:
    a, b, c = _oid(1), _oid(2), _oid(3)
    planned = [{"object_id": o, "guid": f"g{o}", "display_name": o, "current_dn": f"CN=Group_{o},{OU}",
                "planned_dn": f"CN=N{o},{OU}"} for o in (a, b, c)]
    actual = [{"dn": f"CN=N{a},{OU}", "guid": f"g{a}", "object_id": a},
              {"dn": f"cn=group_{b},{OU.lower()}", "guid": f"g{b}", "object_id": b},
              {"dn": f"CN=Stray,{OU}", "guid": "gx", "object_id": _oid(9)}]
    outcomes = {r["object_id"]: r["outcome"] for r in verify(planned, actual)}
    assert outcomes == {a: "renamed", b: "unchanged", c: "missing", _oid(9): "unexpected"}
    assert not [r for r in verify(planned, actual, known=["gx"]) if r["outcome"] == "unexpected"]
    recreated = verify(planned[:1], [{"dn": f"CN=N{a},{OU}", "guid": "new", "object_id": a}])
    assert recreated[0]["outcome"] == "mismatched" and "deleted" in recreated[0]["note"]


# --- stored plans, approval ----------------------------------------------------------------------------------

pytestmark = pytest.mark.django_db


def _store(user=None) -> WritebackPlan:
    built, _ = _built()
    # no collisions, so the plan may be approved
    built.rows = [r for r in built.rows if not r["collides"]]
    return svc.do_store_plan(built, container=OU, user=user)


def test_versions_diff_and_supersede(role_users) -> None:
    first = _store(role_users["Administrator"])
    assert first.version == 1 and first.diff == {} and first.rows.count() == 7
    second = _store(role_users["Administrator"])
    first.refresh_from_db()
    assert second.version == 2 and second.previous == first and first.status == PlanStatus.SUPERSEDED
    assert second.diff == {"added": [], "removed": [], "changed": []} and second.plan_hash == first.plan_hash


def test_four_eyes_pinned_hash_and_expiry(role_users) -> None:
    admin, approver = role_users["Administrator"], role_users["Approver"]
    plan = svc.do_request_approval(plan=_store(admin), user=admin)
    with pytest.raises(svc.WritebackRefused, match="Four eyes"):
        svc.do_approve_plan(plan=plan, user=admin, plan_hash=plan.plan_hash)
    assert AuditEvent.objects.filter(action="writeback.plan.approve.refused", actor=admin).exists()
    with pytest.raises(svc.WritebackRefused, match="not what was requested"):
        svc.do_approve_plan(plan=plan, user=approver, plan_hash="0" * 64)
    plan = svc.do_approve_plan(plan=plan, user=approver, plan_hash=plan.plan_hash, valid_for=timedelta(hours=2))
    assert plan.status == PlanStatus.APPROVED and plan.approved_hash == plan.plan_hash
    assert runbook.approval_problem(plan) is None
    WritebackPlan.objects.filter(pk=plan.pk).update(approval_expires_at=plan.decided_at - timedelta(minutes=1))
    plan.refresh_from_db()
    assert "expired" in runbook.approval_problem(plan)


@pytest.mark.postgres
def test_the_database_refuses_self_approval(role_users) -> None:
    admin = role_users["Administrator"]
    plan = svc.do_request_approval(plan=_store(admin), user=admin)
    with pytest.raises(IntegrityError, match="writeback_plan_not_decided_by_requester"), transaction.atomic():
        WritebackPlan.objects.filter(pk=plan.pk).update(approved_by=admin)


def test_a_plan_with_collisions_cannot_be_sent(role_users) -> None:
    built, _ = _built()
    plan = svc.do_store_plan(built, container=OU, user=role_users["Administrator"])
    with pytest.raises(svc.WritebackRefused, match="collide"):
        svc.do_request_approval(plan=plan, user=role_users["Administrator"])


# --- runbook checks ---------------------------------------------------------------------------------------


def _facts(plan, *, staging=True, suspended=True, enabled=True, ou=OU, option=True, pending=(), missing=False):
    planned = list(plan.rows.filter(section="planned").values("object_id", "guid", "display_name", "current_dn",
                                                              "planned_dn"))
    actual = [{"dn": p["current_dn"], "guid": p["guid"], "object_id": p["object_id"]} for p in planned]
    if missing:
        actual = actual[1:]
    scheduler = connect_api.SchedulerStatus.from_dict({"StagingModeEnabled": staging, "SyncCycleEnabled": not suspended,
                                                       "SchedulerSuspended": False, "SyncCycleInProgress": False})
    return runbook.Facts(plan=plan, scheduler=scheduler,
                         writeback=connect_api.GroupWritebackConfig(enabled=enabled, target_ou=ou,
                                                                    display_name_option=option),
                         pending=[connect_api.PendingExport.from_dict(p) for p in pending], runs=[], actual=actual,
                         planned=planned, since=None)


def _renames(plan):
    return [{"ConnectorName": "lab.example", "DistinguishedName": r.current_dn, "Operation": "Update",
             "ObjectId": r.object_id, "Attributes": {"cn": r.planned_cn, "distinguishedName": r.planned_dn}}
            for r in plan.rows.filter(section="planned")]


def test_runbook_hard_stops(role_users) -> None:
    plan = _store(role_users["Administrator"])
    ok = runbook.evaluate(_facts(plan), "writeback_off")
    assert [c["ok"] for c in ok] == [True, True, False, True]  # writeback still on: that step is not done yet
    stop = runbook.evaluate(_facts(plan, staging=False, enabled=False), "writeback_off")
    assert stop[0]["ok"] is False and "STAGING MODE IS OFF" in stop[0]["message"]
    assert runbook.evaluate(_facts(plan, ou="OU=Elsewhere,DC=lab,DC=example"), "writeback_on")[2]["ok"] is False
    assert runbook.evaluate(_facts(plan, option=False), "writeback_on")[3]["ok"] is False
    assert all(c["ok"] for c in runbook.evaluate(_facts(plan, pending=_renames(plan)), "review_exports"))
    deletion = [{"DistinguishedName": f"CN=Group_{_oid(1)},{OU}", "Operation": "Delete", "ObjectId": _oid(1)}]
    checks = runbook.evaluate(_facts(plan, pending=_renames(plan) + deletion), "review_exports")
    assert checks[2]["ok"] is False and "DELETION" in checks[2]["message"]
    short = runbook.evaluate(_facts(plan, pending=_renames(plan)[1:]), "review_exports")
    assert short[1]["ok"] is False and "not pending" in short[1]["message"]
    lost = runbook.evaluate(_facts(plan, missing=True), "staging_on")
    assert lost == runbook.evaluate(_facts(plan), "staging_on")  # staging_on does not look at groups
    assert runbook.evaluate(_facts(plan, missing=True), "writeback_off")[3]["ok"] is False
    unknown = _facts(plan)
    unknown.writeback = None
    assert runbook.evaluate(unknown, "writeback_on")[1]["ok"] is None  # the person checks it by hand


def test_confirming_refuses_a_failed_check_and_keeps_order(role_users) -> None:
    admin, approver = role_users["Administrator"], role_users["Approver"]
    plan = svc.do_request_approval(plan=_store(admin), user=admin)
    plan = svc.do_approve_plan(plan=plan, user=approver, plan_hash=plan.plan_hash)
    with pytest.raises(svc.WritebackRefused, match="first"):
        svc.do_confirm_step(plan=plan, user=admin, step="writeback_off", checks=[])
    bad = runbook.evaluate(_facts(plan, staging=False), "staging_on")
    with pytest.raises(svc.WritebackRefused, match="Hard stop"):
        svc.do_confirm_step(plan=plan, user=admin, step="staging_on", checks=bad)
    assert not WritebackRunbookStep.objects.exists()
    assert AuditEvent.objects.filter(action="writeback.runbook.confirm.refused").count() == 2
    good = runbook.evaluate(_facts(plan), "staging_on")
    svc.do_confirm_step(plan=plan, user=admin, step="staging_on", checks=good)
    with pytest.raises(svc.WritebackRefused, match="already confirmed"):
        svc.do_confirm_step(plan=plan, user=admin, step="staging_on", checks=good)
    with pytest.raises(PermissionDenied, match="Administrator"):
        svc.do_confirm_step(plan=plan, user=approver, step="writeback_off", checks=[])


# --- pages --------------------------------------------------------------------------------------------------


def test_plan_page_filters_exports_and_approval_by_another_user(client, role_users) -> None:
    admin, approver, auditor = role_users["Administrator"], role_users["Approver"], role_users["Auditor"]
    plan = _store(admin)
    client.force_login(admin)
    page = client.get(f"/diagnostics/writeback/plans/{plan.pk}/").content.decode()
    assert "Plan v1" in page and "Request approval" in page
    action = f"/diagnostics/writeback/plans/{plan.pk}/request-approval/"
    client.post(action, form_fields(page, action))
    plan.refresh_from_db()
    assert plan.status == PlanStatus.AWAITING_APPROVAL
    filtered = client.get(f"/diagnostics/writeback/plans/{plan.pk}/?section=outside_ou").content.decode()
    assert "elsewhere" in filtered.lower() and "Sales_" not in filtered
    csv_text = b"".join(client.get(f"/diagnostics/writeback/plans/{plan.pk}/?export=csv").streaming_content).decode()
    assert csv_text.splitlines()[0].startswith("section,display_name") and "'#1" not in csv_text
    assert "Procedure" in client.get(f"/diagnostics/writeback/plans/{plan.pk}/print/").content.decode()
    client.force_login(approver)
    page = client.get(f"/diagnostics/writeback/plans/{plan.pk}/").content.decode()
    action = f"/diagnostics/writeback/plans/{plan.pk}/approve/"
    client.post(action, {**form_fields(page, action), "confirm": "on"})
    plan.refresh_from_db()
    assert plan.status == PlanStatus.APPROVED and plan.approved_by == approver
    client.force_login(auditor)
    runbook_page = client.get(f"/diagnostics/writeback/plans/{plan.pk}/runbook/").content.decode()
    assert "The portal checks first: staging mode is on; the scheduler starts no cycle" in runbook_page
    assert "Check and confirm this step" not in runbook_page  # an Auditor reads, confirms nothing
    assert client.post("/diagnostics/writeback/plan/").status_code == 403
    cloud = client.get(f"/diagnostics/writeback/plans/{plan.pk}/cloud-sync/?export=csv")
    assert b"security group" in b"".join(cloud.streaming_content)


def test_a_hostile_display_name_is_inert_in_the_page(client, role_users) -> None:
    oid = _oid(1)
    built = build_plan(container=OU, in_ou=[_group(oid)], outside=[],
                       cloud={oid: _cloud(oid, "<script>alert(1)</script>")})
    plan = svc.do_store_plan(built, container=OU, user=role_users["Administrator"])
    client.force_login(role_users["Auditor"])
    body = client.get(f"/diagnostics/writeback/plans/{plan.pk}/").content.decode()
    assert "<script>alert(1)" not in body and "&lt;script&gt;alert(1)" in body


def test_the_approvals_queue_lists_writeback_plans_for_someone_else(client, role_users) -> None:
    admin = role_users["Administrator"]
    plan = svc.do_request_approval(plan=_store(admin), user=admin)
    client.force_login(role_users["Approver"])
    queue = client.get("/dl/approvals/").content.decode()
    assert f'/diagnostics/writeback/plans/{plan.pk}/' in queue
    assert 'nav-count">1</span>' in queue  # the navigation counts it too
    client.force_login(admin)
    assert "writeback-approvals-table" not in client.get("/dl/approvals/").content.decode()


def test_writeback_dn_command_reads_json_lines(monkeypatch, capsys) -> None:
    import io
    import json

    from django.core.management import CommandError, call_command

    lines = [{"objectId": _oid(1), "displayName": "  " + "é" * 60, "container": OU},
             {"objectId": "nope", "displayName": "x", "container": OU},
             {"objectId": _oid(2), "displayName": "x", "container": "not a dn"}]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(json.dumps(x) for x in lines) + "\n"))
    with pytest.raises(CommandError, match="2 line"):
        call_command("writeback_dn")
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert out[0]["display_name"]["cn"] == "é" * 51 + "_" + _oid(1)[-12:]
    assert out[0]["display_name"]["truncated"] and set(out[0]["display_name"]["flags"]) == {"trimmed", "truncated"}
    assert out[0]["default"]["dn"] == f"CN=Group_{_oid(1)},{OU}"
    assert out[1] == {"line": 2, "error": out[1]["error"]} and "not a cloud object id" in out[1]["error"]
    assert out[2]["line"] == 3


@pytest.mark.django_db(transaction=True)  # the job runs inline as a worker would, with its own connection handling
def test_writeback_plan_command_prints_the_plan_as_json(monkeypatch, capsys) -> None:
    import contextlib
    import json

    from django.core.management import call_command

    from diagnostics_app.writeback import jobs

    monkeypatch.setattr(jobs, "active_directory", contextlib.nullcontext)
    monkeypatch.setattr(jobs, "entra_graph", contextlib.nullcontext)
    monkeypatch.setattr(jobs, "_layout", lambda: (OU, "DC=lab,DC=example"))
    monkeypatch.setattr(jobs, "collect", lambda directory, graph, *, options, reporter: _built()[0])
    call_command("writeback_plan", "--json")
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "warnings" and out["version"] == 1 and out["counts"]["collisions"] == 2
    assert {r["section"] for r in out["rows"]} >= {"planned", "not_joined", "outside_ou"}
    assert AuditEvent.objects.filter(action="writeback.plan").count() == 1


def test_the_page_diffs_against_any_earlier_version(client, role_users) -> None:
    """v1 all groups, v2 without Sales, v3 also with Team's planned DN changed: v3 against v2 (its stored
    diff) shows only the change; against v1, chosen in the page, the removal too; a version that is not an
    earlier one is refused with a message, and shows no diff."""
    from diagnostics_app.writeback.plan import BuiltPlan

    admin = role_users["Administrator"]
    built, (a, _b, c, *_rest) = _built()
    rows = [r for r in built.rows if not r["collides"]]
    v1 = svc.do_store_plan(BuiltPlan(rows=rows), container=OU, user=admin)
    without_sales = [r for r in rows if r["object_id"] != a]
    svc.do_store_plan(BuiltPlan(rows=without_sales), container=OU, user=admin)
    renamed = [{**r, "planned_dn": f"CN=Team renamed_{c[-12:]},{OU}"} if r["object_id"] == c else r
               for r in without_sales]
    v3 = svc.do_store_plan(BuiltPlan(rows=renamed), container=OU, user=admin)
    client.force_login(role_users["Auditor"])
    url = f"/diagnostics/writeback/plans/{v3.pk}/"

    stored = client.get(url).content.decode()
    assert "Since v2 (the previous plan)" in stored and "removed: Sales" not in stored
    assert "0 added · 0 removed · 1 change(s)" in stored and "CN=Team renamed_" in stored
    assert 'href="?compare=1#diff"' in stored  # the history offers every earlier version

    chosen = client.get(url, {"compare": "1"}).content.decode()
    assert "Since v1</h2>" in chosen and "0 added · 1 removed · 1 change(s)" in chosen
    assert f"removed: Sales <code>{a}</code>" in chosen
    assert '<option value="1" selected>' in chosen

    for bad in ("3", "9", "x"):
        refused = client.get(url, {"compare": bad}).content.decode()
        assert f"v{bad} is not an earlier version of this plan" in refused and 'id="diff-list"' not in refused

    first = client.get(f"/diagnostics/writeback/plans/{v1.pk}/").content.decode()
    assert "The first plan: nothing to compare with." in first and 'id="compare-form"' not in first
