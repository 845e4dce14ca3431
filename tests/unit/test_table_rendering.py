"""Tables render their cells in Python (portal/tables.py, includes/table.html): the same cells as django-tables2's
own template, fewer template renders, and no count or signature asked again when the answer is known."""

from __future__ import annotations

import re

import pytest
from django.test import RequestFactory
from django.utils import timezone

from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from portal.jobs.tables import JobTable
from portal.tables import CountedPaginator, _cached_signature, _signature

pytestmark = pytest.mark.django_db


def _cells(html: str) -> list[str]:
    body = html.split("<tbody", 1)[1].split("</tbody>", 1)[0]
    return [re.sub(r"\s+", " ", cell).strip() for cell in re.findall(r"<td\b.*?</td>", body, flags=re.S)]


def test_one_tag_writes_the_same_cells_as_the_django_tables2_template():
    now = timezone.now()
    Job.objects.create(kind="connectivity_check", name="Check <b>one</b>", status=JobStatus.RUNNING, started_at=now,
                       progress_total=4, progress_done=1)
    Job.objects.create(kind="connectivity_check", name="Check two", status=JobStatus.FAILED, finished_at=now,
                       summary="x & y")
    request = RequestFactory().get("/jobs/")
    ours = JobTable(Job.objects.all()).as_html(request)
    theirs = JobTable(Job.objects.all(), template_name="django_tables2/table.html").as_html(request)
    assert _cells(ours) == _cells(theirs) and len(_cells(ours)) == 2 * 8
    assert "Check &lt;b&gt;one&lt;/b&gt;" in ours and 'class="badge badge-' in ours and "25 %" in ours


def test_a_signature_is_asked_once_per_function(monkeypatch):
    calls = []

    def counting(fn):
        calls.append(fn)
        return _signature(fn)

    monkeypatch.setattr("portal.tables._signature", counting)
    monkeypatch.setattr("portal.tables._SIGNATURES", {})

    class Thing:
        def render(self, value, record):
            return value

    def plain(value, **kwargs):
        return value

    first, second = Thing(), Thing()
    assert _cached_signature(first.render) == (("value", "record"), None) == _cached_signature(second.render)
    assert _cached_signature(plain) == (("value",), "kwargs") == _cached_signature(plain)
    assert len(calls) == 2


def test_a_paginator_told_its_count_does_not_count(django_assert_num_queries):
    rows = Job.objects.all()
    paginator = CountedPaginator(rows, 10, count=1234)
    with django_assert_num_queries(0):
        assert (paginator.count, paginator.num_pages) == (1234, 124)
    with django_assert_num_queries(1):
        assert CountedPaginator(rows, 10).count == 0
