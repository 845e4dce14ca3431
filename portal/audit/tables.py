import django_tables2 as tables

from portal.tables import PortalTable

from .models import AuditEvent


class AuditEventTable(PortalTable):
    time = tables.DateTimeColumn(format="Y-m-d H:i:s T")
    actor_name = tables.Column(verbose_name="Who", default="system")
    action = tables.TemplateColumn(
        '{{ record.action_label }} <span class="mono small muted">{{ record.action }}</span>', verbose_name="Action")
    target = tables.Column()
    job = tables.Column(linkify=True, verbose_name="Job")
    change = tables.TemplateColumn(template_name="audit/_change_cell.html", orderable=False, verbose_name="Change")
    source_ip = tables.Column(verbose_name="From")

    class Meta(PortalTable.Meta):
        model = AuditEvent
        fields = ("time", "actor_name", "action", "target", "change", "job", "source_ip")
        per_page = 100
        empty_text = "No audit events match these filters."
