"""Migration batches: one transition service refusing every illegal move, the CSV judged row by row
(nothing added while a row has a problem), the inventory's "add all matching", four eyes in the
database and in the service, the pinned plan hash, a change after sign-off going back to Submitted,
and notifications in the portal and by e-mail through a real SMTP socket."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from migrations_app import batch_rows
from migrations_app import batch_services as bsvc
from migrations_app.batch_order import order_lists
from migrations_app.batch_preflight import nesting_order, outcome_of
from migrations_app.choices import BATCH_TRANSITIONS, BatchListOutcome, BatchStatus, ListState, MigrationStatus
from migrations_app.models import BatchList, DistributionList, Migration, MigrationBatch, Notification
from migrations_app.read_once import ReadOnce
from migrations_app.services import MigrationRefused
from portal.audit.models import AuditEvent
from tests.support.forms import form_fields
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.django_db


def make_dl(mail: str, *, state: str = ListState.SYNCED, name: str | None = None) -> DistributionList:
    name = name or mail.split("@")[0]
    return DistributionList.objects.create(guid=uuid.uuid4(), dn=f"CN={name},OU=Lists,DC=contoso,DC=com", name=name,
                                           mail=mail, ou="OU=Lists,DC=contoso,DC=com", state=state,
                                           inventoried_at=timezone.now())


@pytest.fixture
def lists():
    return [make_dl(f"list{i}@contoso.com") for i in range(3)]


@pytest.fixture
def batch(role_users):
    return bsvc.do_create_batch(name="Saturday", options={"keep_original": True}, user=role_users["Helpdesk"])


def preflighted(batch: MigrationBatch, user, *, outcome: str = BatchListOutcome.READY) -> MigrationBatch:
    """The batch as its preflight job leaves it: each list judged, with its plan hash."""
    job = bsvc.do_start_batch_preflight(batch=batch, user=user, enqueue=False)
    verdicts = [bsvc.ListVerdict(mail=item.mail, outcome=outcome,
                                 report={"plan_hash": f"{item.mail:x<64}"[:64], "member_count": 4,
                                         "plan": {"dependencies": {"managedBy": ["CN=x"]}}, "checks": []})
                for item in batch.lists.all()]
    bsvc.do_record_batch_preflight(batch=batch, job=job, verdicts=verdicts, summary={"lists": len(verdicts)})
    batch.refresh_from_db()
    return batch


@pytest.fixture
def submitted(batch, lists, role_users):
    bsvc.do_add_to_batch(batch=batch, values=[(0, dl.mail) for dl in lists], user=role_users["Helpdesk"])
    preflighted(batch, role_users["Helpdesk"])
    return bsvc.do_submit_batch(batch=batch, user=role_users["Helpdesk"])


# -- transitions ---------------------------------------------------------------------------------
ILLEGAL = [(a, b) for a, b in itertools.product(BatchStatus.values, BatchStatus.values)
           if b not in BATCH_TRANSITIONS[a]]


@pytest.mark.parametrize(("start", "to"), ILLEGAL)
def test_every_illegal_transition_is_refused(start, to):
    batch = MigrationBatch(pk=7, name="x", status=start)
    with pytest.raises(MigrationRefused, match=f"is {BatchStatus(start).label.lower()}: it cannot become"):
        bsvc.check_transition(batch=batch, to=to)


def test_the_legal_path_is_draft_submitted_approved_scheduled_running_completed():
    path = [BatchStatus.DRAFT, BatchStatus.SUBMITTED, BatchStatus.APPROVED, BatchStatus.SCHEDULED,
            BatchStatus.RUNNING]
    for start, to in itertools.pairwise(path):
        assert to in BATCH_TRANSITIONS[start]
    for end in (BatchStatus.COMPLETED, BatchStatus.COMPLETED_WITH_WARNINGS, BatchStatus.COMPLETED_WITH_ERRORS,
                BatchStatus.CANCELLED):
        assert end in BATCH_TRANSITIONS[BatchStatus.RUNNING] and not BATCH_TRANSITIONS[end]


def test_an_illegal_move_through_the_service_changes_nothing_and_is_audited(batch, role_users):
    with pytest.raises(MigrationRefused, match="draft: it cannot become scheduled"):
        bsvc.do_transition_batch(batch=batch, to=BatchStatus.SCHEDULED, user=role_users["Helpdesk"])
    batch.refresh_from_db()
    assert batch.status == BatchStatus.DRAFT
    assert AuditEvent.objects.filter(action="dl.batch.scheduled.refused", target=f"dl-batch:{batch.pk}").exists()


def test_submitting_needs_every_list_preflighted_and_none_blocked(batch, lists, role_users):
    hd = role_users["Helpdesk"]
    with pytest.raises(MigrationRefused, match="no list"):
        bsvc.do_submit_batch(batch=batch, user=hd)
    bsvc.do_add_to_batch(batch=batch, values=[(0, lists[0].mail)], user=hd)
    with pytest.raises(MigrationRefused, match="1 list\\(s\\) have no preflight"):
        bsvc.do_submit_batch(batch=batch, user=hd)
    preflighted(batch, hd, outcome=BatchListOutcome.BLOCKED)
    with pytest.raises(MigrationRefused, match="blocked by their preflight"):
        bsvc.do_submit_batch(batch=batch, user=hd)
    preflighted(batch, hd)
    assert bsvc.do_submit_batch(batch=batch, user=hd).status == BatchStatus.SUBMITTED


# -- four eyes, the pinned plan, expiry ---------------------------------------------------------
@pytest.mark.postgres
def test_the_database_refuses_self_approval_of_a_batch(submitted):
    with pytest.raises(IntegrityError, match="batch_not_decided_by_requester"), transaction.atomic():
        MigrationBatch.objects.filter(pk=submitted.pk).update(approved_by=submitted.requested_by)


def test_a_forged_approval_of_ones_own_batch_is_refused_and_audited(client, submitted):
    requester = submitted.requested_by
    requester.groups.add(*type(requester.groups.first()).objects.filter(name="Approver"))
    client.force_login(requester)
    body = client.post(f"/dl/batches/{submitted.pk}/approve/", {"plan_hash": submitted.plan_hash, "valid_hours": "4",
                                                               "confirm": "on"}, follow=True).content.decode()
    assert "Four eyes" in body and "Nothing was changed" in body
    submitted.refresh_from_db()
    assert submitted.status == BatchStatus.SUBMITTED and submitted.approved_by is None
    refusal = AuditEvent.objects.get(action="dl.batch.approved.refused")
    assert refusal.actor == requester and "Four eyes" in refusal.detail["reason"]


def test_an_approval_pins_the_plan_the_approver_read(client, submitted, role_users):
    client.force_login(role_users["Approver"])
    page = client.get(f"/dl/batches/{submitted.pk}/").content.decode()
    fields = form_fields(page, f"/dl/batches/{submitted.pk}/approve/")
    assert fields["plan_hash"] == submitted.plan_hash
    # The requester removes a list and preflights again while the approver reads the old page.
    hd = role_users["Helpdesk"]
    bsvc.do_remove_from_batch(batch=submitted, list_ids=[submitted.lists.first().pk], user=hd)
    preflighted(submitted, hd)
    body = client.post(f"/dl/batches/{submitted.pk}/approve/", {**fields, "confirm": "on"},
                       follow=True).content.decode()
    assert "changed while you read it" in body
    submitted.refresh_from_db()
    assert submitted.status == BatchStatus.SUBMITTED and submitted.approved_by is None


def test_an_approval_through_the_page_signs_with_note_and_expiry(client, submitted, role_users):
    approver = role_users["Approver"]
    client.force_login(approver)
    page = client.get(f"/dl/batches/{submitted.pk}/").content.decode()
    assert "Members affected" in page and 'id="batch-members">12<' in page
    assert 'id="batch-dependencies">3<' in page and page.count("managedBy: 1") == 3
    assert "migrating the children first leaves the parent's plan as signed" in page.replace("&#x27;", "'")
    fields = {**form_fields(page, f"/dl/batches/{submitted.pk}/approve/"), "note": "Saturday only",
              "valid_hours": "6", "confirm": "on"}
    client.post(f"/dl/batches/{submitted.pk}/approve/", fields)
    submitted.refresh_from_db()
    assert submitted.status == BatchStatus.APPROVED and submitted.approved_by == approver
    assert submitted.decision_note == "Saturday only"
    assert submitted.approval_expires_at - submitted.decided_at == timedelta(hours=6)
    event = AuditEvent.objects.get(action="dl.batch.approved")
    assert event.detail["plan_hash"] == submitted.plan_hash and event.detail["lists"] == 3


def test_a_change_after_sign_off_sends_the_batch_back_to_submitted(submitted, role_users, lists):
    hd = role_users["Helpdesk"]
    bsvc.do_approve_batch(batch=submitted, user=role_users["Approver"], signed_hash=submitted.plan_hash)
    bsvc.do_transition_batch(batch=submitted, to=BatchStatus.SCHEDULED, user=hd)
    later = timezone.now() + timedelta(days=2)
    batch = bsvc.do_update_batch(batch=submitted, name="Saturday", options=submitted.options, window_start=None,
                                 window_end=later, user=hd)
    assert batch.status == BatchStatus.SUBMITTED and batch.approved_by is None and batch.approval_expires_at is None
    assert "Changed after sign-off" in batch.decision_note and not batch.plan_hash
    with pytest.raises(MigrationRefused, match="changed since its preflight"):
        bsvc.do_approve_batch(batch=batch, user=role_users["Approver"], signed_hash="")


def test_a_rejection_needs_a_reason_and_the_requester_is_told(submitted, role_users,
                                                              django_capture_on_commit_callbacks):
    with pytest.raises(MigrationRefused, match="Say why"):
        bsvc.do_reject_batch(batch=submitted, user=role_users["Approver"], reason=" ")
    with django_capture_on_commit_callbacks(execute=True):
        bsvc.do_reject_batch(batch=submitted, user=role_users["Approver"], reason="not in December")
    submitted.refresh_from_db()
    assert submitted.status == BatchStatus.REJECTED
    note = Notification.objects.get(user=submitted.requested_by)
    assert "rejected" in note.text and "not in December" in note.text


def test_scheduling_refuses_an_expired_approval(submitted, role_users):
    bsvc.do_approve_batch(batch=submitted, user=role_users["Approver"], signed_hash=submitted.plan_hash)
    MigrationBatch.objects.filter(pk=submitted.pk).update(approval_expires_at=timezone.now() - timedelta(minutes=1))
    with pytest.raises(MigrationRefused, match="approval expired"):
        bsvc.do_transition_batch(batch=submitted, to=BatchStatus.SCHEDULED, user=role_users["Helpdesk"])


def test_only_the_requester_or_an_administrator_moves_a_batch(submitted, make_user):
    other = make_user("hd2", "Helpdesk")
    with pytest.raises(MigrationRefused, match="only they or an Administrator"):
        bsvc.do_cancel_batch(batch=submitted, user=other)
    admin = make_user("admin2", "Administrator")
    assert bsvc.do_cancel_batch(batch=submitted, user=admin).status == BatchStatus.CANCELLED


# -- CSV -----------------------------------------------------------------------------------------
def test_a_csv_with_bom_semicolons_header_and_blank_lines_is_read():
    data = "\ufeffName;PrimarySmtpAddress\r\n\r\nSales;sales@contoso.com\r\n;\r\nHR;hr@contoso.com\r\n".encode()
    assert batch_rows.read_csv(data) == [(3, "sales@contoso.com"), (5, "hr@contoso.com")]


def test_a_csv_without_header_is_read_from_its_first_column():
    assert batch_rows.read_csv(b"a@contoso.com,x\nb@contoso.com\n") == [(1, "a@contoso.com"), (2, "b@contoso.com")]


@pytest.mark.parametrize(("data", "message"), [
    (b"group,owner\nsales,bob\n", "neither an address nor a header"),
    (b"", "holds no address"),
    (b"address\n" + b"\xff\xfe\n", "not UTF-8"),
    (b"address\n" + b"x@contoso.com\n" * (batch_rows.MAX_ROWS + 1), "at most 10,000 per upload"),
])
def test_an_unreadable_csv_is_refused_as_a_whole(data, message):
    with pytest.raises(batch_rows.CsvUnreadable, match=message):
        batch_rows.read_csv(data)


def test_each_row_gets_its_problem(batch, role_users, make_user):
    make_dl("ok@contoso.com")
    make_dl("twice@contoso.com")
    make_dl("twice@contoso.com", name="twice-2")
    make_dl("moved@contoso.com", state=ListState.MIGRATED)
    make_dl("done@contoso.com")
    Migration.objects.create(mail="done@contoso.com", status=MigrationStatus.MIGRATED)
    make_dl("taken@contoso.com")
    other = bsvc.do_create_batch(name="other", options={}, user=make_user("hd3", "Helpdesk"))
    BatchList.objects.create(batch=other, mail="taken@contoso.com")
    csv = ("address\nok@contoso.com\nOK@contoso.com\nnobody@contoso.com\ntwice@contoso.com\nmoved@contoso.com\n"
           "done@contoso.com\ntaken@contoso.com\nsales team@contoso.com\n\u0430lice@contoso.com\nnot-an-address\n"
           "<script>alert(1)</script>@x.com\n*)(mail=*\n")
    rows = batch_rows.judge(batch_rows.read_csv(csv.encode()), batch=batch)
    problems = {r.line: r.problem for r in rows}
    assert problems[2] == ""
    assert problems[3] == "duplicate of line 2"
    assert problems[4].startswith("unknown")
    assert problems[5].startswith("ambiguous: 2")
    assert problems[6] == problems[7] == "already migrated"
    assert problems[8] == f"in another open batch (#{other.pk})"
    assert "space" in problems[9]
    assert "U+0430" in problems[10] and "look-alike" in problems[10]
    assert all(problems[n].startswith("malformed") for n in (11, 12, 13))


def test_ten_thousand_rows_are_each_judged(batch):
    make_dl("real@contoso.com")
    data = ("address\nreal@contoso.com\n" + "".join(f"l{i}@contoso.com\n" for i in range(9_999))).encode()
    rows = batch_rows.judge(batch_rows.read_csv(data), batch=batch)
    assert len(rows) == 10_000 and rows[0].ok and rows[-1].line == 10_001
    assert sum(r.problem.startswith("unknown") for r in rows) == 9_999


def test_nothing_is_added_while_a_row_has_a_problem_and_the_page_shows_each(client, batch, lists, role_users):
    client.force_login(role_users["Helpdesk"])
    upload = ("address\n" + "\n".join(dl.mail for dl in lists) + "\nnobody@contoso.com\n").encode()
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client.post(f"/dl/batches/{batch.pk}/upload/",
                           {"file": SimpleUploadedFile("lists.csv", upload, content_type="text/csv")})
    assert response.status_code == 400
    body = response.content.decode()
    assert "nobody@contoso.com" in body and "unknown" in body and "1 of 4 row(s)" in body
    assert batch.lists.count() == 0
    # The person excludes the bad row: the page's own form adds the three others.
    fields = form_fields(body, f"/dl/batches/{batch.pk}/add/")
    html_addresses = [dl.mail for dl in lists]
    response = client.post(f"/dl/batches/{batch.pk}/add/", {**fields, "address": html_addresses}, follow=True)
    assert "3 list(s) added" in response.content.decode()
    assert sorted(batch.lists.values_list("mail", flat=True)) == sorted(html_addresses)


def test_the_inventory_adds_every_matching_list_not_only_the_visible_page(client, batch, role_users):
    for i in range(30):
        make_dl(f"sales{i:02}@contoso.com")
    make_dl("hr@contoso.com")
    make_dl("sales-moved@contoso.com", state=ListState.MIGRATED)
    client.force_login(role_users["Helpdesk"])
    page = client.get("/dl/?q=sales&per_page=10").content.decode()
    assert "Add all 31 matching lists" in page
    fields = form_fields(page, "/dl/batches/from-inventory/")
    assert fields["q"] == "sales" and fields["batch"] == str(batch.pk)
    body = client.post("/dl/batches/from-inventory/", {**fields, "scope": "all"}, follow=True).content.decode()
    assert "30 list(s) added" in body and "1 left out: sales-moved@contoso.com (already migrated)" in body
    assert batch.lists.count() == 30 and not batch.lists.filter(mail="hr@contoso.com").exists()


def test_the_inventory_adds_the_ticked_lists(client, batch, lists, role_users):
    client.force_login(role_users["Helpdesk"])
    page = client.get("/dl/").content.decode()
    assert (f'name="select" value="{lists[1].pk}" form="batch-add-form" aria-label="Pick {lists[1].mail}"'
            in page)
    fields = form_fields(page, "/dl/batches/from-inventory/")
    client.post("/dl/batches/from-inventory/", {**fields, "scope": "selected", "select": [lists[1].pk]})
    assert list(batch.lists.values_list("mail", flat=True)) == [lists[1].mail]


def test_a_new_batch_from_its_page(client, role_users):
    client.force_login(role_users["Helpdesk"])
    page = client.get("/dl/batches/new/").content.decode()
    fields = {**form_fields(page, "/dl/batches/new/"), "name": "Finance lists", "name_prefix": "<script>"}
    response = client.post("/dl/batches/new/", fields)
    assert response.status_code == 400 and "name prefix" in response.content.decode()
    assert not MigrationBatch.objects.exists()
    response = client.post("/dl/batches/new/", {**fields, "name_prefix": "EXO-"}, follow=True)
    batch = MigrationBatch.objects.get()
    assert batch.name == "Finance lists" and batch.options["name_prefix"] == "EXO-"
    assert batch.status == BatchStatus.DRAFT and batch.requested_by == role_users["Helpdesk"]


# -- approver's queue, notifications, e-mail ---------------------------------------------------
def test_the_approver_queue_shows_batches_beside_single_lists(client, submitted, role_users):
    client.force_login(role_users["Approver"])
    body = client.get("/dl/approvals/").content.decode()
    assert f'href="/dl/batches/{submitted.pk}/"' in body and "Saturday" in body
    assert 'id="nav-approvals"' in body and "nav-count\">1<" in body


def test_approvers_are_notified_in_the_portal_and_by_e_mail(settings, batch, lists, role_users,
                                                           django_capture_on_commit_callbacks):
    approver = role_users["Approver"]
    approver.email = "approver@contoso.com"
    approver.save()
    hd = role_users["Helpdesk"]
    bsvc.do_add_to_batch(batch=batch, values=[(0, lists[0].mail)], user=hd)
    preflighted(batch, hd)
    with SmtpServer() as smtp:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
        with django_capture_on_commit_callbacks(execute=True):
            bsvc.do_submit_batch(batch=batch, user=hd)
    note = Notification.objects.get(user=approver)
    assert "waits for your sign-off" in note.text and note.url == f"/dl/batches/{batch.pk}/"
    assert not Notification.objects.filter(user=hd).exists()
    [mail] = smtp.messages
    assert mail.recipients == ["approver@contoso.com"]
    assert "waits for your sign-off" in mail.message["Subject"]


def test_the_nav_shows_unread_notifications_and_the_page_marks_them_read(client, role_users):
    user = role_users["Helpdesk"]
    Notification.objects.create(user=user, text="Batch #1 was approved", url="/dl/batches/1/")
    client.force_login(user)
    page = client.get("/dl/notifications/").content.decode()
    assert 'id="nav-notifications"' in page and "Batch #1 was approved" in page
    fields = form_fields(page, "/dl/notifications/")
    client.post("/dl/notifications/", fields)
    assert not Notification.objects.filter(read_at__isnull=True).exists()


# -- batch preflight -----------------------------------------------------------------------------
def test_a_parent_waiting_only_for_children_in_the_batch_is_not_blocked():
    child = "CN=Child,OU=Lists,DC=contoso,DC=com"
    report = {"warnings": 0, "checks": [{"key": "nested_groups", "title": "Child lists migrated first",
                                         "outcome": "failure", "objects": [child], "objects_total": 1}]}
    assert outcome_of(report, batch_dns={child.lower()}) == (BatchListOutcome.WARNINGS, [])
    assert outcome_of(report, batch_dns=set()) == (BatchListOutcome.BLOCKED, ["Child lists migrated first"])


def test_shared_reads_ask_the_directory_once_for_the_batch():
    from collections import Counter

    calls = []

    class Exchange:
        def get_accepted_domains(self):
            calls.append("domains")
            return ["contoso.com"]

        def get_distribution_group(self, mail):
            calls.append(mail)
            return mail

    counter: Counter = Counter()
    exchange = ReadOnce(Exchange(), ("get_accepted_domains",), counter, "exchange")
    for mail in ("a@x.com", "b@x.com"):
        assert exchange.get_accepted_domains() == ["contoso.com"]
        exchange.get_distribution_group(mail)
    assert calls == ["domains", "a@x.com", "b@x.com"] and counter == {"exchange.get_accepted_domains": 1}


def test_a_batch_run_reads_the_organisation_once_per_batch_never_a_recipient_and_no_failure_twice(monkeypatch):
    """Each list runs in its own job (a forked work horse): the batch's memory is in Redis, shared by all."""
    from migrations_app import read_once
    from migrations_app.engine import Connectors

    class Redis:  # the few hash commands the memory uses
        hashes: dict = {}

        def hexists(self, key, field):
            return field in self.hashes.get(key, {})

        def hget(self, key, field):
            return self.hashes.get(key, {}).get(field)

        def hset(self, key, field, value):
            self.hashes.setdefault(key, {})[field] = value

        def expire(self, key, seconds):
            assert seconds > 0

    monkeypatch.setattr(read_once._BatchMemo, "_redis", staticmethod(Redis))
    calls = []

    class Exchange:
        def __init__(self, fail=False):
            self.fail = fail

        def get_accepted_domains(self):
            calls.append("domains")
            if self.fail:
                raise ConnectionError("down")
            return ["contoso.com"]

        def get_recipient(self, mail):
            calls.append(mail)
            return mail

    def connectors(exchange):
        return Connectors(directory=None, exchange=exchange, onprem=None, sync=object(), graph=None, layout=None)

    single = read_once.for_run(connectors(Exchange()), None)  # a list migrated on its own reads everything
    single.exchange.get_accepted_domains()
    with pytest.raises(ConnectionError):  # a failed read is not an answer: the next list reads again
        read_once.for_run(connectors(Exchange(fail=True)), read_once.batch_memo(7)).exchange.get_accepted_domains()
    for mail in ("a@x.com", "b@x.com"):  # each list of the batch: its own job and connectors, one memory
        c = read_once.for_run(connectors(Exchange()), read_once.batch_memo(7))
        assert c.exchange.get_accepted_domains() == ["contoso.com"]
        c.exchange.get_recipient(mail)
    other = read_once.for_run(connectors(Exchange()), read_once.batch_memo(8))  # another batch: its own reads
    other.exchange.get_accepted_domains()
    assert calls == ["domains", "domains", "domains", "a@x.com", "b@x.com", "domains"]


