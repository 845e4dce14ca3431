import django_tables2 as tables
from django.utils.html import format_html

from portal.tables import PortalTable

from ..models import MfaUserRow
from .choices import MfaClass
from .classify import families_label


class MfaUserRowTable(PortalTable):
    # the table sits in an htmx-boosted container that swaps only itself: a link to another page must not be boosted
    upn = tables.Column(verbose_name="User", linkify=True, order_by=("upn", "id"),
                        attrs={"a": {"hx-boost": "false"}}, empty_values=())
    department = tables.Column()
    classification = tables.Column(verbose_name="Classification")
    usable = tables.Column(verbose_name="Usable methods", orderable=False)
    is_admin = tables.BooleanColumn(verbose_name="Admin", yesno="Yes,—")
    enabled = tables.Column(verbose_name="Enabled")
    reasons = tables.Column(verbose_name="Why", orderable=False)

    # What its cells read of a row: the other JSON fields (groups, policy hits, ...) cost a decode each, per row.
    reads = ("id", "snapshot_id", "user_id", "upn", "display_name", "department", "classification", "usable",
             "is_admin", "enabled", "reasons", "flags", "deleted")

    class Meta(PortalTable.Meta):
        model = MfaUserRow
        fields = ("upn", "department", "classification", "usable", "is_admin", "enabled", "reasons")
        empty_text = "No users match these filters."
        template_name = "includes/table.html"

    def render_upn(self, record):
        marks = []
        if "guest" in record.flags:
            marks.append("guest")
        if not record.upn:
            marks.append("no UPN")
        if record.deleted:
            marks.append("deleted during the snapshot")
        suffix = format_html(' <span class="muted small">({})</span>', ", ".join(marks)) if marks else ""
        return format_html("{}{}", record.name, suffix)

    def render_classification(self, record):
        return format_html('<span class="badge badge-{}">{}</span>', record.classification_colour,
                           MfaClass(record.classification).label)

    def render_enabled(self, value):
        return {True: "Yes", False: "No"}.get(value, "—")

    def render_usable(self, value):
        return families_label(value) or "—"

    def render_reasons(self, value):
        return (value or [""])[0]
