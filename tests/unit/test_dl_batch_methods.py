"""The method of each list inside a batch: the batch's rule (the recommended method for each list, or one for
all), a person's choice per list on the batch page, each list judged and planned with its method by the batch
preflight (so the plan hash an approval signs pins it), shown with its reasons to the approver, and run with
it; nested lists wait for their children in place as in recreate, and a parent and a child going by different
methods are blocked. Also: Microsoft's two spellings of the source-of-authority audit events."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from migrations_app import batch_preflight, batch_run
from migrations_app import batch_services as bsvc
from migrations_app.batch_preflight import list_options, mixed_method_edges, outcome_of, preflight_batch
from migrations_app.choices import BatchListOutcome, BatchMethod, BatchStatus, MigrationMethod
from migrations_app.inplace import AUDIT_CONVERT_NAMES, AUDIT_UNDO_NAMES, soa_audit_event
from migrations_app.models import BatchList, DistributionList
from migrations_app.options import MigrationOptions
from migrations_app.preflight import Check, PreflightReport
from migrations_app.services import MigrationRefused
from portal.audit.models import AuditEvent
from tests.support.forms import form_fields
from tests.unit.test_dl_batches import make_dl

pytestmark = pytest.mark.django_db
REASONS = [{"fact": "sync_client", "favours": "in_place", "text": "Entra Connect 2.5.79.0 honours the conversion."},
           {"fact": "dynamic", "favours": "recreate", "text": "Dynamic membership is not supported."}]


def judged(batch, user, methods: dict[str, tuple[str, str]], *, rec: str = "in_place"):
    """The batch as its preflight leaves it, each list judged with (method, source) and the recommendation."""
    job = bsvc.do_start_batch_preflight(batch=batch, user=user, enqueue=False)
    verdicts = [bsvc.ListVerdict(mail=item.mail, outcome=BatchListOutcome.WARNINGS, report={
        "plan_hash": f"{methods[item.mail][0]}-{item.mail}".ljust(64, "x")[:64], "member_count": 2, "checks": [],
        "method": methods[item.mail][0], "method_source": methods[item.mail][1],
        "recommendation": {"method": rec, "reasons": REASONS}, "plan": {"options": {"method": methods[item.mail][0]}}})
        for item in batch.lists.all()]
    bsvc.do_record_batch_preflight(batch=batch, job=job, verdicts=verdicts, summary={"lists": len(verdicts)})
    batch.refresh_from_db()
    return batch


@pytest.fixture
def hd(role_users):
    return role_users["Helpdesk"]


@pytest.fixture
def two(hd):
    batch = bsvc.do_create_batch(name="Mixed", options={"keep_original": True}, method=BatchMethod.RECOMMENDED,
                                 user=hd)
    a, b = make_dl("alpha@contoso.com"), make_dl("beta@contoso.com")
    bsvc.do_add_to_batch(batch=batch, values=[(0, a.mail), (0, b.mail)], user=hd)
    return batch


# -- the rule and the choice ---------------------------------------------------------------------------
def test_a_list_is_judged_with_its_own_method_else_by_the_batchs_rule():
    options = MigrationOptions(keep_original=True)
    chosen = SimpleNamespace(method="in_place")
    unchosen = SimpleNamespace(method="")
    assert list_options(chosen, options=options, batch_method=BatchMethod.RECOMMENDED) == (
        MigrationOptions(keep_original=True, method="in_place"), False)
    assert list_options(unchosen, options=options, batch_method=BatchMethod.RECOMMENDED) == (options, True)
    assert list_options(unchosen, options=options, batch_method=BatchMethod.IN_PLACE)[0].method == "in_place"
    assert list_options(SimpleNamespace(method="recreate"), options=options,
                        batch_method=BatchMethod.IN_PLACE)[0].method == "recreate"


def test_a_batch_made_by_code_keeps_its_options_method_and_a_bad_rule_is_refused(hd):
    old_style = bsvc.do_create_batch(name="Old", options={"method": "in_place"}, user=hd)
    assert old_style.method == BatchMethod.IN_PLACE
    assert bsvc.do_create_batch(name="Plain", options={}, user=hd).method == BatchMethod.RECREATE
    with pytest.raises(MigrationRefused, match="method must be one of"):
        bsvc.do_create_batch(name="Bad", options={}, method="sideways", user=hd)


def test_the_batch_preflight_judges_each_list_with_its_method_and_records_it(two, hd, monkeypatch):
    BatchList.objects.filter(batch=two, mail="beta@contoso.com").update(method="recreate")
    asked = {}

    def fake_preflight(*, mail, options, c, recommended=False, migration=None):
        asked[mail] = (options.method, recommended)
        method = "in_place" if recommended else options.method  # what the facts would recommend here
        report = PreflightReport(mail=mail, checks=[Check("x", "X", "pass", "")], group_dn=f"CN={mail}",
                                 plan={"options": {**options.to_dict(), "method": method}}, method=method,
                                 recommendation={"method": "in_place", "reasons": REASONS})
        return None, report

    monkeypatch.setattr(batch_preflight.engine, "run_preflight", fake_preflight)
    monkeypatch.setattr(batch_preflight, "shared", lambda c, counter: c)
    runner = SimpleNamespace(progress=lambda *a: None, error=lambda *a: None, warning=lambda *a: None,
                             success=lambda *a: None)
    c = SimpleNamespace(exchange=object(), directory=object(), sync=object())
    verdicts, summary = preflight_batch(batch=two, c=c, runner=runner)
    assert asked == {"alpha@contoso.com": ("recreate", True), "beta@contoso.com": ("recreate", False)}
    by_mail = {v.mail: v.report for v in verdicts}
    assert (by_mail["alpha@contoso.com"]["method"], by_mail["alpha@contoso.com"]["method_source"]) == (
        "in_place", "recommended")
    assert (by_mail["beta@contoso.com"]["method"], by_mail["beta@contoso.com"]["method_source"]) == (
        "recreate", "chosen")
    assert by_mail["alpha@contoso.com"]["plan_hash"] != PreflightReport(
        mail="x", checks=[], plan={"options": {**MigrationOptions().to_dict(), "method": "recreate"}}
    ).as_dict()["plan_hash"], "the method is part of the plan an approval signs"
    assert summary["methods"] == {"in_place": 1, "recreate": 1}


def test_a_person_chooses_a_lists_method_on_the_page_and_it_needs_a_new_preflight(client, two, hd):
    judged(two, hd, {"alpha@contoso.com": ("in_place", "recommended"), "beta@contoso.com": ("in_place", "recommended")})
    assert two.plan_hash
    beta = two.lists.get(mail="beta@contoso.com")
    client.force_login(hd)
    page = client.get(f"/dl/batches/{two.pk}/").content.decode()
    assert f'name="method-{beta.pk}"' in page and 'id="batch-methods-button"' in page
    fields = form_fields(page, f"/dl/batches/{two.pk}/remove/")
    response = client.post(f"/dl/batches/{two.pk}/methods/", {**fields, f"method-{beta.pk}": "recreate"},
                           follow=True)
    assert "The method of 1 list(s) changed" in response.content.decode()
    beta.refresh_from_db()
    two.refresh_from_db()
    assert beta.method == "recreate" and beta.outcome == BatchListOutcome.UNCHECKED and not beta.plan_hash
    assert two.lists.get(mail="alpha@contoso.com").outcome == BatchListOutcome.WARNINGS, "only the changed list"
    assert not two.plan_hash, "the batch cannot be signed before its preflight runs again"
    event = AuditEvent.objects.get(action="dl.batch.list_method")
    assert event.before == {"mail": "beta@contoso.com", "method": ""} and event.after["method"] == "recreate"
    response = client.post(f"/dl/batches/{two.pk}/methods/", {f"method-{beta.pk}": "sideways"}, follow=True)
    assert "not &#x27;sideways&#x27;" in response.content.decode()
    beta.refresh_from_db()
    assert beta.method == "recreate"


def test_a_method_changed_after_sign_off_sends_the_batch_back_to_submitted(two, hd, role_users):
    judged(two, hd, {"alpha@contoso.com": ("in_place", "recommended"), "beta@contoso.com": ("in_place", "recommended")})
    bsvc.do_submit_batch(batch=two, user=hd)
    bsvc.do_approve_batch(batch=two, user=role_users["Approver"], signed_hash=two.plan_hash)
    item = two.lists.get(mail="alpha@contoso.com")
    assert bsvc.do_set_list_methods(batch=two, methods={item.pk: "recreate"}, user=hd) == 1
    two.refresh_from_db()
    assert two.status == BatchStatus.SUBMITTED and two.approved_by is None


def test_the_approver_reads_each_lists_method_and_why(client, two, hd, role_users):
    judged(two, hd, {"alpha@contoso.com": ("in_place", "recommended"), "beta@contoso.com": ("recreate", "chosen")})
    bsvc.do_submit_batch(batch=two, user=hd)
    client.force_login(role_users["Approver"])
    page = client.get(f"/dl/batches/{two.pk}/").content.decode()
    assert 'id="batch-approve-form"' in page
    cells = page.split('class="small batch-method"')[1:]
    alpha, beta = cells
    assert 'data-method="in_place"' in alpha and "<strong>In place</strong>" in alpha and "(recommended)" in alpha
    assert 'data-method="recreate"' in beta and "(chosen; in place recommended)" in beta
    assert "Entra Connect 2.5.79.0 honours the conversion." in alpha
    assert "<select" not in alpha, "an approver reads the method, only the requester changes it"
    assert "each with its own preflight plan and the method" in page


def test_each_list_runs_with_the_method_its_signed_plan_names(two, hd, role_users):
    judged(two, hd, {"alpha@contoso.com": ("in_place", "recommended"), "beta@contoso.com": ("recreate", "chosen")})
    bsvc.do_submit_batch(batch=two, user=hd)
    bsvc.do_approve_batch(batch=two, user=role_users["Approver"], signed_hash=two.plan_hash)
    batch = batch_run.do_schedule_batch(batch=two, user=hd, enqueue=False)
    batch_run.do_advance_batch(batch=batch, enqueue=False)
    runs = {i.mail: i.migration for i in batch.lists.select_related("migration")}
    assert runs["alpha@contoso.com"].method == MigrationMethod.IN_PLACE
    assert runs["alpha@contoso.com"].options["method"] == "in_place"
    assert runs["alpha@contoso.com"].options["keep_original"] is True
    assert runs["beta@contoso.com"].method == MigrationMethod.RECREATE
    assert runs["beta@contoso.com"].options["method"] == "recreate"


# -- nesting: bottom-up in place, one method per nest -----------------------------------------------
def test_a_parent_converted_in_place_waits_for_its_children_in_the_batch():
    child = "CN=Child,OU=Lists,DC=contoso,DC=com"
    report = {"warnings": 1, "checks": [{"key": "in_place_children", "outcome": "failure", "objects": [child],
                                         "objects_total": 1, "title": "Child lists converted first (bottom-up)"}]}
    assert outcome_of(report, batch_dns={child.lower()}) == (BatchListOutcome.WARNINGS, [])
    assert outcome_of(report, batch_dns=set()) == (BatchListOutcome.BLOCKED,
                                                   ["Child lists converted first (bottom-up)"])
    from migrations_app.batch_selectors import sign_off_facts

    item = SimpleNamespace(mail="parent@contoso.com", preflight=report)
    assert sign_off_facts(None, [item])["waiting_parents"] == 1, "the approver reads that it waits"


def test_nested_lists_of_one_batch_going_by_different_methods_are_blocked(two, hd):
    parent, child = two.lists.get(mail="alpha@contoso.com"), two.lists.get(mail="beta@contoso.com")
    DistributionList.objects.filter(pk=parent.distribution_list_id).update(
        child_lists=[child.distribution_list.dn])
    lists = list(two.lists.select_related("distribution_list"))
    assert mixed_method_edges(lists, {"alpha@contoso.com": "in_place", "beta@contoso.com": "in_place"}) == {}
    [(who, [why])] = mixed_method_edges(lists, {"alpha@contoso.com": "recreate",
                                                "beta@contoso.com": "in_place"}).items()
    assert who == "alpha@contoso.com" and "beta@contoso.com goes in place, this list recreate" in why


def test_the_page_offers_the_recommended_rule_by_default(client, hd):
    client.force_login(hd)
    page = client.get("/dl/batches/new/").content.decode()
    fields = {**form_fields(page, "/dl/batches/new/"), "name": "Recommended"}
    assert fields["method"] == BatchMethod.RECOMMENDED
    client.post("/dl/batches/new/", fields)
    from migrations_app.models import MigrationBatch

    batch = MigrationBatch.objects.get(name="Recommended")
    assert batch.method == BatchMethod.RECOMMENDED and batch.options["method"] == "recreate"


# -- audit events ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [*AUDIT_CONVERT_NAMES, "change source of authority from ad to cloud"])
def test_microsofts_spellings_of_the_conversion_event_are_recognised(name):
    target = SimpleNamespace(id="AAAA-1")
    events = [SimpleNamespace(activity="Update group", targets=(target,)),
              SimpleNamespace(activity=name, targets=(SimpleNamespace(id="other"),)),
              SimpleNamespace(activity=name, targets=(target,))]
    assert soa_audit_event(events, names=AUDIT_CONVERT_NAMES, object_id="aaaa-1") == name
    assert soa_audit_event(events[:2], names=AUDIT_CONVERT_NAMES, object_id="aaaa-1") is None
    assert soa_audit_event(events, names=AUDIT_UNDO_NAMES, object_id="aaaa-1") is None


# -- the command line ----------------------------------------------------------------------------------
def test_the_command_line_sets_the_rule_and_a_lists_own_method(role_users):
    import json
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    def cli(*args) -> dict:
        out = StringIO()
        call_command("dl_batch", *args, "--json", stdout=out)
        return json.loads(out.getvalue())

    make_dl("gamma@contoso.com")
    created = cli("create", "--name", "Shell", "--method", "recommended", "--user", "helpdesk")
    assert created["method"] == BatchMethod.RECOMMENDED
    pk = str(created["id"])
    cli("add", pk, "gamma@contoso.com", "--user", "helpdesk")
    chosen = cli("method", pk, "gamma@contoso.com=in-place", "--user", "helpdesk")
    assert chosen["lists"][0]["method"] == "in_place"
    with pytest.raises(CommandError, match="is not ADDRESS=recreate"):
        cli("method", pk, "gamma@contoso.com=sideways", "--user", "helpdesk")
    assert cli("method", pk, "gamma@contoso.com=batch", "--user", "helpdesk")["lists"][0]["method"] == ""
