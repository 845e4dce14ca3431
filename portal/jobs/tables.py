import django_tables2 as tables

from portal.tables import PortalTable

from .models import Job


class JobTable(PortalTable):
    id = tables.Column(linkify=True, verbose_name="#")
    name = tables.Column(linkify=True, verbose_name="Job")
    target = tables.Column()
    status = tables.TemplateColumn(template_name="jobs/_status_cell.html")
    progress = tables.TemplateColumn(template_name="jobs/_progress_cell.html", orderable=False)
    user = tables.Column(verbose_name="Started by", default="system")
    created_at = tables.DateTimeColumn(verbose_name="Started", format="Y-m-d H:i:s T")
    summary = tables.Column(orderable=False)

    class Meta(PortalTable.Meta):
        model = Job
        fields = ("id", "name", "target", "status", "progress", "user", "created_at", "summary")
        empty_text = "No jobs match. Start one, e.g. a connectivity check, from the button above."
