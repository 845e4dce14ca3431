"""Tables of the DL inventory and the migration list (django-tables2)."""

import re

import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from portal.object_urls import object_url
from portal.tables import PortalTable, badge

from .models import DistributionList, Migration
from .templatetags.dl import kind_colour, state_colour

# The table container is hx-boosted for sorting and paging; a link to another page must load the whole page.
_PAGE_LINK = {"a": {"hx-boost": "false"}}


class _PickColumn(tables.CheckBoxColumn):
    @property
    def header(self) -> str:
        return "Pick"


class DistributionListTable(PortalTable):
    # The inventory's batch form (below the table) owns these boxes through the form attribute.
    select = _PickColumn(accessor="pk", attrs={"td__input": {
        "form": "batch-add-form", "name": "select", "aria-label": lambda record: f"Pick {record.mail or record.name}"}})
    name = tables.Column(linkify=lambda record: object_url("migrations_app:list", record.guid), attrs=_PAGE_LINK)
    mail = tables.Column()
    # Cells rendered in Python, not by a template each: the inventory is read under load (bench/load).
    kind = tables.Column(empty_values=())
    state = tables.Column(empty_values=())
    member_count = tables.Column(verbose_name="Members", attrs={"td": {"class": "num"}})
    nested = tables.Column(orderable=False, verbose_name="Children / parents", empty_values=())
    dependency_count = tables.Column(verbose_name="Dependencies", attrs={"td": {"class": "num"}})
    ou = tables.Column(verbose_name="OU", attrs={"td": {"class": "small"}})
    cloud_type = tables.Column(verbose_name="Cloud type", default="—", attrs={"td": {"class": "small"}})

    def render_name(self, record: DistributionList, value: str) -> str:
        # Group writeback names a group CN=Group_<objectId>: show the cloud display name, and say where it
        # comes from, so nobody mistakes it for a list made on-premises.
        if self._writeback_ou and record.ou.lower() == self._writeback_ou:
            return format_html('{} <span class="badge badge-grey" title="{}">written back from the cloud</span>',
                               record.display_name or value, value)
        return value

    @property
    def _writeback_ou(self) -> str:
        if not hasattr(self, "_wb_ou"):
            from portal.connectors.registry import ad_layout

            try:
                self._wb_ou = (ad_layout().writeback_ou or "").lower()
            except Exception:  # noqa: BLE001 - no layout configured: nothing is marked
                self._wb_ou = ""
        return self._wb_ou

    def render_kind(self, record: DistributionList):
        return badge(kind_colour(record.kind), record.get_kind_display())

    def render_state(self, record: DistributionList):
        return badge(state_colour(record.state), record.get_state_display())

    def render_nested(self, record: DistributionList):
        if record.child_lists or record.parent_lists:
            return f"{len(record.child_lists or ())} / {len(record.parent_lists or ())}"
        return mark_safe('<span class="muted">no</span>')  # noqa: S308 - a constant

    def render_ou(self, value: str) -> str:
        # The OU path without the domain components: what tells two OUs apart at a glance.
        parts = [p for p in re.split(r"(?<!\\),", value) if not p.strip().upper().startswith("DC=")]
        return format_html('<span title="{}">{}</span>', value, ", ".join(p.strip() for p in parts) or value)

    class Meta(PortalTable.Meta):
        model = DistributionList
        fields = ("select", "name", "mail", "kind", "state", "member_count", "nested", "dependency_count", "ou",
                  "cloud_type")
        attrs = {"class": "table", "id": "dl-table"}
        empty_text = "No list matches these filters."


def _migration_url(record) -> str:
    return reverse("migrations_app:migration", args=[record.pk])


class MigrationTable(PortalTable):
    id = tables.Column(linkify=_migration_url, verbose_name="Migration", attrs=_PAGE_LINK)
    mail = tables.Column(linkify=_migration_url, verbose_name="List", attrs=_PAGE_LINK)
    group_name = tables.Column(verbose_name="Name", default="—")
    status = tables.TemplateColumn(template_name="migrations_app/_migration_status_cell.html")
    requested_by = tables.Column(verbose_name="Requested by", default="—")
    approved_by = tables.Column(verbose_name="Approved by", default="—")
    created_at = tables.DateTimeColumn(verbose_name="Requested", format="Y-m-d H:i T")
    job = tables.Column(linkify=True, verbose_name="Job", default="—", attrs=_PAGE_LINK)

    class Meta(PortalTable.Meta):
        model = Migration
        fields = ("id", "mail", "group_name", "status", "requested_by", "approved_by", "created_at", "job")
        attrs = {"class": "table", "id": "migration-table"}
        empty_text = "No migration matches. Start one with a preflight of a list."

    # A migration and its job are numbered apart: each says which number it is ("#7", "job #12").
    def render_id(self, value) -> str:
        return f"#{value}"

    def render_job(self, value) -> str:
        return f"job #{value.pk}"

