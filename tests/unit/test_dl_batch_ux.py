"""What the batch page offers: a preflight that finds blocked lists is a preflight that worked (succeeded
with warnings, its summary saying what blocks), and Submit is offered only when submitting would be
accepted (not on an empty batch, nor on one whose lists are unchecked or blocked)."""

from __future__ import annotations

import contextlib

import pytest

from migrations_app import batch_preflight, engine
from migrations_app import batch_services as bsvc
from migrations_app.choices import BatchListOutcome
from portal.jobs.choices import JobStatus
from portal.jobs.services import run_job_inline
from tests.unit.test_dl_batches import make_dl, preflighted

pytestmark = pytest.mark.django_db(transaction=True)  # the preflight job runs inline


@pytest.fixture
def batch(role_users):
    return bsvc.do_create_batch(name="ux", options={"keep_original": True}, user=role_users["Helpdesk"])


def test_a_preflight_that_blocks_lists_succeeds_with_warnings_and_says_why(batch, role_users, monkeypatch):
    hd = role_users["Helpdesk"]
    for mail in ("ok@contoso.com", "stuck@contoso.com"):
        make_dl(mail)
    bsvc.do_add_to_batch(batch=batch, values=[(0, "ok@contoso.com"), (0, "stuck@contoso.com")], user=hd)

    def judged(*, batch, c, runner):
        runner.warning("stuck@contoso.com: blocked (Child lists migrated first)")
        verdicts = [bsvc.ListVerdict(mail="ok@contoso.com", outcome=BatchListOutcome.READY,
                                     report={"plan_hash": "a" * 64, "member_count": 2, "plan": {}, "checks": []}),
                    bsvc.ListVerdict(mail="stuck@contoso.com", outcome=BatchListOutcome.BLOCKED,
                                     report={"member_count": 3, "plan": {}, "checks": []})]
        return verdicts, {"lists": 2, "ready": 1, "warnings": 0, "blocked": 1,
                          "blocked_by": {"Child lists migrated first": 1}}

    monkeypatch.setattr(batch_preflight, "preflight_batch", judged)
    monkeypatch.setattr(engine, "open_connectors", contextlib.nullcontext)
    job = run_job_inline(bsvc.do_start_batch_preflight(batch=batch, user=hd, enqueue=False))
    assert job.status == JobStatus.WARNINGS, job.summary
    assert job.summary.startswith("1 ready, 0 with warnings, 1 blocked of 2 list(s).")
    assert "Fix or remove the blocked lists" in job.summary
    assert job.result["blocked_by"] == {"Child lists migrated first": 1} and not job.error_count
    assert "1 list(s) blocked (Child lists migrated first: 1)" in " ".join(
        job.log_lines.values_list("message", flat=True))


def _page(client, user, batch) -> str:
    client.force_login(user)
    return client.get(f"/dl/batches/{batch.pk}/").content.decode()


def test_submit_is_offered_only_when_the_batch_can_be_submitted(client, batch, role_users):
    hd = role_users["Helpdesk"]
    page = _page(client, hd, batch)
    assert "Submit for approval" not in page and "Not ready to submit: The batch has no list." in page
    make_dl("one@contoso.com")
    bsvc.do_add_to_batch(batch=batch, values=[(0, "one@contoso.com")], user=hd)
    assert "no preflight since the batch last changed" in _page(client, hd, batch)
    preflighted(batch, hd, outcome=BatchListOutcome.BLOCKED)
    page = _page(client, hd, batch)
    assert "Submit for approval" not in page and "1 list(s) are blocked by their preflight" in page
    preflighted(batch, hd)
    page = _page(client, hd, batch)
    assert "Submit for approval" in page and 'id="batch-submit-blocked"' not in page