# -- order -------------------------------------------------------------------------------------
def test_children_run_before_parents_through_depth_four():
    order = order_lists({"emea": {"benelux", "outside"}, "benelux": {"nl"}, "nl": {"amsterdam"}, "amsterdam": set(),
                         "solo": set()})
    assert order.waves == [["amsterdam", "solo"], ["nl"], ["benelux"], ["emea"]]
    assert not order.cycles and not order.behind_cycle


def test_a_nesting_cycle_is_reported_with_what_contains_it_and_never_looped():
    order = order_lists({"core": {"extended"}, "extended": {"core"}, "programme": {"core"}, "self": {"self"},
                         "alone": set()})
    assert order.cycles == [["core", "extended"], ["self"]]
    assert order.behind_cycle == ["programme"]
    assert order.waves == [["alone"]]


def test_a_long_chain_is_ordered_without_recursion():
    chain = {f"l{i}": {f"l{i + 1}"} for i in range(5000)} | {"l5000": set()}
    order = order_lists(chain)
    assert len(order.waves) == 5001 and order.waves[0] == ["l5000"] and order.waves[-1] == ["l0"]


def test_the_batch_order_comes_from_the_inventorys_nesting(batch, role_users):
    parent = make_dl("parent@contoso.com")
    child = make_dl("child@contoso.com")
    loop_a, loop_b = make_dl("loop-a@contoso.com"), make_dl("loop-b@contoso.com")
    DistributionList.objects.filter(pk=parent.pk).update(child_lists=[child.dn.upper(), "CN=Elsewhere,DC=x"])
    DistributionList.objects.filter(pk=loop_a.pk).update(child_lists=[loop_b.dn])
    DistributionList.objects.filter(pk=loop_b.pk).update(child_lists=[loop_a.dn])
    bsvc.do_add_to_batch(batch=batch, values=[(0, d.mail) for d in (parent, child, loop_a, loop_b)],
                         user=role_users["Helpdesk"])
    order = nesting_order(list(batch.lists.select_related("distribution_list")))
    assert order.waves == [["child@contoso.com"], ["parent@contoso.com"]]
    assert order.cycles == [["loop-a@contoso.com", "loop-b@contoso.com"]]
