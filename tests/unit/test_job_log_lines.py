"""A job's log lines are written by the log_lines tag (portal/jobs/templatetags/joblog.py) as the template included
per line wrote them, byte for byte: levels, escaping, data shown as detail, the millisecond time, a missing time;
the live log's poll, the job page and the earlier lines all use it."""

from __future__ import annotations

import pytest
from django.template import Context, Template
from django.utils import timezone

from portal.jobs.models import Job, JobLogLine

pytestmark = pytest.mark.django_db

# jobs/_log_line.html as it was, included once per line.
PER_LINE = ('{% load joblog present %}<div class="line lvl-{{ line.level }}" data-seq="{{ line.seq }}" '
            'data-logged="{{ line.time|epoch_ms }}"><time datetime="{{ line.time|date:\'c\' }}">'
            '{{ line.time|log_time }}</time> <span class="lvl">{{ line.get_level_display|upper }}</span> '
            '<span class="text">{{ line.message }}</span>{% if line.data %}<details><summary>detail</summary>'
            '{{ line.data|kv }}</details>{% endif %}</div>\n')


def test_lines_are_written_as_the_per_line_template_wrote_them(settings):
    job = Job.objects.create(kind="connectivity_check", name="j")
    when = timezone.now().replace(microsecond=7009)
    lines = [JobLogLine(job=job, seq=1, time=when, level="info", message="plain"),
             JobLogLine(job=job, seq=12345, time=when, level="warning", message="<b>&\"'</b>",
                        data={"dn": "CN=<x>", "n": 3, "list": ["a", "<b>"]}),
             JobLogLine(job=job, seq=3, time=when, level="error", message="", data=[]),
             JobLogLine(job=job, seq=4, time=None, level="debug", message="no time", data={"k": None})]
    expected = "".join(Template(PER_LINE).render(Context({"line": line})) for line in lines)
    ours = Template("{% load joblog %}{% log_lines lines %}").render(Context({"lines": lines}))
    assert ours == expected
    settings.TIME_ZONE = "Europe/Paris"
    timezone.activate("Europe/Paris")
    try:
        assert Template("{% load joblog %}{% log_lines lines %}").render(Context({"lines": lines})) == \
            "".join(Template(PER_LINE).render(Context({"line": line})) for line in lines)
    finally:
        timezone.deactivate()


def test_the_poll_and_the_job_page_render_no_template_per_line(client, role_users, monkeypatch):
    from django.template.loader_tags import IncludeNode

    job = Job.objects.create(kind="connectivity_check", name="j", status="running", started_at=timezone.now(),
                             heartbeat_at=timezone.now())
    JobLogLine.objects.bulk_create(JobLogLine(job=job, seq=n, time=timezone.now(), message=f"step {n}")
                                   for n in range(1, 31))
    client.force_login(role_users["Auditor"])
    included = []
    original = IncludeNode.render
    monkeypatch.setattr(IncludeNode, "render", lambda node, context: included.append(
        node.template.var) or original(node, context))
    poll = client.get(f"/jobs/{job.pk}/log/?after=0").content.decode()
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert poll.count('<div class="line lvl-info"') == 30 and page.count('<div class="line lvl-info"') == 30
    assert "jobs/_log_line.html" not in included
