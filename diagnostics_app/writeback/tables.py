import django_tables2 as tables
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from portal.tables import PortalTable

from ..models import WritebackPlanRow
from .choices import CloudSyncVerdict, RowSection


class WritebackPlanRowTable(PortalTable):
    display_name = tables.Column(verbose_name="Group", attrs={"td": {"class": "col-group"}})
    section = tables.Column(verbose_name="Section")
    current_dn = tables.Column(verbose_name="Current DN", attrs={"td": {"class": "col-dn"}})
    planned_dn = tables.Column(verbose_name="Planned DN", attrs={"td": {"class": "col-dn"}})
    changes = tables.Column(verbose_name="What changes", orderable=False, attrs={"td": {"class": "col-changes"}})
    risks = tables.Column(verbose_name="Risks", orderable=False)
    cloud_sync = tables.Column(verbose_name="Cloud Sync")

    class Meta(PortalTable.Meta):
        model = WritebackPlanRow
        fields = ("display_name", "section", "current_dn", "planned_dn", "changes", "risks", "cloud_sync")
        empty_text = "No groups match these filters."
        # Names, object ids and DNs are long and unbroken: writeback-table wraps them in their cells so that the
        # table fits a 1280 px window (static/css/portal.css).
        attrs = {"class": "table writeback-table wrap-first"}
        template_name = "includes/table.html"

    def render_display_name(self, record):
        same = (format_html(' <span class="badge badge-amber">same name as {} other</span>',
                            len(record.same_display_name)) if record.same_display_name else "")
        return format_html('{}<br><code class="small">{}</code>{}', record.display_name or "—",
                           record.object_id or "no cloud id", same)

    def render_section(self, record):
        return format_html('<span class="badge badge-{}">{}</span>', record.section_colour,
                           RowSection(record.section).label)

    def render_current_dn(self, value):
        return format_html('<code class="dn">{}</code>', value)

    def render_planned_dn(self, record):
        if not record.planned_dn:
            return "—"
        badge = mark_safe(' <span class="badge badge-red">collides</span>') if record.collides else ""  # noqa: S308 - a constant
        return format_html('<code class="dn">{}</code>{}', record.planned_dn, badge)

    def render_changes(self, value):
        return format_html_join("", "<div class=\"small\">{}</div>", ((c,) for c in value or ())) or "—"

    def render_risks(self, value):
        return format_html_join(" ", '<span class="badge badge-{}">{}</span>',
                                (("red" if r == "collision" else "grey" if r == "manual" else "amber",
                                  r.replace("_", " ")) for r in value or ())) or "—"

    def render_cloud_sync(self, record):
        if not record.cloud_sync:
            return "—"
        return format_html('<span class="badge badge-{}">{}</span>', record.cloud_sync_colour,
                           CloudSyncVerdict(record.cloud_sync).label)
