import django_tables2 as tables
from django.utils.html import format_html

from portal.tables import LocalDateTimeColumn, PortalTable, badge

from .models import Job


class JobTable(PortalTable):
    id = tables.Column(linkify=True, verbose_name="#")
    name = tables.Column(linkify=True, verbose_name="Job")
    target = tables.Column()
    # Cells rendered in Python, not by a template each: the jobs list is read under load (bench/load).
    status = tables.Column(empty_values=())
    progress = tables.Column(orderable=False, empty_values=())
    user = tables.Column(verbose_name="Started by", default="system")
    created_at = LocalDateTimeColumn(verbose_name="Started", format="Y-m-d H:i:s T")
    summary = tables.Column(orderable=False)

    class Meta(PortalTable.Meta):
        model = Job
        fields = ("id", "name", "target", "status", "progress", "user", "created_at", "summary")
        empty_text = "No jobs match. Start one, e.g. a connectivity check, from the button above."

    def render_status(self, record: Job):
        return badge(record.status_colour, record.get_status_display())

    def render_progress(self, record: Job):
        return format_html('<progress max="100" value="{0}" aria-label="Progress of job {1}">{0} %</progress> '
                           '<span class="muted">{0} %</span>', record.progress_percent, record.pk)
