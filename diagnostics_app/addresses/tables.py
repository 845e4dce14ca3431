import django_tables2 as tables
from django.utils.html import format_html

from portal.tables import PortalTable

from ..models import AddressFinding
from .choices import FindingRule


class SelectColumn(tables.CheckBoxColumn):
    """A plain checkbox per row, tied to the plan form by its form attribute (no script: CSP)."""

    @property
    def header(self):
        return "Select"


class AddressFindingTable(PortalTable):
    # The table sits in an htmx-boosted container that swaps only itself: links to other pages are not boosted.
    selection = SelectColumn(accessor="pk", attrs={"td__input": {"form": "plan-form",
                                                                 "aria-label": "Select this finding"}})
    dn = tables.Column(verbose_name="Object", linkify=True, attrs={"a": {"hx-boost": "false"},
                                                                   "td": {"class": "col-object"}})
    object_class = tables.Column(verbose_name="Type")
    attribute = tables.Column()
    value = tables.Column(orderable=False, attrs={"td": {"class": "col-value"}})
    rule = tables.Column(verbose_name="Rule")
    severity = tables.Column()
    errors = tables.Column(verbose_name="IdFix errors", orderable=False)
    action = tables.Column(verbose_name="Action")
    proposed_value = tables.Column(verbose_name="Proposed value", orderable=False,
                                   attrs={"td": {"class": "col-value"}})
    state = tables.Column(verbose_name="History")

    # What its cells read of a finding: the others (the fix, the other holders, the explanation) cost a decode or a
    # long text each, per row.
    reads = ("id", "scan_id", "dn", "object_class", "attribute", "value", "rule", "beyond_idfix", "severity", "errors",
             "action", "proposed_value", "state")

    class Meta(PortalTable.Meta):
        model = AddressFinding
        fields = ("selection", "dn", "object_class", "attribute", "value", "rule", "severity", "errors", "action",
                  "proposed_value", "state")
        empty_text = "No findings match these filters."
        # Values are long and unbroken (DNs, X500 addresses): findings-table lets them wrap in their cells, so the
        # table fits a 1400 px window instead of pushing the proposed value and the history off screen.
        attrs = {"class": "table findings-table"}
        template_name = "includes/table.html"

    def render_dn(self, record):
        return record.dn.partition(",")[0]

    def render_value(self, value):
        return value if len(value) <= 80 else f"{value[:80]}…"

    def render_rule(self, record):
        label = FindingRule(record.rule).label
        if record.beyond_idfix:
            return format_html('{} <span class="muted small">(beyond IdFix)</span>', label)
        return label

    def render_severity(self, record):
        return format_html('<span class="badge badge-{}">{}</span>', record.severity_colour,
                           record.get_severity_display())

    def render_errors(self, value):
        return ", ".join(value) if value else "—"

    def render_proposed_value(self, value):
        return value if value and len(value) <= 80 else (f"{value[:80]}…" if value else "—")

    def render_state(self, record):
        return format_html('<span class="badge badge-{}">{}</span>', record.state_colour, record.get_state_display())
